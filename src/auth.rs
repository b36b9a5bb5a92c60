//! Who is calling, and may they: authentication (bearer tokens, mTLS client
//! certificates) and the per-principal policy (DESIGN §11).
//!
//! - A bearer token (`authorization: Bearer <token>`) is hashed with SHA-256
//!   and compared, in constant time, with every configured hash; the token
//!   itself is never stored, logged, audited or echoed.
//! - Without a bearer token, a verified TLS client certificate names the
//!   principal: its first URI SAN (e.g. `spiffe://example.org/ns/ci/sa/bot`),
//!   else its first DNS SAN, else its subject CN.
//! - Without either, the caller is `anonymous`, admitted only when the
//!   configuration says so (`allow_anonymous`, or `--dev`).
//! - The policy maps each principal to the RPC methods and acting accounts it
//!   may use (exact ids or `*`); anything not listed is denied.

use std::collections::HashMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;
use tonic::transport::CertificateDer;

use crate::domain::AccountId;

/// The principal of callers without credentials.
pub const ANONYMOUS: &str = "anonymous";

/// The `[auth]` table of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Admit callers without credentials as `anonymous` (default false;
    /// `--dev` turns it on).
    #[serde(default)]
    pub allow_anonymous: bool,
    /// Require credentials for health and reflection too (default false:
    /// they stay reachable for probes and grpcurl).
    #[serde(default)]
    pub protect_health_and_reflection: bool,
    /// Bearer tokens, by their SHA-256.
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
}

/// One `[[auth.tokens]]` entry.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// The principal the token authenticates.
    pub principal: String,
    /// Lowercase or uppercase hex SHA-256 of the token (64 hex digits), e.g.
    /// the output of `printf %s "$TOKEN" | sha256sum`.
    pub sha256: String,
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

/// One `[[policy]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    /// The principal (token principal, certificate identity, or `anonymous`).
    pub principal: String,
    /// Allowed RPC method names (e.g. `CreateAccountLinkInvitation`), or `*`.
    pub methods: Vec<String>,
    /// Allowed acting accounts (12 digits on AWS, 32 hex characters on
    /// Huawei), or `*`.
    pub accounts: Vec<String>,
}

/// Why a caller could not be authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials, and anonymous access is off.
    #[error(
        "credentials are required: send `authorization: Bearer <token>` or a client certificate"
    )]
    Missing,
    /// The `authorization` metadata is not a known bearer token.
    #[error("the bearer token is not valid")]
    InvalidToken,
}

impl AuthError {
    /// The `ErrorInfo.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "CREDENTIALS_MISSING",
            Self::InvalidToken => "INVALID_BEARER_TOKEN",
        }
    }
}

/// A configuration error in `[auth]` or `[[policy]]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthConfigError(String);

/// Authenticates callers.
#[derive(Clone)]
pub struct Authenticator {
    tokens: Vec<([u8; 32], String)>,
    allow_anonymous: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("tokens", &self.tokens.len())
            .field("allow_anonymous", &self.allow_anonymous)
            .finish()
    }
}

impl Authenticator {
    /// Builds the authenticator; `dev` admits anonymous callers.
    ///
    /// # Errors
    /// [`AuthConfigError`] for a hash that is not 64 hex digits or an empty
    /// principal.
    pub fn new(config: &AuthConfig, dev: bool) -> Result<Self, AuthConfigError> {
        let mut tokens = Vec::with_capacity(config.tokens.len());
        for entry in &config.tokens {
            let principal = valid_principal(&entry.principal)?;
            let mut hash = [0u8; 32];
            hex::decode_to_slice(entry.sha256.trim(), &mut hash).map_err(|_| {
                AuthConfigError(format!(
                    "auth.tokens for {principal:?}: sha256 must be 64 hex digits"
                ))
            })?;
            tokens.push((hash, principal));
        }
        Ok(Self {
            tokens,
            allow_anonymous: config.allow_anonymous || dev,
        })
    }

    /// Whether anonymous callers are admitted.
    pub fn allows_anonymous(&self) -> bool {
        self.allow_anonymous
    }

