//! The audit event (DESIGN §6), as both backends store it.

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// What client-token dedup did with a request (DESIGN §6
/// `idempotency_outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdempotencyOutcome {
    /// First drive of a token (or of a token whose record expired).
    New,
    /// A caller re-drove a retryable or lease-expired record (same
    /// upstream ClientToken as the first drive).
    Takeover,
    /// The completer (principal `system:completer`) re-drove a record
    /// whose driver went away, without its caller.
    Recovered,
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
    pub const ALL: [Self; 7] = [
        Self::New,
        Self::Takeover,
        Self::Recovered,
        Self::Replayed,
        Self::InProgress,
        Self::Mismatch,
        Self::None,
    ];

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// The stored name:
    /// `new|takeover|recovered|replayed|in_progress|mismatch|none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Takeover => "takeover",
            Self::Recovered => "recovered",
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
    /// Unique id: a UUIDv7 from [`AuditEvent::new_event_id`] (UUIDv4 in
    /// events written before 2026-12-07; both stay valid).
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

impl AuditEvent {
    /// A new `event_id`: a UUIDv7 (RFC 9562 §5.7), whose first 48 bits are
    /// the Unix time in milliseconds and the rest random. Ids made later
    /// sort later, so the primary-key index of `audit_event` grows at its
    /// right edge instead of taking each insert to a random page, as UUIDv4
    /// did: a page that on SQLite is written whole to the WAL at the
    /// commit, and on PostgreSQL is read from disk and logged whole after
    /// each checkpoint once the index outgrows the cache
    /// (docs/benchmarks.md, "The contract's floor on each store"). It is no
    /// ordering of the trail: `seq` is.
    #[must_use]
    pub fn new_event_id() -> Uuid {
        Uuid::now_v7()
    }
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

/// Whether `value` holds a NUL character in any string or key.
fn json_has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(json_has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        _ => false,
    }
}

/// `value` with every NUL in its strings and keys replaced by U+FFFD.
fn json_without_nul(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace('\0', "\u{FFFD}")),
        Value::Array(items) => Value::Array(items.iter().map(json_without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.replace('\0', "\u{FFFD}"), json_without_nul(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `event` as both stores can hold it exactly, and therefore as it is
/// hashed: a NUL character, which PostgreSQL refuses in `text` and `jsonb`
/// (SQLSTATE 22021, 22P05), becomes U+FFFD in every string, and the two
/// counters are clamped to their columns' range (`upstream_attempts` to
/// `i32::MAX`, `duration_us` to `i64::MAX`). Hashing what is stored keeps
/// `audit verify` from reporting tampering that never happened, and a
/// stray NUL can never make an RPC unauditable. Borrows when nothing
/// changes (every real event).
pub(crate) fn storable(event: &AuditEvent) -> std::borrow::Cow<'_, AuditEvent> {
    const MAX_ATTEMPTS: u32 = i32::MAX.unsigned_abs();
    const MAX_DURATION: u64 = i64::MAX.unsigned_abs();
    let nul = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains('\0'));
    let changes = [
        &event.method,
        &event.principal,
        &event.request_id,
        &event.grpc_code,
    ]
    .iter()
    .any(|s| s.contains('\0'))
        || [
            &event.source_ip,
            &event.user_agent,
            &event.account_id,
            &event.error_reason,
            &event.error_message,
            &event.upstream_request_id,
            &event.client_token_sha256,
        ]
        .into_iter()
        .any(nul)
        || json_has_nul(&event.request_parameters)
        || event.response_elements.as_ref().is_some_and(json_has_nul)
        || event.upstream_attempts > MAX_ATTEMPTS
        || event.duration_us > MAX_DURATION;
    if !changes {
        return std::borrow::Cow::Borrowed(event);
    }
    let clean = |s: &String| s.replace('\0', "\u{FFFD}");
    let clean_opt = |s: &Option<String>| s.as_ref().map(clean);
    std::borrow::Cow::Owned(AuditEvent {
        event_id: event.event_id,
        event_time: event.event_time,
        method: clean(&event.method),
        read_only: event.read_only,
        principal: clean(&event.principal),
        source_ip: clean_opt(&event.source_ip),
        user_agent: clean_opt(&event.user_agent),
        request_id: clean(&event.request_id),
        account_id: clean_opt(&event.account_id),
        request_parameters: json_without_nul(&event.request_parameters),
        response_elements: event.response_elements.as_ref().map(json_without_nul),
        grpc_code: clean(&event.grpc_code),
        error_reason: clean_opt(&event.error_reason),
        error_message: clean_opt(&event.error_message),
        upstream_request_id: clean_opt(&event.upstream_request_id),
        upstream_attempts: event.upstream_attempts.min(MAX_ATTEMPTS),
        idempotency_outcome: event.idempotency_outcome,
        client_token_sha256: clean_opt(&event.client_token_sha256),
        duration_us: event.duration_us.min(MAX_DURATION),
    })
}
