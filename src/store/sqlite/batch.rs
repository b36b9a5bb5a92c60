//! The SQLite group-commit transaction ([`crate::store::group_commit`]).
//!
//! One batch is one `BEGIN IMMEDIATE` transaction on the store's one
//! writer connection, and so one WAL fsync (`synchronous=FULL`) for all
//! its writes: the claims and completions in queue order (in-process
//! statements, prepared once), then the chain head read once, the events
//! in multi-row `insert … values (…), (…)` statements, the head moved once,
//! and one commit.
//!
//! Claims (phase 1) are batched too: they need the one writer connection
//! anyway, and a claim per transaction would cost a fsync each.

use std::sync::OnceLock;

use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};

use super::{BEGIN_IMMEDIATE, SqliteStore, queries};
use crate::store::group_commit::{self, Batch, ChainEntry, Done, Link, Op};
use crate::store::sql::{AUDIT_COLUMNS, DbTime};
use crate::store::{DEFAULT_CHAIN, StoreError, hash32, waiting};

/// The batch writer of a [`SqliteStore`].
#[derive(Debug, Clone)]
pub(super) struct SqliteBatch {
    pub(super) writer: SqlitePool,
}

impl Batch for SqliteBatch {
    async fn write(&self, ops: &[Op]) -> Result<Vec<Done>, StoreError> {
        let mut tx = waiting(self.writer.begin_with(BEGIN_IMMEDIATE)).await?;
        let mut claims = Vec::new();
        let mut held = Vec::new();
        for op in ops {
            match op {
                Op::Claim {
                    claim,
                    now,
                    upstream_token,
                } => {
                    let now = SqliteStore::clock(*now);
                    claims.push(queries::claim(&mut tx, claim, now, &**upstream_token).await?);
                }
                Op::Complete {
                    key,
                    lease_id,
                    outcome,
                    entry,
                } => held.push(
                    queries::complete(&mut tx, key, *lease_id, outcome, entry.event.event_time)
                        .await?,
                ),
                Op::Append(_) => {}
            }
        }
        let entries = group_commit::entries(ops);
        let (last_seq, last_hash): (i64, Vec<u8>) =
            sqlx::query_as("select last_seq, last_hash from audit_chain where chain_id = $1")
                .bind(DEFAULT_CHAIN)
                .fetch_one(&mut *tx)
                .await?;
        let links = group_commit::chain(
            last_seq,
            hash32(&last_hash, "audit_chain.last_hash")?,
            entries.iter().copied(),
        );
        if let Some(last) = links.last() {
            insert_events(&mut tx, &entries, &links).await?;
            sqlx::query("update audit_chain set last_seq = $2, last_hash = $3 where chain_id = $1")
                .bind(DEFAULT_CHAIN)
                .bind(last.seq)
                .bind(last.row_hash.as_slice())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        group_commit::answers(ops, claims, held, links.iter().map(|l| l.seq))
    }
}

/// The columns of one `audit_event` row ([`AUDIT_COLUMNS`], in that order).
const COLUMNS: usize = 23;

/// `insert … values` with `2^k` rows, for `k` in `0..=8` (1 to
/// [`group_commit::MAX_BATCH`] rows): a batch of any size is a few of them,
/// each prepared once (23 × 256 parameters stay below SQLite's 32 766).
fn insert_sql(rows: usize) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        (0..=8)
            .map(|k| {
                let row = format!("({})", vec!["?"; COLUMNS].join(", "));
                format!(
                    "insert into audit_event ({AUDIT_COLUMNS}) values {}",
                    vec![row; 1 << k].join(", ")
                )
            })
            .collect()
    });
    &all[rows.trailing_zeros() as usize]
}

/// Inserts the chained `entries` (`links[i]` is the place of
/// `entries[i]`) in as few multi-row statements as the sizes of
/// [`insert_sql`] allow.
async fn insert_events(
    conn: &mut SqliteConnection,
    entries: &[&ChainEntry],
    links: &[Link],
) -> Result<(), StoreError> {
    let mut rows = entries.iter().zip(links);
    let mut left = entries.len();
    while left > 0 {
        // The largest power of two not above what is left (at most 256).
        let n = 1usize << left.min(group_commit::MAX_BATCH).ilog2();
        let mut query = sqlx::query(AssertSqlSafe(insert_sql(n)));
        for (entry, link) in rows.by_ref().take(n) {
            // `storable` clamped the counters to their columns' range.
            let e = &entry.event;
            query = query
                .bind(e.event_id)
                .bind(DEFAULT_CHAIN)
                .bind(link.seq)
                .bind(DbTime(e.event_time))
                .bind(e.method.as_str())
                .bind(e.read_only)
                .bind(e.principal.as_str())
                .bind(e.source_ip.as_deref())
                .bind(e.user_agent.as_deref())
                .bind(e.request_id.as_str())
                .bind(e.account_id.as_deref())
                .bind(&e.request_parameters)
                .bind(e.response_elements.as_ref())
                .bind(e.grpc_code.as_str())
                .bind(e.error_reason.as_deref())
                .bind(e.error_message.as_deref())
                .bind(e.upstream_request_id.as_deref())
                .bind(i32::try_from(e.upstream_attempts).unwrap_or(i32::MAX))
                .bind(e.idempotency_outcome.as_str())
                .bind(e.client_token_sha256.as_deref())
                .bind(i64::try_from(e.duration_us).unwrap_or(i64::MAX))
                .bind(link.prev_hash.as_slice())
                .bind(link.row_hash.as_slice());
        }
        query.execute(&mut *conn).await?;
        left -= n;
    }
    Ok(())
}