    /// The principal of a call: from its bearer token if it sends one, else
    /// from its verified client certificate, else `anonymous` if allowed.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] for an unknown or malformed bearer token
    /// (even when anonymous access is allowed: a wrong credential is never
    /// downgraded), [`AuthError::Missing`] for no credentials.
    pub fn authenticate(
        &self,
        metadata: &MetadataMap,
        peer_certs: Option<&[CertificateDer<'static>]>,
    ) -> Result<String, AuthError> {
        if let Some(value) = metadata.get("authorization") {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or(AuthError::InvalidToken)?;
            return self
                .principal_of_token(token)
                .ok_or(AuthError::InvalidToken);
        }
        if let Some(principal) = peer_certs
            .and_then(|c| c.first())
            .and_then(|c| principal_from_certificate(c))
        {
            return Ok(principal);
        }
        if self.allow_anonymous {
            Ok(ANONYMOUS.to_owned())
        } else {
            Err(AuthError::Missing)
        }
    }

    /// Compares the token's hash with every configured hash in constant
    /// time (no early exit on a match or on a differing byte).
    fn principal_of_token(&self, token: &str) -> Option<String> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found: Option<&String> = None;
        for (hash, principal) in &self.tokens {
            if bool::from(hash.ct_eq(&presented)) {
                found = Some(principal);
            }
        }
        found.cloned()
    }
}

fn valid_principal(p: &str) -> Result<String, AuthConfigError> {
    let p = p.trim();
    if p.is_empty() || p.len() > 256 || p.chars().any(char::is_control) {
        return Err(AuthConfigError(format!("invalid principal {p:?}")));
    }
    Ok(p.to_owned())
}

/// The principal a client certificate names: the first URI SAN (SPIFFE
/// style), else the first DNS SAN, else the subject CN. `None` when the
/// certificate does not parse or names nothing.
pub fn principal_from_certificate(der: &CertificateDer<'_>) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let names: Vec<GeneralName<'_>> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| san.value.general_names.clone())
        .unwrap_or_default();
    let uri = names.iter().find_map(|n| match n {
        GeneralName::URI(u) => Some((*u).to_owned()),
        _ => None,
    });
    let dns = || {
        names.iter().find_map(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_owned()),
            _ => None,
        })
    };
    let cn = || {
        cert.subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned)
    };
    uri.or_else(dns)
        .or_else(cn)
        .filter(|p| !p.is_empty() && !p.chars().any(char::is_control))
}

/// What a principal may do.
#[derive(Debug, Clone, Default)]
struct Grant {
    all_methods: bool,
    methods: Vec<String>,
    all_accounts: bool,
    accounts: Vec<AccountId>,
}

/// The per-principal policy: allowed methods and acting accounts.
#[derive(Debug, Clone)]
pub struct Policy {
    grants: HashMap<String, Grant>,
    allow_all: bool,
}

impl Policy {
    /// Builds the policy. With `dev` and no entries at all, everything is
    /// allowed (the local walk-through); otherwise only what is listed.
    ///
    /// # Errors
    /// [`AuthConfigError`] for an unknown method name or a bad account id.
    pub fn new(
        entries: &[PolicyEntry],
        dev: bool,
        known_methods: &[&str],
    ) -> Result<Self, AuthConfigError> {
        let mut grants: HashMap<String, Grant> = HashMap::new();
        for entry in entries {
            let principal = valid_principal(&entry.principal)?;
            let grant = grants.entry(principal.clone()).or_default();
            for m in &entry.methods {
                if m == "*" {
                    grant.all_methods = true;
                } else if known_methods.contains(&m.as_str()) {
                    grant.methods.push(m.clone());
                } else {
                    return Err(AuthConfigError(format!(
                        "policy for {principal:?}: unknown method {m:?}"
                    )));
                }
            }
            for a in &entry.accounts {
                if a == "*" {
                    grant.all_accounts = true;
                } else {
                    let id = AccountId::parse_any(a).map_err(|e| {
                        AuthConfigError(format!("policy for {principal:?}: account {a:?} {e}"))
                    })?;
                    grant.accounts.push(id);
                }
            }
        }
        Ok(Self {
            allow_all: dev && grants.is_empty(),
            grants,
        })
    }

    /// Whether `principal` may call `method`.
    pub fn allows_method(&self, principal: &str, method: &str) -> bool {
        self.allow_all
            || self
                .grants
                .get(principal)
                .is_some_and(|g| g.all_methods || g.methods.iter().any(|m| m == method))
    }

    /// Whether `principal` may call `method` acting as `account`.
    pub fn allows(&self, principal: &str, method: &str, account: &AccountId) -> bool {
        self.allows_method(principal, method)
            && (self.allow_all
                || self
                    .grants
                    .get(principal)
                    .is_some_and(|g| g.all_accounts || g.accounts.contains(account)))
    }
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataValue;

