//! Reading the audit trail: one filtered page of `audit_event`, newest first
//! (`seq` descending within a chain), behind a keyset cursor.
//!
//! The SQL text is assembled only from the fixed fragments below, one per
//! filter that is set; every value (filters and the cursor) is a bound
//! parameter, so nothing a caller sends becomes SQL. Each filter shape is
//! served by an index of `migrations/20261121000002_audit_query_indexes.sql`
//! whose leading columns are `(chain_id, <filter column>)` followed by `seq`,
//! so a page is an index range scan that stops after `limit` rows; see
//! `docs/benchmarks.md` for the plans and timings at 1 000 000 events.

use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;

use super::audit::{AUDIT_COLUMNS, AuditRow, DEFAULT_CHAIN, IdempotencyOutcome, StoredAuditEvent};
use super::{PgStore, StoreError};

/// What to read: every filter that is `Some` must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only events with `event_time >= start_time`.
    pub start_time: Option<OffsetDateTime>,
    /// Only events with `event_time < end_time`.
    pub end_time: Option<OffsetDateTime>,
    /// Only events of this RPC method.
    pub method: Option<String>,
    /// Only events of this principal.
    pub principal: Option<String>,
    /// Only events with this acting account.
    pub account_id: Option<String>,
    /// Only events whose request `link_id` or response
    /// `AccountLink.AccountLinkId` is this link id.
    pub link_id: Option<String>,
    /// Only events answered with this `google.rpc.Code` name.
    pub grpc_code: Option<String>,
    /// Only events with this client-token outcome.
    pub idempotency_outcome: Option<IdempotencyOutcome>,
    /// The keyset cursor: only events with `seq < before_seq`.
    pub before_seq: Option<i64>,
    /// Maximum number of events returned.
    pub limit: i64,
}

/// The `audit_event_hour.hour` of a time: whole hours since the Unix epoch,
/// rounded down (as the migration computes it from `event_time`).
fn hour_of(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(3_600_000_000_000)).unwrap_or(i64::MAX)
}

/// The SELECT of `query` (every column of `audit_event`), newest first.
/// `prefix` goes before it, e.g. `explain `.
fn select(prefix: &str, query: &AuditQuery) -> QueryBuilder<Postgres> {
    let mut sql = QueryBuilder::new(format!(
        "{prefix}select {AUDIT_COLUMNS} from audit_event where chain_id = "
    ));
    sql.push_bind(DEFAULT_CHAIN);
    if let Some(seq) = query.before_seq {
        sql.push(" and seq < ").push_bind(seq);
    }
    // Time ranges also bound seq through `audit_event_hour` (see the
    // migration), so the seq-ordered scan starts and stops near the range.
    if let Some(t) = query.start_time {
        sql.push(" and event_time >= ").push_bind(t);
        sql.push(
            " and seq >= (select coalesce(min(min_seq), 9223372036854775807) \
             from audit_event_hour where chain_id = ",
        )
        .push_bind(DEFAULT_CHAIN)
        .push(" and hour >= ")
        .push_bind(hour_of(t))
        .push(")");
    }
    if let Some(t) = query.end_time {
        sql.push(" and event_time < ").push_bind(t);
        sql.push(
            " and seq <= (select coalesce(max(max_seq), 0) \
             from audit_event_hour where chain_id = ",
        )
        .push_bind(DEFAULT_CHAIN)
        .push(" and hour <= ")
        .push_bind(hour_of(t))
        .push(")");
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
        sql.push(" and ((request_parameters ->> 'link_id') = ")
            .push_bind(l.clone())
            .push(" or (response_elements -> 'AccountLink' ->> 'AccountLinkId') = ")
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
    sql
}

/// Reads the events of the default chain that match `query`, newest first,
/// at most `query.limit` of them.
///
/// # Errors
/// The database error.
pub async fn list_audit_events(
    conn: &mut PgConnection,
    query: &AuditQuery,
) -> Result<Vec<StoredAuditEvent>, sqlx::Error> {
    let rows: Vec<AuditRow> = select("", query)
        .build_query_as()
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(StoredAuditEvent::from).collect())
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of the statement [`list_audit_events`]
/// runs for `query`, one line per plan line: for the benchmark and for
/// operators checking index use.
///
/// # Errors
/// The database error.
pub async fn explain_list_audit_events(
    conn: &mut PgConnection,
    query: &AuditQuery,
) -> Result<Vec<String>, sqlx::Error> {
    select("explain (analyze, buffers) ", query)
        .build_query_scalar()
        .fetch_all(&mut *conn)
        .await
}

impl PgStore {
    /// [`list_audit_events`] on a pooled connection.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_audit_events(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<StoredAuditEvent>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        Ok(list_audit_events(&mut conn, query).await?)
    }
}
