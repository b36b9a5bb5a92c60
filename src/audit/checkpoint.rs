//! Signed checkpoints of the audit chain, like CloudTrail's digest files:
//! `{from_seq, to_seq, head_hash, previous_signature}` signed with an
//! Ed25519 key (RFC 8032). A checkpoint proves what the chain held up to
//! `to_seq` when it was signed; verifying it later against the database
//! detects any change to that prefix, including deleting its newest rows.
//!
//! The signature covers the RFC 8785 (JCS) serialization of the checkpoint
//! object without its `signature` member. Keys are files holding the
//! 32-byte secret seed as 64 hex digits; public keys are 64 hex digits.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The checkpoint format version.
pub const CHECKPOINT_VERSION: u32 = 1;

/// A signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version (1).
    pub version: u32,
    /// The chain.
    pub chain_id: String,
    /// The first seq this checkpoint covers (the previous checkpoint's
    /// `to_seq + 1`, or the first retained seq).
    pub from_seq: i64,
    /// The last seq it covers.
    pub to_seq: i64,
    /// Hex `row_hash` of the row at `to_seq`.
    pub head_hash: String,
    /// Hex signature of the previous checkpoint, chaining checkpoints.
    pub previous_signature: Option<String>,
    /// When it was signed (RFC 3339 UTC).
    pub created_at: String,
    /// Hex Ed25519 public key of the signer.
    pub public_key: String,
    /// Hex Ed25519 signature over the JCS form without this member.
    #[serde(default)]
    pub signature: String,
}

/// A checkpoint or key problem.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A key or checkpoint is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The signature does not verify with the given public key.
    #[error("the checkpoint's signature does not verify with the given public key")]
    BadSignature,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn hex32(text: &str, what: &str) -> Result<[u8; 32], CheckpointError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut out)
        .map_err(|_| CheckpointError::Invalid(format!("{what} must be 64 hex digits")))?;
    Ok(out)
}

/// Generates a signing key; returns `(secret seed hex, public key hex)`.
///
/// # Errors
/// [`CheckpointError::Invalid`] when the OS has no randomness.
pub fn generate_key() -> Result<(String, String), CheckpointError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| CheckpointError::Invalid(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    Ok((
        hex::encode(seed),
        hex::encode(key.verifying_key().to_bytes()),
    ))
}

/// Reads a signing key file (64 hex digits).
///
/// # Errors
/// [`CheckpointError`] when the file cannot be read or is malformed.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, CheckpointError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    Ok(SigningKey::from_bytes(&hex32(&text, "the signing key")?))
}

/// Parses a public key: 64 hex digits, or a file holding them.
///
/// # Errors
/// [`CheckpointError`] when it is neither.
pub fn read_public_key(key_or_path: &str) -> Result<VerifyingKey, CheckpointError> {
    let text = if Path::new(key_or_path).is_file() {
        std::fs::read_to_string(key_or_path).map_err(io(Path::new(key_or_path)))?
    } else {
        key_or_path.to_owned()
    };
    VerifyingKey::from_bytes(&hex32(&text, "the public key")?)
        .map_err(|e| CheckpointError::Invalid(format!("invalid public key: {e}")))
}

/// Reads a checkpoint file.
///
/// # Errors
/// [`CheckpointError`] when it cannot be read or parsed.
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text)
        .map_err(|e| CheckpointError::Invalid(format!("{}: {e}", path.display())))
}

impl Checkpoint {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.remove("signature");
        }
        serde_json_canonicalizer::to_vec(&value).unwrap_or_default()
    }

    /// Signs the checkpoint with `key` (sets `public_key` and `signature`).
    pub fn sign(mut self, key: &SigningKey) -> Self {
        self.public_key = hex::encode(key.verifying_key().to_bytes());
        self.signature = String::new();
        self.signature = hex::encode(key.sign(&self.signed_bytes()).to_bytes());
        self
    }

    /// Checks the signature with `key` (the key the verifier trusts, not the
    /// one the file names).
    ///
    /// # Errors
    /// [`CheckpointError::BadSignature`], or `Invalid` for a malformed one.
    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(&self.signature, &mut bytes)
            .map_err(|_| CheckpointError::Invalid("signature must be 128 hex digits".into()))?;
        key.verify(&self.signed_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| CheckpointError::BadSignature)
    }

    /// `head_hash` as bytes.
    ///
    /// # Errors
    /// [`CheckpointError::Invalid`] when it is not 64 hex digits.
    pub fn head(&self) -> Result<[u8; 32], CheckpointError> {
        hex32(&self.head_hash, "head_hash")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            chain_id: "default".into(),
            from_seq: 1,
            to_seq: 10,
            head_hash: "ab".repeat(32),
            previous_signature: None,
            created_at: "2026-11-21T09:00:00.000000Z".into(),
            public_key: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn signatures_verify_and_cover_every_field() {
        let (seed, public) = generate_key().unwrap();
        let key = SigningKey::from_bytes(&hex32(&seed, "seed").unwrap());
        let signed = checkpoint().sign(&key);
        let public = read_public_key(&public).unwrap();
        signed.verify_signature(&public).unwrap();
        let mut forged = signed.clone();
        forged.to_seq = 9;
        assert!(matches!(
            forged.verify_signature(&public),
            Err(CheckpointError::BadSignature)
        ));
        let (_, other) = generate_key().unwrap();
        assert!(
            signed
                .verify_signature(&read_public_key(&other).unwrap())
                .is_err()
        );
        let text = serde_json::to_string(&signed).unwrap();
        assert_eq!(serde_json::from_str::<Checkpoint>(&text).unwrap(), signed);
    }
}