    use super::*;

    fn sha(t: &str) -> String {
        hex::encode(Sha256::digest(t.as_bytes()))
    }

    fn auth(allow_anonymous: bool) -> Authenticator {
        let config = AuthConfig {
            allow_anonymous,
            protect_health_and_reflection: false,
            tokens: vec![
                TokenEntry {
                    principal: "ci-bot".into(),
                    sha256: sha("s3cret"),
                },
                TokenEntry {
                    principal: "ops".into(),
                    sha256: sha("other").to_uppercase(),
                },
            ],
        };
        Authenticator::new(&config, false).unwrap()
    }

    fn with_auth(value: &'static str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", MetadataValue::from_static(value));
        m
    }

    #[test]
    fn bearer_tokens_map_to_principals() {
        let a = auth(false);
        assert_eq!(
            a.authenticate(&with_auth("Bearer s3cret"), None).unwrap(),
            "ci-bot"
        );
        assert_eq!(
            a.authenticate(&with_auth("Bearer other"), None).unwrap(),
            "ops"
        );
        assert_eq!(
            a.authenticate(&with_auth("Bearer wrong"), None),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(
            a.authenticate(&with_auth("Basic s3cret"), None),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(
            a.authenticate(&MetadataMap::new(), None),
            Err(AuthError::Missing)
        );
        // A wrong token is not downgraded to anonymous.
        assert_eq!(
            auth(true).authenticate(&with_auth("Bearer wrong"), None),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(
            auth(true).authenticate(&MetadataMap::new(), None).unwrap(),
            ANONYMOUS
        );
    }

    #[test]
    fn bad_hashes_are_config_errors() {
        let config = AuthConfig {
            tokens: vec![TokenEntry {
                principal: "x".into(),
                sha256: "abc".into(),
            }],
            ..AuthConfig::default()
        };
        assert!(Authenticator::new(&config, false).is_err());
    }

    #[test]
    fn policy_grants_methods_and_accounts() {
        let entries = vec![
            PolicyEntry {
                principal: "ci-bot".into(),
                methods: vec!["GetAccountLink".into()],
                accounts: vec!["111111111111".into()],
            },
            PolicyEntry {
                principal: "ops".into(),
                methods: vec!["*".into()],
                accounts: vec!["*".into()],
            },
        ];
        let p = Policy::new(&entries, false, &["GetAccountLink", "ListAccountLinks"]).unwrap();
        let a1 = AccountId::parse("111111111111").unwrap();
        let a2 = AccountId::parse("222222222222").unwrap();
        assert!(p.allows("ci-bot", "GetAccountLink", &a1));
        assert!(!p.allows("ci-bot", "GetAccountLink", &a2));
        assert!(!p.allows("ci-bot", "ListAccountLinks", &a1));
        assert!(p.allows("ops", "ListAccountLinks", &a2));
        assert!(!p.allows("nobody", "GetAccountLink", &a1));
        assert!(
            Policy::new(&entries, false, &["ListAccountLinks"]).is_err(),
            "unknown method"
        );
        assert!(
            Policy::new(&[], true, &[])
                .unwrap()
                .allows("anyone", "X", &a1),
            "dev without policy"
        );
        assert!(
            !Policy::new(&[], false, &[])
                .unwrap()
                .allows("anyone", "X", &a1)
        );
    }

    #[test]
    fn certificate_principal_prefers_uri_then_dns_then_cn() {
        let key = rcgen::KeyPair::generate().unwrap();
        let make = |sans: Vec<rcgen::SanType>, cn: &str| {
            let mut params = rcgen::CertificateParams::default();
            params.subject_alt_names = sans;
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
            CertificateDer::from(params.self_signed(&key).unwrap().der().to_vec())
        };
        let uri = rcgen::SanType::URI("spiffe://example.org/bot".try_into().unwrap());
        let dns = rcgen::SanType::DnsName("bot.example.org".try_into().unwrap());
        assert_eq!(
            principal_from_certificate(&make(vec![dns.clone(), uri], "cn")).as_deref(),
            Some("spiffe://example.org/bot")
        );
        assert_eq!(
            principal_from_certificate(&make(vec![dns], "cn")).as_deref(),
            Some("bot.example.org")
        );
        assert_eq!(
            principal_from_certificate(&make(vec![], "cn-bot")).as_deref(),
            Some("cn-bot")
        );
        assert_eq!(
            principal_from_certificate(&CertificateDer::from(vec![1, 2, 3])),
            None
        );
    }
}
