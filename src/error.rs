//! The service's error type and its one conversion to `tonic::Status`.
//!
//! [`ApiError`] holds what the client sees (gRPC code, `ErrorInfo.reason`,
//! message and rich details per AIP-193, built with `tonic-types`) and what
//! the audit trail records of it. Client errors keep their message and
//! details; internal errors are logged with their cause and reach the client
//! as an opaque message (DESIGN §7).

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::AuthError;
use crate::domain::{AccountId, FieldViolation};
use crate::grpc::Malformed;
use crate::upstream::{AccountError, UpstreamError, UpstreamErrorKind};

/// `ErrorInfo.domain` of every error this service returns.
pub const ERROR_DOMAIN: &str = "accountlink.v1";

/// The `ResourceInfo.resource_type` of an account link.
pub const ACCOUNT_LINK_RESOURCE_TYPE: &str = "workspaces.amazonaws.com/AccountLink";

/// The `ResourceInfo.resource_type` of an AWS RAM resource-share invitation.
pub const AWS_RAM_INVITATION_RESOURCE_TYPE: &str = "ram.amazonaws.com/ResourceShareInvitation";

/// The `ResourceInfo.resource_type` of a Huawei RAM resource-share invitation.
pub const HUAWEI_RAM_INVITATION_RESOURCE_TYPE: &str =
    "ram.myhuaweicloud.com/ResourceShareInvitation";

/// What an upstream error is about, for [`ApiError::upstream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamResource {
    /// `ResourceInfo.resource_type` of a not-found error.
    pub resource_type: &'static str,
    /// `PreconditionFailure.Violation.type` of a Conflict (the resource's
    /// state forbids the operation).
    pub status_type: &'static str,
    /// A Conflict means the resource exists already (ALREADY_EXISTS, on a
    /// create) rather than a failed precondition.
    pub conflict_is_already_exists: bool,
}

impl UpstreamResource {
    /// An account link, for Accept, Reject, Delete, Get and List.
    pub const ACCOUNT_LINK: Self = Self {
        resource_type: ACCOUNT_LINK_RESOURCE_TYPE,
        status_type: "ACCOUNT_LINK_STATUS",
        conflict_is_already_exists: false,
    };
    /// An account link, for CreateAccountLinkInvitation.
    pub const ACCOUNT_LINK_CREATE: Self = Self {
        conflict_is_already_exists: true,
        ..Self::ACCOUNT_LINK
    };
    /// An AWS RAM invitation: a Conflict is AlreadyAccepted, AlreadyRejected
    /// or Expired.
    pub const AWS_RAM_INVITATION: Self = Self {
        resource_type: AWS_RAM_INVITATION_RESOURCE_TYPE,
        status_type: "RESOURCE_SHARE_INVITATION_STATUS",
        conflict_is_already_exists: false,
    };
    /// A Huawei RAM invitation.
    pub const HUAWEI_RAM_INVITATION: Self = Self {
        resource_type: HUAWEI_RAM_INVITATION_RESOURCE_TYPE,
        ..Self::AWS_RAM_INVITATION
    };
}

