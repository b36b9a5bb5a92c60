//! The upstream: the six WorkSpaces account-link operations, called on
//! behalf of an acting account.
//!
//! [`Upstream`] is the seam between the gRPC handlers and AWS;
//! [`SdkUpstream`] implements it with `aws-sdk-workspaces` (against AWS, or
//! the local emulator through an endpoint override). Errors are classified
//! by AWS error code, not HTTP status (DESIGN §7), into [`UpstreamErrorKind`],
//! which also decides whether a client-token record is final or retryable
//! (DESIGN §5).
//!
//! # Layout
//! - `sdk`: [`SdkUpstream`], the per-account SDK clients, the local rate limit,
//!   error classification.
//! - `http_client`: the one HTTP client (connection pool) every SDK client shares.
//! - `client_cache`: the bounded, build-once cache of `--dev` accounts' clients.

mod client_cache;
mod http_client;
pub mod ram;
mod sdk;

use std::future::Future;

pub use sdk::{
    AccountCredentials, AccountSettings, DEV_CLIENT_CAPACITY, DEV_SECRET_ACCESS_KEY, SdkUpstream,
    UpstreamSettings,
};

use crate::domain::{
    AccountId, AccountLink, GetAccountLinkInput, ListAccountLinksInput, ListAccountLinksPage,
    Mutation,
};

/// A successful upstream answer with what the audit trail records of it.
#[derive(Debug, Clone)]
pub struct UpstreamOutput<T> {
    /// The operation's result.
    pub value: T,
    /// AWS `x-amzn-RequestId` of the final attempt.
    pub aws_request_id: Option<String>,
    /// HTTP attempts the SDK made (1 unless it retried).
    pub attempts: u32,
}

/// How an upstream call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// `ValidationException`: AWS refused the input. Final.
    Validation,
    /// `AccessDeniedException`: the acting account may not do this. Final.
    AccessDenied,
    /// `ResourceNotFoundException`. Final.
    ResourceNotFound,
    /// `ConflictException`: the link's state forbids the operation. Final.
    Conflict,
    /// `ThrottlingException` (or another AWS throttling code). Retryable.
    Throttling,
    /// AWS answered with `InternalServerException`, a 5xx, or an error code
    /// this service does not know: AWS did not apply the change. Retryable.
    Unavailable,
    /// AWS refused this service's credentials or signature
    /// (`UnrecognizedClientException`, `ExpiredTokenException`, …): an
    /// operator must fix the configuration. AWS did not apply the change.
    /// Retryable once fixed.
    Credentials,
    /// Timeout, dropped connection or unreadable response: AWS may or may
    /// not have applied the change. Retryable (the re-drive sends the same
    /// upstream ClientToken, so AWS de-duplicates it).
    OutcomeUnknown,
    /// The request could not be built: a bug in this service. Retryable.
    Internal,
    /// The RPC's deadline passed while the call ran: AWS may or may not
    /// have applied the change. Retryable.
    DeadlineExceeded,
    /// AWS RAM `IdempotentParameterMismatchException`: the upstream client
    /// token was first used with other parameters. Final.
    IdempotentParameterMismatch,
    /// This service's own per-account rate limit refused the call: nothing
    /// was sent. Retryable after `retry_after`.
    RateLimited {
        /// When a token will be available.
        retry_after: std::time::Duration,
    },
}

impl UpstreamErrorKind {
    /// Whether this outcome is deterministic, so a client-token record that
    /// ends with it is `completed` and replayed rather than re-driven
    /// (DESIGN §5, phase 3).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Validation
                | Self::AccessDenied
                | Self::ResourceNotFound
                | Self::Conflict
                | Self::IdempotentParameterMismatch
        )
    }

    /// Classifies an AWS error code (the `__type` / `x-amzn-errortype` name).
    pub fn from_aws_error_code(code: &str) -> Self {
        match code {
            "ValidationException" => Self::Validation,
            "AccessDeniedException" => Self::AccessDenied,
            "ResourceNotFoundException" => Self::ResourceNotFound,
            "ConflictException" => Self::Conflict,
            "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ThrottledException" => Self::Throttling,
            "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "ExpiredToken"
            | "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "MissingAuthenticationTokenException"
            | "MissingAuthenticationToken" => Self::Credentials,
            _ => Self::Unavailable,
        }
    }
}

/// A failed upstream call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("upstream {kind:?} (aws error code {aws_error_code:?}): {message}")]
pub struct UpstreamError {
    /// The classification that drives the gRPC code and the record state.
    pub kind: UpstreamErrorKind,
    /// The AWS error code, when AWS answered.
    pub aws_error_code: Option<String>,
    /// AWS's message, or a description of the transport failure.
    pub message: String,
    /// AWS `x-amzn-RequestId`, when AWS answered.
    pub aws_request_id: Option<String>,
    /// HTTP attempts the SDK made.
    pub attempts: u32,
}

impl UpstreamError {
    /// An `Internal` failure: the request could not be built or has no client
    /// (a bug here, or bad configuration); nothing was sent.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            kind: UpstreamErrorKind::Internal,
            aws_error_code: None,
            message: message.into(),
            aws_request_id: None,
            attempts: 0,
        }
    }
}

/// Why an acting account cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The request named no account and the service has not exactly one.
    #[error("account_id is required: the service is configured with {0} accounts")]
    Required(usize),
    /// The account is not configured.
    #[error("account {0} is not configured")]
    NotConfigured(AccountId),
}

/// The six WorkSpaces account-link operations, as the acting account.
pub trait Upstream: Send + Sync + 'static {
    /// Resolves the acting account: `requested`, or the only configured
    /// account when `requested` is `None`.
    ///
    /// # Errors
    /// [`AccountError`] when no account is named and there is not exactly
    /// one, or the named one is not configured (DESIGN §3, §8).
    fn resolve_account(&self, requested: Option<AccountId>) -> Result<AccountId, AccountError>;

    /// Runs a mutating operation with the upstream `client_token` (1..=64
    /// ASCII characters, sent to AWS as `ClientToken`).
    fn mutate(
        &self,
        acting: &AccountId,
        mutation: &Mutation,
        client_token: &str,
    ) -> impl Future<Output = Result<UpstreamOutput<AccountLink>, UpstreamError>> + Send;

    /// `GetAccountLink`.
    fn get_account_link(
        &self,
        acting: &AccountId,
        input: &GetAccountLinkInput,
    ) -> impl Future<Output = Result<UpstreamOutput<AccountLink>, UpstreamError>> + Send;

    /// `ListAccountLinks`.
    fn list_account_links(
        &self,
        acting: &AccountId,
        input: &ListAccountLinksInput,
    ) -> impl Future<Output = Result<UpstreamOutput<ListAccountLinksPage>, UpstreamError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_codes_classify_and_decide_finality() {
        use UpstreamErrorKind as K;
        for (code, kind, fin) in [
            ("ValidationException", K::Validation, true),
            ("AccessDeniedException", K::AccessDenied, true),
            ("ResourceNotFoundException", K::ResourceNotFound, true),
            ("ConflictException", K::Conflict, true),
            ("ThrottlingException", K::Throttling, false),
            ("InternalServerException", K::Unavailable, false),
            ("UnrecognizedClientException", K::Credentials, false),
            ("ExpiredTokenException", K::Credentials, false),
            ("SomethingNewException", K::Unavailable, false),
        ] {
            assert_eq!(K::from_aws_error_code(code), kind, "{code}");
            assert_eq!(kind.is_final(), fin, "{code}");
        }
        assert!(!K::OutcomeUnknown.is_final());
        assert!(K::IdempotentParameterMismatch.is_final());
    }
}
