//! The audit event (DESIGN §6) and its insertion.

use serde_json::Value;
use sqlx::PgConnection;
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
    pub method: &'static str,
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
    pub grpc_code: &'static str,
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

/// The chain every event is appended to until the audit-trail work adds more.
pub(crate) const DEFAULT_CHAIN: &str = "default";

/// Appends `event` to its chain: locks the chain head (serializing appends
/// across replicas until the caller's transaction ends), takes the next
/// gapless `seq` and inserts the row. Returns the `seq`.
pub(crate) async fn insert_audit_event(
    conn: &mut PgConnection,
    event: &AuditEvent,
) -> Result<i64, sqlx::Error> {
    let seq: i64 = sqlx::query_scalar(
        "update audit_chain set last_seq = last_seq + 1 where chain_id = $1 returning last_seq",
    )
    .bind(DEFAULT_CHAIN)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "insert into audit_event (
            event_id, chain_id, seq, event_time, method, read_only, principal, source_ip,
            user_agent, request_id, account_id, request_parameters, response_elements,
            grpc_code, error_reason, error_message, upstream_request_id, upstream_attempts,
            idempotency_outcome, client_token_sha256, duration_us
        ) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                  $18, $19, $20, $21)",
    )
    .bind(event.event_id)
    .bind(DEFAULT_CHAIN)
    .bind(seq)
    .bind(event.event_time)
    .bind(event.method)
    .bind(event.read_only)
    .bind(&event.principal)
    .bind(&event.source_ip)
    .bind(&event.user_agent)
    .bind(&event.request_id)
    .bind(&event.account_id)
    .bind(&event.request_parameters)
    .bind(&event.response_elements)
    .bind(event.grpc_code)
    .bind(&event.error_reason)
    .bind(&event.error_message)
    .bind(&event.upstream_request_id)
    .bind(i32::try_from(event.upstream_attempts).unwrap_or(i32::MAX))
    .bind(event.idempotency_outcome.as_str())
    .bind(&event.client_token_sha256)
    .bind(i64::try_from(event.duration_us).unwrap_or(i64::MAX))
    .execute(&mut *conn)
    .await?;
    Ok(seq)
}