/// Suggested client back-off for retryable errors (`google.rpc.RetryInfo`).
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// `ErrorInfo.reason` values (UPPER_SNAKE_CASE, AIP-193).
pub mod reason {
    /// Local validation failed (DESIGN §4).
    pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
    /// The request message is not valid protobuf for its method.
    pub const MALFORMED_REQUEST: &str = "MALFORMED_REQUEST";
    /// The request message is compressed; only uncompressed messages are
    /// accepted (UNIMPLEMENTED, as gRPC specifies for an unsupported
    /// `grpc-encoding`).
    pub const COMPRESSION_UNSUPPORTED: &str = "COMPRESSION_UNSUPPORTED";
    /// The request message exceeds the size limit.
    pub const MESSAGE_TOO_LARGE: &str = "MESSAGE_TOO_LARGE";
    /// A client token was reused with other parameters (AWS RAM rules).
    pub const IDEMPOTENCY_PARAMETER_MISMATCH: &str = "IDEMPOTENCY_PARAMETER_MISMATCH";
    /// The same client token is being processed by another request.
    pub const IDEMPOTENCY_KEY_IN_USE: &str = "IDEMPOTENCY_KEY_IN_USE";
    /// The caller's policy does not allow this method or acting account.
    pub const CALLER_NOT_ALLOWED: &str = "CALLER_NOT_ALLOWED";
    /// The acting account is not configured on this service.
    pub const ACCOUNT_NOT_CONFIGURED: &str = "ACCOUNT_NOT_CONFIGURED";
    /// AWS `ValidationException`.
    pub const AWS_VALIDATION: &str = "AWS_VALIDATION";
    /// AWS `AccessDeniedException`.
    pub const AWS_ACCESS_DENIED: &str = "AWS_ACCESS_DENIED";
    /// AWS `ResourceNotFoundException`.
    pub const RESOURCE_NOT_FOUND: &str = "RESOURCE_NOT_FOUND";
    /// AWS `ConflictException`.
    pub const AWS_CONFLICT: &str = "AWS_CONFLICT";
    /// This service's per-account AWS call rate limit refused the call.
    pub const LOCAL_RATE_LIMITED: &str = "LOCAL_RATE_LIMITED";
    /// The in-flight RPC limit was reached (load shedding).
    pub const OVERLOADED: &str = "OVERLOADED";
    /// The RPC's deadline passed.
    pub const DEADLINE_EXCEEDED: &str = "DEADLINE_EXCEEDED";
    /// AWS throttled the call.
    pub const UPSTREAM_THROTTLED: &str = "UPSTREAM_THROTTLED";
    /// AWS failed without applying the change (5xx, InternalServerException).
    pub const UPSTREAM_UNAVAILABLE: &str = "UPSTREAM_UNAVAILABLE";
    /// AWS refused this service's own credentials: an operator must act.
    pub const UPSTREAM_CREDENTIALS_REJECTED: &str = "UPSTREAM_CREDENTIALS_REJECTED";
    /// AWS may or may not have applied the change (timeout, transport).
    pub const OUTCOME_UNKNOWN: &str = "OUTCOME_UNKNOWN";
    /// The database did not answer.
    pub const DATABASE_UNAVAILABLE: &str = "DATABASE_UNAVAILABLE";
    /// A bug in this service.
    pub const INTERNAL: &str = "INTERNAL";
}

/// An error answered to a gRPC client.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: Code,
    reason: &'static str,
    message: String,
    details: Box<ErrorDetails>,
}

impl ApiError {
    fn new(code: Code, reason: &'static str, message: impl Into<String>) -> Self {
        let mut details = ErrorDetails::new();
        details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
        Self {
            code,
            reason,
            message: message.into(),
            details: Box::new(details),
        }
    }

    fn with_metadata(mut self, metadata: HashMap<String, String>) -> Self {
        self.details
            .set_error_info(self.reason, ERROR_DOMAIN, metadata);
        self
    }

    /// INVALID_ARGUMENT with one `BadRequest` field violation per bad field
    /// (DESIGN §4).
    pub fn invalid_argument(violations: &[FieldViolation]) -> Self {
        let summary = violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; ");
        let mut err = Self::new(
            Code::InvalidArgument,
            reason::INVALID_ARGUMENT,
            format!("invalid request: {summary}"),
        );
        for v in violations {
            err.details
                .add_bad_request_violation(&v.field, &v.description);
        }
        err
    }

    /// An undecodable request (INVALID_ARGUMENT, reason
    /// `MALFORMED_REQUEST`, BadRequest on the whole message) or one over
    /// the size limit (RESOURCE_EXHAUSTED, reason `MESSAGE_TOO_LARGE`, as
    /// gRPC specifies for size limits), or a compressed one (UNIMPLEMENTED,
    /// reason `COMPRESSION_UNSUPPORTED`, when `grpc-encoding` names the
    /// compression; else INVALID_ARGUMENT `MALFORMED_REQUEST`).
    pub fn malformed(malformed: &Malformed) -> Self {
        match malformed {
            Malformed::TooLarge(limit) => Self::new(
                Code::ResourceExhausted,
                reason::MESSAGE_TOO_LARGE,
                format!("the request message exceeds {limit} bytes"),
            ),
            Malformed::Undecodable(why) => {
                let mut e = Self::new(Code::InvalidArgument, reason::MALFORMED_REQUEST, why);
                e.details.add_bad_request_violation("", why);
                e
            }
            Malformed::Compressed {
                encoding: Some(encoding),
            } => Self::new(
                Code::Unimplemented,
                reason::COMPRESSION_UNSUPPORTED,
                format!(
                    "the request message is compressed with {:?}; this service accepts \
                     uncompressed messages only (grpc-accept-encoding: identity)",
                    encoding.chars().take(64).collect::<String>()
                ),
            ),
            Malformed::Compressed { encoding: None } => {
                let why = "the message's compressed flag is set but grpc-encoding names no \
                           compression";
                let mut e = Self::new(Code::InvalidArgument, reason::MALFORMED_REQUEST, why);
                e.details.add_bad_request_violation("", why);
                e
            }
        }
    }

