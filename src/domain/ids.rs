//! Identifier newtypes: `AccountId`, `LinkId`, `ClientToken`, `NextToken`.

use std::fmt;

/// One invalid request field: the field path in proto names and why it is
/// invalid. Becomes a `google.rpc.BadRequest.FieldViolation` (AIP-193).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The proto field name, e.g. `target_account_id`.
    pub field: String,
    /// A human-readable reason, e.g. `must be 12 digits`.
    pub description: String,
}

impl FieldViolation {
    /// Builds a violation for `field` with `description`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// An AWS account id: exactly 12 ASCII digits (AWS pattern `^\d{12}$`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    /// Parses a 12-digit account id.
    ///
    /// # Errors
    /// A description of the violation when `s` is not exactly 12 ASCII digits.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err("must be exactly 12 digits (AWS pattern ^\\d{12}$)".to_owned())
        }
    }

    /// Parses a Huawei Cloud account (domain) id: 32 lowercase hexadecimal
    /// characters, as IAM's `domain_id` and RAM's `sender_account_id` /
    /// `receiver_account_id` show it. Huawei's API reference documents the
    /// members as strings without a pattern; this format is the observed one.
    ///
    /// # Errors
    /// A description of the violation when `s` is not 32 lowercase hex
    /// characters.
    pub fn parse_huawei(s: &str) -> Result<Self, String> {
        if s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_owned()))
        } else {
            Err("must be a Huawei account (domain) id: 32 lowercase hex characters".to_owned())
        }
    }

    /// Parses an account id of either provider: 12 digits (AWS) or 32
    /// lowercase hex characters (Huawei). For policy entries, which name
    /// accounts of every provider.
    ///
    /// # Errors
    /// A description of the violation when `s` is neither.
    pub fn parse_any(s: &str) -> Result<Self, String> {
        Self::parse(s)
            .or_else(|aws| Self::parse_huawei(s).map_err(|huawei| format!("{aws}, or {huawei}")))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An account-link id: `link-` followed by 8 to 24 characters (AWS pattern
/// `^link-.{8,24}$`).
///
/// The suffix is further restricted to printable ASCII without spaces
/// (`!`..=`~`): AWS issues ids of lowercase hex, and refusing control
/// characters and Unicode look-alikes here keeps them out of logs, the audit
/// trail and upstream requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkId(String);

impl LinkId {
    /// Parses a link id.
    ///
    /// # Errors
    /// A description of the violation when `s` does not match the pattern.
    pub fn parse(s: &str) -> Result<Self, String> {
        let suffix = s.strip_prefix("link-");
        match suffix {
            Some(rest)
                if (8..=24).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Ok(Self(s.to_owned()))
            }
            _ => Err(
                "must be `link-` followed by 8 to 24 printable ASCII characters (AWS pattern ^link-.{8,24}$)"
                    .to_owned(),
            ),
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client token: 1 to 64 printable ASCII characters (AWS pattern
/// `^.{1,64}$`, ASCII; control characters refused).
///
/// Its `Debug` output is redacted: a token is a capability to replay a
/// stored response and must not reach logs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientToken(String);

impl ClientToken {
    /// Parses a caller-supplied token.
    ///
    /// # Errors
    /// A description of the violation when `s` is empty, longer than 64
    /// bytes, or holds a byte outside `0x20..=0x7e`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            Ok(Self(s.to_owned()))
        } else {
            Err("must be 1 to 64 printable ASCII characters (AWS pattern ^.{1,64}$)".to_owned())
        }
    }

    /// Generates a fresh token (a UUIDv4, 36 characters), used when the
    /// caller sends none (AWS RAM client-token rules).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The token as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientToken(<redacted>)")
    }
}

/// An AWS `NextToken` for `ListAccountLinks`: 1 to 2048 characters, passed
/// through opaquely as the AIP-158 `page_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextToken(String);

impl NextToken {
    /// Parses a page token.
    ///
    /// # Errors
    /// A description of the violation when `s` is empty or longer than 2048
    /// characters, or holds a character outside printable ASCII.
    pub fn parse(s: &str) -> Result<Self, String> {
        if !s.is_empty() && s.len() <= 2048 && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(s.to_owned()))
        } else {
            Err("must be a page token returned by a previous ListAccountLinks call (1 to 2048 printable ASCII characters)".to_owned())
        }
    }

    /// The token as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_id_accepts_twelve_digits_only() {
        assert!(AccountId::parse("111111111111").is_ok());
        for bad in [
            "",
            "11111111111",
            "1111111111111",
            "11111111111a",
            "１１１１１１１１１１１１",
            "11111111111\n",
        ] {
            assert!(AccountId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn link_id_follows_the_aws_pattern() {
        assert!(LinkId::parse("link-12345678").is_ok());
        assert!(LinkId::parse("link-123456789012345678901234").is_ok());
        for bad in [
            "link-1234567",
            "link-1234567890123456789012345",
            "lnk-12345678",
            "link-1234 678",
            "link-1234\u{0}678",
            "link-12345678\u{0430}",
            "LINK-12345678",
        ] {
            assert!(LinkId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_token_bounds() {
        assert!(ClientToken::parse("a").is_ok());
        assert!(ClientToken::parse(&"a".repeat(64)).is_ok());
        assert!(ClientToken::parse(&"a".repeat(65)).is_err());
        assert!(ClientToken::parse("").is_err());
        assert!(ClientToken::parse("tok\u{7}").is_err());
        assert!(ClientToken::parse("tök").is_err());
        assert_eq!(
            format!("{:?}", ClientToken::parse("secret").unwrap()),
            "ClientToken(<redacted>)"
        );
        assert_eq!(ClientToken::generate().as_str().len(), 36);
    }

    #[test]
    fn next_token_bounds() {
        assert!(NextToken::parse("abc").is_ok());
        assert!(NextToken::parse(&"a".repeat(2048)).is_ok());
        assert!(NextToken::parse(&"a".repeat(2049)).is_err());
        assert!(NextToken::parse("").is_err());
    }
}
