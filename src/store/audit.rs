//! The audit event (DESIGN §6), as both backends store it.

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// What client-token dedup did with a request (DESIGN §6
/// `idempotency_outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdempotencyOutcome {
    /// First drive of a token, or a re-drive of a retryable/expired one.
    New,
    /// A completed outcome was replayed; no upstream call.
    Replayed,
    /// Refused: another request holds the token's lease.
    InProgress,
    /// Refused: the token was used with other parameters.
    Mismatch,
    /// Not a deduplicated call (reads, or refused before the claim).
    None,
}

impl IdempotencyOutcome {
    /// Every outcome.
    pub const ALL: [Self; 5] = [
        Self::New,
        Self::Replayed,
        Self::InProgress,
        Self::Mismatch,
        Self::None,
    ];

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// The stored name: `new|replayed|in_progress|mismatch|none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Replayed => "replayed",
            Self::InProgress => "in_progress",
            Self::Mismatch => "mismatch",
            Self::None => "none",
        }
    }
}

/// One audit event: one per RPC, whatever its outcome.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Unique id (UUIDv4).
    pub event_id: Uuid,
    /// Completion time, UTC.
    pub event_time: OffsetDateTime,
    /// The RPC method name, e.g. `CreateAccountLinkInvitation`.
    pub method: String,
    /// Whether the RPC only reads.
    pub read_only: bool,
    /// The authenticated caller, or `anonymous`.
    pub principal: String,
    /// The peer address of the gRPC connection.
    pub source_ip: Option<String>,
    /// The caller's `user-agent` metadata.
    pub user_agent: Option<String>,
    /// The request id (`x-request-id`, or generated), echoed to the caller.
    pub request_id: String,
    /// The acting account, once resolved.
    pub account_id: Option<String>,
    /// Redacted request fields: never the client token or a secret.
    pub request_parameters: Value,
    /// The answer of a mutation; `None` for reads and errors.
    pub response_elements: Option<Value>,
    /// `google.rpc.Code` name of the answer, e.g. `OK`.
    pub grpc_code: String,
    /// `ErrorInfo.reason` of an error answer.
    pub error_reason: Option<String>,
    /// The error message sent to the caller.
    pub error_message: Option<String>,
    /// AWS `x-amzn-RequestId` of the upstream call.
    pub upstream_request_id: Option<String>,
    /// HTTP attempts made upstream by this RPC (0 when none).
    pub upstream_attempts: u32,
    /// What client-token dedup did.
    pub idempotency_outcome: IdempotencyOutcome,
    /// Hex SHA-256 of the effective client token, for mutations.
    pub client_token_sha256: Option<String>,
    /// Time from receipt to answer, in microseconds.
    pub duration_us: u64,
}

/// The chain every event is appended to.
pub const DEFAULT_CHAIN: &str = "default";

/// An audit event as stored: the event, its place in its chain and its
/// hashes.
#[derive(Debug, Clone)]
pub struct StoredAuditEvent {
    /// The chain (`default`).
    pub chain_id: String,
    /// Gapless position in the chain, from 1.
    pub seq: i64,
    /// The previous row's `row_hash` (32 zero bytes before the first row).
    pub prev_hash: Vec<u8>,
    /// `SHA-256(prev_hash || canonical(event))`, see [`crate::audit`].
    pub row_hash: Vec<u8>,
    /// The event.
    pub event: AuditEvent,
}