    /// INVALID_ARGUMENT, reason `IDEMPOTENCY_PARAMETER_MISMATCH`: the client
    /// token was first used with other parameters (AWS RAM
    /// `IdempotentParameterMismatch`).
    pub fn idempotency_parameter_mismatch() -> Self {
        let mut err = Self::new(
            Code::InvalidArgument,
            reason::IDEMPOTENCY_PARAMETER_MISMATCH,
            "client_token was already used with different request parameters",
        );
        err.details.add_bad_request_violation(
            "client_token",
            "already used with different request parameters; use a new token",
        );
        err
    }

    /// ABORTED, reason `IDEMPOTENCY_KEY_IN_USE`, with `RetryInfo`: a request
    /// with the same client token is in progress.
    pub fn idempotency_key_in_use(retry_after: Duration) -> Self {
        let mut err = Self::new(
            Code::Aborted,
            reason::IDEMPOTENCY_KEY_IN_USE,
            "a request with this client_token is in progress; retry later",
        );
        err.details.set_retry_info(Some(retry_after));
        err
    }

    /// UNAUTHENTICATED with ErrorInfo (reason `CREDENTIALS_MISSING` or
    /// `INVALID_BEARER_TOKEN`).
    pub fn unauthenticated(err: AuthError) -> Self {
        Self::new(Code::Unauthenticated, err.reason(), err.to_string())
    }

    /// PERMISSION_DENIED, reason `CALLER_NOT_ALLOWED`: the policy does not
    /// allow `principal` to call `method` (as `account`, when known).
    pub fn caller_not_allowed(principal: &str, method: &str, account: Option<&AccountId>) -> Self {
        let message = match account {
            Some(a) => format!("{principal} may not call {method} as account {a}"),
            None => format!("{principal} may not call {method}"),
        };
        let mut metadata = HashMap::from([
            ("principal".to_owned(), principal.to_owned()),
            ("method".to_owned(), method.to_owned()),
        ]);
        if let Some(a) = account {
            metadata.insert("account_id".to_owned(), a.to_string());
        }
        Self::new(Code::PermissionDenied, reason::CALLER_NOT_ALLOWED, message)
            .with_metadata(metadata)
    }

    /// The acting account cannot be used: INVALID_ARGUMENT when none was
    /// named and the service has not exactly one, FAILED_PRECONDITION
    /// reason `ACCOUNT_NOT_CONFIGURED` when it is not configured.
    pub fn account(err: &AccountError) -> Self {
        match err {
            AccountError::Required(_) => {
                Self::invalid_argument(&[FieldViolation::new("account_id", err.to_string())])
            }
            AccountError::NotConfigured(account) => {
                let mut e = Self::new(
                    Code::FailedPrecondition,
                    reason::ACCOUNT_NOT_CONFIGURED,
                    err.to_string(),
                );
                e.details.add_precondition_failure_violation(
                    "ACCOUNT_NOT_CONFIGURED",
                    format!("aws:account/{account}"),
                    "the acting account has no credentials configured on this service",
                );
                e
            }
        }
    }

