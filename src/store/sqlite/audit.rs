//! The SQLite SQL of the audit trail: appending to the hash chain, streaming
//! rows back, and one ListAuditEvents page.

use serde_json::Value;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{from_micros, micros};
use crate::store::audit::{AUDIT_COLUMNS, AuditEvent, DEFAULT_CHAIN, IdempotencyOutcome};
use crate::store::{AuditQuery, AuditRows, StoreError, StoredAuditEvent, hash32};

#[derive(sqlx::FromRow)]
struct AuditRow {
    event_id: Uuid,
    chain_id: String,
    seq: i64,
    event_time: i64,
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
    upstream_attempts: i64,
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
                event_time: from_micros(r.event_time),
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

/// Appends `event` to the default chain, inside the caller's write
/// transaction (which holds SQLite's write lock, so appends are serialized):
/// takes the next gapless `seq`, computes `row_hash` from the head's hash
/// ([`crate::audit::row_hash`], as for PostgreSQL), inserts the row and
/// moves the head. Returns the `seq`.
pub(super) async fn insert_audit_event(
    conn: &mut SqliteConnection,
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
    // Stored to the microsecond, which is all the canonical encoding
    // hashes of a time.
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
    .bind(micros(event.event_time))
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
    .bind(i64::from(event.upstream_attempts))
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
    pool: &'a SqlitePool,
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
    pool: &'a SqlitePool,
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
        .bind(micros(since))
        .bind(micros(until))
        .fetch(pool)
        .map(|row| row.map(StoredAuditEvent::from).map_err(StoreError::from)),
    )
}

/// One ListAuditEvents page: the events of the default chain matching
/// `query`, newest first. As on PostgreSQL, the SQL text is assembled only
/// from fixed fragments, one per filter that is set, and every value is a
/// bound parameter. Each filter has an index of the migration leading with
/// `(chain_id, <filter column>)`; the time range uses
/// `(chain_id, event_time)`.
pub(super) async fn list_audit_events(
    pool: &SqlitePool,
    query: &AuditQuery,
) -> Result<Vec<StoredAuditEvent>, sqlx::Error> {
    let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
        "select {AUDIT_COLUMNS} from audit_event where chain_id = "
    ));
    sql.push_bind(DEFAULT_CHAIN);
    if let Some(seq) = query.before_seq {
        sql.push(" and seq < ").push_bind(seq);
    }
    if let Some(t) = query.start_time {
        sql.push(" and event_time >= ").push_bind(micros(t));
    }
    if let Some(t) = query.end_time {
        sql.push(" and event_time < ").push_bind(micros(t));
    }
    if let Some(m) = &query.method {
        sql.push(" and method = ").push_bind(m.clone());
    }
    if let Some(p) = &query.principal {
        sql.push(" and principal = ").push_bind(p.clone());
    }
    if let Some(a) = &query.account_id {
        sql.push(" and account_id = ").push_bind(a.clone());
    }
    if let Some(l) = &query.link_id {
        // The two expressions of the link-id indexes, verbatim.
        sql.push(" and (json_extract(request_parameters, '$.link_id') = ")
            .push_bind(l.clone())
            .push(" or json_extract(response_elements, '$.AccountLink.AccountLinkId') = ")
            .push_bind(l.clone())
            .push(")");
    }
    if let Some(c) = &query.grpc_code {
        sql.push(" and grpc_code = ").push_bind(c.clone());
    }
    if let Some(o) = query.idempotency_outcome {
        sql.push(" and idempotency_outcome = ")
            .push_bind(o.as_str());
    }
    sql.push(" order by seq desc limit ")
        .push_bind(query.limit.max(0));
    let rows: Vec<AuditRow> = sql.build_query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().map(StoredAuditEvent::from).collect())
}
