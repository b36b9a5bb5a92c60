//! One ListAuditEvents page on SQLite.

use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use crate::store::audit::DEFAULT_CHAIN;
use crate::store::sql::{AUDIT_COLUMNS, AuditRow, DbTime, push_attribute_filters};
use crate::store::{AuditQuery, StoredAuditEvent};

/// One ListAuditEvents page: the events of the default chain matching
/// `query`, newest first. As on PostgreSQL, the SQL text is assembled only
/// from fixed fragments, one per filter that is set, and every value is a
/// bound parameter. Each attribute filter has an index of the migration
/// leading with `(chain_id, <filter column or link-id expression>)` and
/// ending in `seq`; a time range uses `(chain_id, event_time)` and sorts
/// the matching rows by `seq`.
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
        sql.push(" and event_time >= ").push_bind(DbTime(t));
    }
    if let Some(t) = query.end_time {
        sql.push(" and event_time < ").push_bind(DbTime(t));
    }
    push_attribute_filters!(
        &mut sql,
        query,
        link_request = "json_extract(request_parameters, '$.link_id')",
        link_response = "json_extract(response_elements, '$.AccountLink.AccountLinkId')",
        provider = "json_extract(request_parameters, '$.provider')",
        invitation = "json_extract(request_parameters, '$.invitation_id')"
    );
    sql.push(" order by seq desc limit ")
        .push_bind(query.limit.max(0));
    let rows: Vec<AuditRow> = sql.build_query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().map(StoredAuditEvent::from).collect())
}

/// Streams the events of `chain_id` with `since <= event_time < until`, in
/// `seq` order (`audit export --since/--until`), through the
/// `(chain_id, event_time)` index.
pub(super) fn rows_in_time_range<'a>(
    pool: &'a SqlitePool,
    chain_id: &'a str,
    since: time::OffsetDateTime,
    until: time::OffsetDateTime,
) -> crate::store::AuditRows<'a> {
    use tokio_stream::StreamExt;
    Box::pin(
        sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(format!(
            "select {AUDIT_COLUMNS} from audit_event \
             where chain_id = $1 and event_time >= $2 and event_time < $3 order by seq"
        )))
        .bind(chain_id)
        .bind(DbTime(since))
        .bind(DbTime(until))
        .fetch(pool)
        .map(|row| {
            row.map(crate::store::StoredAuditEvent::from)
                .map_err(crate::store::StoreError::from)
        }),
    )
}
