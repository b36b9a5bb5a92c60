//! The PostgreSQL SQL of the audit trail: appending to the hash chain and
//! streaming rows back.

use serde_json::Value;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::audit::{
    AUDIT_COLUMNS, AuditEvent, DEFAULT_CHAIN, IdempotencyOutcome, StoredAuditEvent,
};
use crate::store::{AuditRows, StoreError, hash32};

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    event_id: Uuid,
    chain_id: String,
    seq: i64,
    event_time: OffsetDateTime,
    method: String,
    read_only: bool,
    principal: String,
    source_ip: Option<String>,
    user_agent: Option<String>,
    request_id: String,
    account_id: Option<String>,
    request_parameters: Value,
    response_elements: Option<Value>,
    grpc_code: String,
    error_reason: Option<String>,
    error_message: Option<String>,
    upstream_request_id: Option<String>,
    upstream_attempts: i32,
    idempotency_outcome: String,
    client_token_sha256: Option<String>,
    duration_us: i64,
    prev_hash: Vec<u8>,
    row_hash: Vec<u8>,
}

impl From<AuditRow> for StoredAuditEvent {
    fn from(r: AuditRow) -> Self {
        Self {
            chain_id: r.chain_id,
            seq: r.seq,
            prev_hash: r.prev_hash,
            row_hash: r.row_hash,
            event: AuditEvent {
                event_id: r.event_id,
                event_time: r.event_time,
                method: r.method,
                read_only: r.read_only,
                principal: r.principal,
                source_ip: r.source_ip,
                user_agent: r.user_agent,
                request_id: r.request_id,
                account_id: r.account_id,
                request_parameters: r.request_parameters,
                response_elements: r.response_elements,
                grpc_code: r.grpc_code,
                error_reason: r.error_reason,
                error_message: r.error_message,
                upstream_request_id: r.upstream_request_id,
                upstream_attempts: u32::try_from(r.upstream_attempts).unwrap_or(0),
                // The column's check constraint admits only known names.
                idempotency_outcome: IdempotencyOutcome::parse(&r.idempotency_outcome)
                    .unwrap_or(IdempotencyOutcome::None),
                client_token_sha256: r.client_token_sha256,
                duration_us: u64::try_from(r.duration_us).unwrap_or(0),
            },
        }
    }
}

/// Appends `event` to its chain: locks the chain head (serializing appends
/// across replicas until the caller's transaction ends), takes the next
/// gapless `seq`, computes `row_hash` from the head's hash, inserts the row
/// and moves the head. Returns the `seq`.
pub(super) async fn insert_audit_event(
    conn: &mut PgConnection,
    event: &AuditEvent,
) -> Result<i64, StoreError> {
    let (seq, last_hash): (i64, Vec<u8>) = sqlx::query_as(
        "update audit_chain set last_seq = last_seq + 1 where chain_id = $1 \
         returning last_seq, last_hash",
    )
    .bind(DEFAULT_CHAIN)
    .fetch_one(&mut *conn)
    .await?;
    let prev = hash32(&last_hash, "audit_chain.last_hash")?;
    let row_hash = crate::audit::row_hash(&prev, DEFAULT_CHAIN, seq, event);
    sqlx::query(
        "insert into audit_event (
            event_id, chain_id, seq, event_time, method, read_only, principal, source_ip,
            user_agent, request_id, account_id, request_parameters, response_elements,
            grpc_code, error_reason, error_message, upstream_request_id, upstream_attempts,
            idempotency_outcome, client_token_sha256, duration_us, prev_hash, row_hash
        ) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                  $18, $19, $20, $21, $22, $23)",
    )
    .bind(event.event_id)
    .bind(DEFAULT_CHAIN)
    .bind(seq)
    .bind(event.event_time)
    .bind(&event.method)
    .bind(event.read_only)
    .bind(&event.principal)
    .bind(&event.source_ip)
    .bind(&event.user_agent)
    .bind(&event.request_id)
    .bind(&event.account_id)
    .bind(&event.request_parameters)
    .bind(&event.response_elements)
    .bind(&event.grpc_code)
    .bind(&event.error_reason)
    .bind(&event.error_message)
    .bind(&event.upstream_request_id)
    .bind(i32::try_from(event.upstream_attempts).unwrap_or(i32::MAX))
    .bind(event.idempotency_outcome.as_str())
    .bind(&event.client_token_sha256)
    .bind(i64::try_from(event.duration_us).unwrap_or(i64::MAX))
    .bind(prev.as_slice())
    .bind(row_hash.as_slice())
    .execute(&mut *conn)
    .await?;
    sqlx::query("update audit_chain set last_hash = $2 where chain_id = $1")
        .bind(DEFAULT_CHAIN)
        .bind(row_hash.as_slice())
        .execute(&mut *conn)
        .await?;
    Ok(seq)
}

/// Streams the events of `chain_id` with `from <= seq <= to`, in `seq`
/// order.
pub(super) fn rows_between<'a>(
    pool: &'a sqlx::PgPool,
    chain_id: &'a str,
    from: i64,
    to: i64,
) -> AuditRows<'a> {
    use tokio_stream::StreamExt;
    Box::pin(
        sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(format!(
            "select {AUDIT_COLUMNS} from audit_event \
             where chain_id = $1 and seq between $2 and $3 order by seq"
        )))
        .bind(chain_id)
        .bind(from)
        .bind(to)
        .fetch(pool)
        .map(|row| row.map(StoredAuditEvent::from).map_err(StoreError::from)),
    )
}

/// Streams the events of `chain_id` with `since <= event_time < until`, in
/// `seq` order.
pub(super) fn rows_in_time_range<'a>(
    pool: &'a sqlx::PgPool,
    chain_id: &'a str,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> AuditRows<'a> {
    use tokio_stream::StreamExt;
    Box::pin(
        sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(format!(
            "select {AUDIT_COLUMNS} from audit_event \
             where chain_id = $1 and event_time >= $2 and event_time < $3 order by seq"
        )))
        .bind(chain_id)
        .bind(since)
        .bind(until)
        .fetch(pool)
        .map(|row| row.map(StoredAuditEvent::from).map_err(StoreError::from)),
    )
}