    /// Maps an upstream failure of any provider by its error code (DESIGN §7;
    /// issue 12 for RAM). `kind` names the resource type and what a Conflict
    /// means for it (ALREADY_EXISTS on an account-link Create,
    /// FAILED_PRECONDITION otherwise); `resource` names the field and value
    /// for `ResourceInfo`, `PreconditionFailure` and `BadRequest`; `owner` is
    /// the acting account.
    pub fn upstream(
        err: &UpstreamError,
        kind: &UpstreamResource,
        resource: (&str, &str),
        owner: &str,
    ) -> Self {
        let (field, name) = resource;
        let message = if err.message.is_empty() {
            err.aws_error_code.clone().unwrap_or_default()
        } else {
            err.message.clone()
        };
        let mut e = match err.kind {
            UpstreamErrorKind::Validation => {
                let mut e = Self::new(Code::InvalidArgument, reason::AWS_VALIDATION, &message);
                e.details.add_bad_request_violation(field, &message);
                e
            }
            UpstreamErrorKind::AccessDenied => {
                Self::new(Code::PermissionDenied, reason::AWS_ACCESS_DENIED, &message)
            }
            UpstreamErrorKind::ResourceNotFound => {
                let mut e = Self::new(Code::NotFound, reason::RESOURCE_NOT_FOUND, &message);
                e.details
                    .set_resource_info(kind.resource_type, name, owner, &message);
                e
            }
            UpstreamErrorKind::Conflict if kind.conflict_is_already_exists => {
                Self::new(Code::AlreadyExists, reason::AWS_CONFLICT, &message)
            }
            UpstreamErrorKind::Conflict => {
                let mut e = Self::new(Code::FailedPrecondition, reason::AWS_CONFLICT, &message);
                e.details
                    .add_precondition_failure_violation(kind.status_type, name, &message);
                e
            }
            UpstreamErrorKind::Throttling => {
                let mut e = Self::new(
                    Code::ResourceExhausted,
                    reason::UPSTREAM_THROTTLED,
                    &message,
                );
                e.details.set_retry_info(Some(DEFAULT_RETRY_DELAY));
                e
            }
            UpstreamErrorKind::Unavailable => {
                let mut e = Self::new(Code::Unavailable, reason::UPSTREAM_UNAVAILABLE, &message);
                e.details.set_retry_info(Some(DEFAULT_RETRY_DELAY));
                e
            }
            UpstreamErrorKind::Credentials => {
                tracing::error!(
                    aws_error_code = ?err.aws_error_code,
                    account = owner,
                    "aws rejected the service's credentials for this account"
                );
                // No RetryInfo: retrying does not help until an operator
                // fixes the credentials.
                Self::new(
                    Code::Unavailable,
                    reason::UPSTREAM_CREDENTIALS_REJECTED,
                    "AWS rejected this service's credentials for the acting account; contact the operators",
                )
            }
            UpstreamErrorKind::OutcomeUnknown => {
                let mut e = Self::new(
                    Code::Unavailable,
                    reason::OUTCOME_UNKNOWN,
                    "the upstream outcome is unknown; retry with the same client_token",
                );
                e.details.set_retry_info(Some(DEFAULT_RETRY_DELAY));
                e
            }
            UpstreamErrorKind::IdempotentParameterMismatch => {
                Self::idempotency_parameter_mismatch()
            }
            UpstreamErrorKind::Internal => return Self::internal(err),
            UpstreamErrorKind::DeadlineExceeded => {
                let mut e = Self::new(
                    Code::DeadlineExceeded,
                    reason::DEADLINE_EXCEEDED,
                    "the deadline passed during the AWS call; its outcome is unknown: retry with the same client_token",
                );
                e.details.set_retry_info(Some(DEFAULT_RETRY_DELAY));
                e
            }
            UpstreamErrorKind::RateLimited { retry_after } => {
                let mut e = Self::new(
                    Code::ResourceExhausted,
                    reason::LOCAL_RATE_LIMITED,
                    &message,
                );
                e.details
                    .set_retry_info(Some(retry_after.max(std::time::Duration::from_millis(10))));
                e
            }
        };
        let mut metadata = HashMap::new();
        if let Some(code) = &err.aws_error_code {
            metadata.insert("aws_error_code".to_owned(), code.clone());
        }
        if let Some(id) = &err.aws_request_id {
            metadata.insert("aws_request_id".to_owned(), id.clone());
        }
        e = e.with_metadata(metadata);
        e
    }

    /// UNAVAILABLE, reason `DATABASE_UNAVAILABLE`, with `RetryInfo`; the
    /// cause is logged, not sent.
    pub fn database(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %crate::telemetry::error_chain(cause), "database unavailable");
        let mut e = Self::new(
            Code::Unavailable,
            reason::DATABASE_UNAVAILABLE,
            "the service's database is unavailable; retry later",
        );
        e.details.set_retry_info(Some(DEFAULT_RETRY_DELAY));
        e
    }

    /// [`ApiError::database`] without a cause to log: the health probe
    /// already saw the database down (and logged it), so the RPC fails
    /// fast without trying it.
    pub fn database_down() -> Self {
        let mut e = Self::new(
            Code::Unavailable,
            reason::DATABASE_UNAVAILABLE,
            "the service's database is unavailable; retry later",
        );
        e.details.set_retry_info(Some(DEFAULT_RETRY_DELAY));
        e
    }

    /// INTERNAL with an opaque message; the cause is logged, not sent.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %crate::telemetry::error_chain(cause), "internal error");
        Self::new(Code::Internal, reason::INTERNAL, "internal error")
    }

    /// The gRPC status code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The `ErrorInfo.reason`.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The message sent to the client.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        Status::with_error_details(err.code, err.message, *err.details)
    }
}

/// The canonical name of a gRPC code, e.g. `INVALID_ARGUMENT` (the names of
/// `google.rpc.Code`), as stored in the audit trail.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
