//! The account-link model: statuses, links, and the validated inputs of the
//! six operations.

use sha2::{Digest, Sha256};

use super::{AccountId, LinkId, NextToken};

/// AWS `AccountLinkStatusEnum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountLinkStatus {
    /// `LINKED`: the target accepted.
    Linked,
    /// `LINKING_FAILED`.
    LinkingFailed,
    /// `LINK_NOT_FOUND`.
    LinkNotFound,
    /// `PENDING_ACCEPTANCE_BY_TARGET_ACCOUNT`: invited, not answered.
    PendingAcceptanceByTargetAccount,
    /// `REJECTED`: the target rejected.
    Rejected,
}

impl AccountLinkStatus {
    /// Every status, in the AWS model's order.
    pub const ALL: [Self; 5] = [
        Self::Linked,
        Self::LinkingFailed,
        Self::LinkNotFound,
        Self::PendingAcceptanceByTargetAccount,
        Self::Rejected,
    ];

    /// The AWS wire name, e.g. `PENDING_ACCEPTANCE_BY_TARGET_ACCOUNT`.
    pub fn as_aws_str(self) -> &'static str {
        match self {
            Self::Linked => "LINKED",
            Self::LinkingFailed => "LINKING_FAILED",
            Self::LinkNotFound => "LINK_NOT_FOUND",
            Self::PendingAcceptanceByTargetAccount => "PENDING_ACCEPTANCE_BY_TARGET_ACCOUNT",
            Self::Rejected => "REJECTED",
        }
    }

    /// Parses the AWS wire name; `None` for an unknown value.
    pub fn from_aws_str(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_aws_str() == s)
    }
}

/// AWS `AccountLink`: what every mutating operation and `GetAccountLink`
/// return. Values are kept as AWS sent them (not re-validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLink {
    /// `AccountLinkId`.
    pub account_link_id: String,
    /// `AccountLinkStatus`; `None` when AWS sent a value this build does not know.
    pub account_link_status: Option<AccountLinkStatus>,
    /// `SourceAccountId`.
    pub source_account_id: String,
    /// `TargetAccountId`.
    pub target_account_id: String,
}

/// Which mutating operation a [`Mutation`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MutationKind {
    /// `CreateAccountLinkInvitation` (caller: source).
    Create,
    /// `AcceptAccountLinkInvitation` (caller: target).
    Accept,
    /// `RejectAccountLinkInvitation` (caller: target).
    Reject,
    /// `DeleteAccountLinkInvitation` (caller: source).
    Delete,
}

impl MutationKind {
    /// The AWS operation name, also the gRPC method name.
    pub fn method(self) -> &'static str {
        match self {
            Self::Create => "CreateAccountLinkInvitation",
            Self::Accept => "AcceptAccountLinkInvitation",
            Self::Reject => "RejectAccountLinkInvitation",
            Self::Delete => "DeleteAccountLinkInvitation",
        }
    }
}

/// A validated mutating request, without its client token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// `CreateAccountLinkInvitation`: invite `target_account_id`.
    Create {
        /// `TargetAccountId`.
        target_account_id: AccountId,
    },
    /// `AcceptAccountLinkInvitation`.
    Accept {
        /// `LinkId`.
        link_id: LinkId,
    },
    /// `RejectAccountLinkInvitation`.
    Reject {
        /// `LinkId`.
        link_id: LinkId,
    },
    /// `DeleteAccountLinkInvitation`.
    Delete {
        /// `LinkId`.
        link_id: LinkId,
    },
}

/// Version tag of the request fingerprint encoding; bump it when the
/// encoding changes (stored fingerprints of the old version then mismatch).
const FINGERPRINT_VERSION: &str = "accountlink.fingerprint.v1";

impl Mutation {
    /// Which operation this is.
    pub fn kind(&self) -> MutationKind {
        match self {
            Self::Create { .. } => MutationKind::Create,
            Self::Accept { .. } => MutationKind::Accept,
            Self::Reject { .. } => MutationKind::Reject,
            Self::Delete { .. } => MutationKind::Delete,
        }
    }

    /// The request parameters as `(proto field, value)` pairs, without the
    /// client token: the input of the fingerprint and of the audit record.
    pub fn parameters(&self) -> [(&'static str, &str); 1] {
        match self {
            Self::Create { target_account_id } => {
                [("target_account_id", target_account_id.as_str())]
            }
            Self::Accept { link_id } | Self::Reject { link_id } | Self::Delete { link_id } => {
                [("link_id", link_id.as_str())]
            }
        }
    }

    /// SHA-256 fingerprint of the canonical request (DESIGN §5): the method,
    /// the acting account and every field except the client token.
    ///
    /// Encoding: the UTF-8 lines `accountlink.fingerprint.v1`, the method,
    /// `account_id=<acting>`, then `<field>=<value>` per parameter, each line
    /// ended by `\n`. Values are validated and hold no newline, so the
    /// encoding is unambiguous.
    pub fn fingerprint(&self, acting: &AccountId) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(FINGERPRINT_VERSION.as_bytes());
        hasher.update(b"\n");
        hasher.update(self.kind().method().as_bytes());
        hasher.update(b"\naccount_id=");
        hasher.update(acting.as_str().as_bytes());
        hasher.update(b"\n");
        for (field, value) in self.parameters() {
            hasher.update(field.as_bytes());
            hasher.update(b"=");
            hasher.update(value.as_bytes());
            hasher.update(b"\n");
        }
        hasher.finalize().into()
    }
}

/// A validated `GetAccountLink` input: at least one of the two is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetAccountLinkInput {
    /// `LinkId`.
    pub link_id: Option<LinkId>,
    /// `LinkedAccountId`: the other party's account.
    pub linked_account_id: Option<AccountId>,
}

/// A validated `ListAccountLinks` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListAccountLinksInput {
    /// `LinkStatusFilter`; empty means every status.
    pub link_status_filter: Vec<AccountLinkStatus>,
    /// `MaxResults`, 1..=25.
    pub max_results: i32,
    /// `NextToken`, from a previous page.
    pub next_token: Option<NextToken>,
}

/// One page of `ListAccountLinks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListAccountLinksPage {
    /// `AccountLinks`.
    pub account_links: Vec<AccountLink>,
    /// `NextToken`; `None` on the last page.
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(s: &str) -> AccountId {
        AccountId::parse(s).unwrap()
    }

    #[test]
    fn fingerprint_depends_on_method_account_and_fields() {
        let link = LinkId::parse("link-12345678").unwrap();
        let accept = Mutation::Accept {
            link_id: link.clone(),
        };
        let reject = Mutation::Reject { link_id: link };
        let a = acct("111111111111");
        let b = acct("222222222222");
        assert_eq!(accept.fingerprint(&a), accept.clone().fingerprint(&a));
        assert_ne!(accept.fingerprint(&a), reject.fingerprint(&a));
        assert_ne!(accept.fingerprint(&a), accept.fingerprint(&b));
        let other = Mutation::Accept {
            link_id: LinkId::parse("link-87654321").unwrap(),
        };
        assert_ne!(accept.fingerprint(&a), other.fingerprint(&a));
    }

    #[test]
    fn status_round_trips_through_aws_names() {
        for s in AccountLinkStatus::ALL {
            assert_eq!(AccountLinkStatus::from_aws_str(s.as_aws_str()), Some(s));
        }
        assert_eq!(AccountLinkStatus::from_aws_str("BOGUS"), None);
    }
}
