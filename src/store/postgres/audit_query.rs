//! Reading the audit trail on PostgreSQL: one filtered page of `audit_event`, newest first
//! (`seq` descending within a chain), behind a keyset cursor.
//!
//! The SQL text is assembled only from the fixed fragments below, one per
//! filter that is set; every value (filters and the cursor) is a bound
//! parameter, so nothing a caller sends becomes SQL. Each filter shape is
//! served by an index of `migrations/postgres/20261121000002_audit_query_indexes.sql`
//! whose leading columns are `(chain_id, <filter column>)` followed by `seq`,
//! so a page is an index range scan that stops after `limit` rows. A time
//! range is first turned into a seq range with two probes of
//! `audit_event_hour`, which bounds that scan. See `docs/benchmarks.md` for
//! the plans and timings at 1 000 000 events.
//!
//! Statements are not prepared for reuse (`persistent(false)`): PostgreSQL
//! then plans each page with the actual values (a custom plan) instead of
//! switching to a generic plan after five executions, which guesses the
//! selectivity of a time range or a `grpc_code` and can pick a plan that
//! reads half the table. Planning costs a fraction of a millisecond.

use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;

use crate::store::audit::DEFAULT_CHAIN;
use crate::store::sql::{AUDIT_COLUMNS, AuditRow, push_attribute_filters};
use crate::store::{AuditQuery, StoredAuditEvent};

/// The `audit_event_hour.hour` of a time: whole hours since the Unix epoch,
/// rounded down (as the migration computes it from `event_time`).
fn hour_of(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(3_600_000_000_000)).unwrap_or(i64::MAX)
}

/// The first `seq` of the chain `$1` in the hour `$2` or later, from
/// `audit_event_hour` (null when there is no such hour).
const LOW_SEQ: &str = "(select min_seq_from from audit_event_hour \
     where chain_id = $1 and hour >= $2 order by hour limit 1)";

/// The last `seq` of the chain `$1` in the hour `$3` or earlier (null when
/// there is no such hour).
const HIGH_SEQ: &str = "(select max_seq_upto from audit_event_hour \
     where chain_id = $1 and hour <= $3 order by hour desc limit 1)";

/// The seq range `[low, high]` that holds every event of the query's time
/// range (`None` on a side without a bound), from `audit_event_hour`. A side
/// with a time bound but no hour on that side means no event can match:
/// `low` becomes `i64::MAX`, `high` 0.
async fn seq_range(
    conn: &mut PgConnection,
    query: &AuditQuery,
) -> Result<(Option<i64>, Option<i64>), sqlx::Error> {
    let (low, high): (Option<i64>, Option<i64>) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("select {LOW_SEQ}, {HIGH_SEQ}")))
            .bind(DEFAULT_CHAIN)
            .bind(query.start_time.map_or(i64::MAX, hour_of))
            .bind(query.end_time.map_or(i64::MIN, hour_of))
            .fetch_one(&mut *conn)
            .await?;
    Ok((
        query.start_time.map(|_| low.unwrap_or(i64::MAX)),
        query.end_time.map(|_| high.unwrap_or(0)),
    ))
}

/// The SELECT of `query` (every column of `audit_event`), newest first,
/// within `seq_range`. `prefix` goes before it, e.g. `explain `.
fn select(
    prefix: &str,
    query: &AuditQuery,
    seq_range: (Option<i64>, Option<i64>),
) -> QueryBuilder<Postgres> {
    let mut sql = QueryBuilder::new(format!(
        "{prefix}select {AUDIT_COLUMNS} from audit_event where chain_id = "
    ));
    sql.push_bind(DEFAULT_CHAIN);
    if let Some(seq) = query.before_seq {
        sql.push(" and seq < ").push_bind(seq);
    }
    if let Some(low) = seq_range.0 {
        sql.push(" and seq >= ").push_bind(low);
    }
    if let Some(high) = seq_range.1 {
        sql.push(" and seq <= ").push_bind(high);
    }
    // The time filter itself is written so that the planner cannot use
    // `audit_event_event_time_idx` for it (`+ interval '0'` changes nothing
    // else): seq and event_time are correlated, PostgreSQL estimates them
    // as independent, and would then collect the whole time range through
    // that index and sort it (20 ms for a day of 1 000 000 events over 30
    // days) instead of scanning the seq range backward, which stops after a
    // page and is bounded by the range plus its two partial hours.
    if let Some(t) = query.start_time {
        sql.push(" and (event_time + interval '0') >= ")
            .push_bind(t);
    }
    if let Some(t) = query.end_time {
        sql.push(" and (event_time + interval '0') < ").push_bind(t);
    }
    // The link-id expressions are those of the link-id indexes, verbatim.
    push_attribute_filters!(
        &mut sql,
        query,
        link_request = "(request_parameters ->> 'link_id')",
        link_response = "(response_elements -> 'AccountLink' ->> 'AccountLinkId')",
        provider = "(request_parameters ->> 'provider')",
        invitation = "(request_parameters ->> 'invitation_id')"
    );
    sql.push(" order by seq desc limit ")
        .push_bind(query.limit.max(0));
    sql
}

/// The seq range of `query`'s time filters, if it has any.
async fn range_of(
    conn: &mut PgConnection,
    query: &AuditQuery,
) -> Result<(Option<i64>, Option<i64>), sqlx::Error> {
    if query.start_time.is_none() && query.end_time.is_none() {
        Ok((None, None))
    } else {
        seq_range(conn, query).await
    }
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
    let range = range_of(conn, query).await?;
    if let (Some(low), Some(high)) = range
        && low > high
    {
        return Ok(Vec::new());
    }
    let rows: Vec<AuditRow> = select("", query, range)
        .build_query_as()
        .persistent(false)
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
    let range = range_of(conn, query).await?;
    select("explain (analyze, buffers) ", query, range)
        .build_query_scalar()
        .persistent(false)
        .fetch_all(&mut *conn)
        .await
}

/// Streams the events of `chain_id` with `since <= event_time < until`, in
/// `seq` order (`audit export --since/--until`).
///
/// There is no index on `event_time` (migration `20261204000001`): the seq
/// range comes from `audit_event_hour` ([`LOW_SEQ`], [`HIGH_SEQ`]), as for
/// [`list_audit_events`] (no hour on a side: an empty range), and
/// the scan of the unique `(chain_id, seq)` stops at its end. The range
/// only narrows where to look; the time filter stays exact.
pub(super) fn rows_in_time_range<'a>(
    pool: &'a sqlx::PgPool,
    chain_id: &'a str,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> crate::store::AuditRows<'a> {
    use crate::store::sql::DbTime;
    use tokio_stream::StreamExt;
    Box::pin(
        sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(format!(
            "select {AUDIT_COLUMNS} from audit_event \
             where chain_id = $1 \
               and seq >= coalesce({LOW_SEQ}, 9223372036854775807) \
               and seq <= coalesce({HIGH_SEQ}, 0) \
               and event_time >= $4 and event_time < $5 \
             order by seq"
        )))
        .bind(chain_id)
        .bind(hour_of(since))
        .bind(hour_of(until))
        .bind(DbTime(since))
        .bind(DbTime(until))
        .fetch(pool)
        .map(|row| {
            row.map(StoredAuditEvent::from)
                .map_err(crate::store::StoreError::from)
        }),
    )
}
