//! [`SqliteStore`]: the embedded store, one SQLite file (the default when no
//! database is configured). Schema: `migrations/sqlite`.
//!
//! Connection settings, and why:
//!
//! - **WAL journal** (`journal_mode=WAL`): readers (ListAuditEvents,
//!   `audit verify`/`export`) never block the writer, nor it them.
//! - **`synchronous=FULL`**: in WAL mode SQLite's usual `NORMAL` keeps the
//!   database consistent but may lose the last committed transactions on
//!   power loss or an OS crash. Here a commit is a promise made to a
//!   caller: an audit event of an answered RPC, or a dedup record whose
//!   loss would let a retried token be applied twice. So every commit
//!   waits for the WAL to reach the disk (about one fsync per write
//!   transaction; see docs/benchmarks.md).
//! - **One writer connection**, and every write transaction is
//!   `BEGIN IMMEDIATE`: the single connection serializes this process's
//!   claims and appends (exactly one of 32 concurrent claims of a key
//!   wins, the chain's `seq` stays gapless), and `IMMEDIATE` takes the
//!   write lock at `BEGIN`, so a transaction that reads then writes can
//!   never fail half-way with `SQLITE_BUSY` because another process (the
//!   `audit` subcommands, `migrate`) wrote in between; it waits instead.
//! - **busy timeout** of 5 s: how long such a wait may last.
//! - **`temp_store=MEMORY`**: a statement that may fail half-way inside a
//!   transaction keeps a statement journal of the pages it changes, and
//!   with the default file temp store SQLite spills it to a new file in
//!   `/var/tmp` (created, unlinked, written) once it passes 64 KiB, which a
//!   batch's multi-row `insert` over a dozen indexes does: one such file
//!   per batch on the writer's critical path. In memory instead (the same
//!   for the readers' sorts).
//! - **`wal_autocheckpoint` of 10 000 pages** on the writer (SQLite's
//!   default is 1 000; about 40 MiB of WAL instead of 4 MiB): the commit
//!   that passes it copies the WAL's pages back into the database file, on
//!   the one writer's time. A batch's hot pages (the right edges of the
//!   indexes, the chain head) are in the WAL many times over; checkpointing
//!   ten times less often writes each back ten times less often. Durability
//!   does not change: a commit is durable once in the WAL. After a
//!   checkpoint the WAL file is cut back to [`WAL_SIZE_LIMIT`]
//!   (`journal_size_limit`) when it outgrew it (readers can hold a
//!   checkpoint back). docs/benchmarks.md, "The contract's floor on each
//!   store", has the measurements.
//! - A separate pool of read-only connections for reads.
//!
//! Leases and expiry use the host's clock: one file serves one host.
//! Several replicas must share PostgreSQL instead.

mod audit_query;
mod batch;

/// The shared SQL of [`crate::store::sql`], for SQLite: every write runs in
/// a `BEGIN IMMEDIATE` transaction on the one writer connection, which
/// already holds the write lock when the record is read (no `for update`).
mod queries {
    crate::store::sql::client_token_queries!(
        conn = sqlx::SqliteConnection,
        lock = "",
        greatest = "max",
        new_uuid = "randomblob(16)",
        skip_locked = ""
    );
    crate::store::sql::audit_queries!(conn = sqlx::SqliteConnection, pool = sqlx::SqlitePool);
}

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::group_commit::GroupCommit;
use super::sql::DbTime;
use super::{
    AuditEvent, AuditQuery, AuditRows, ChainPoint, ClaimOutcome, NewClaim, PoolStatus, RecordKey,
    RecordOutcome, StaleBacklog, StaleRecord, Store, StoreError, StoredAuditEvent,
    StoredCheckpoint, UpstreamToken, waiting,
};

/// The embedded migrations of `migrations/sqlite`.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a connection waits for another's write lock (`busy_timeout`).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL pages after which the writer's commit checkpoints
/// (`wal_autocheckpoint`; see the module docs).
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// The size in bytes the WAL file is cut back to after a checkpoint
/// (`journal_size_limit`): a little more than
/// [`WAL_AUTOCHECKPOINT_PAGES`] pages of 4 KiB and their frame headers.
pub const WAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// The statement that opens every write transaction.
const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";

/// Rows retention deletes per write transaction, so that appends (every
/// RPC's audit event) wait for one batch at most, not for a whole prefix.
pub const RETENTION_BATCH: i64 = 10_000;

/// The SQLite store: one writer connection, driven by the group-commit
/// writer ([`crate::store::group_commit`]) for every claim, completion and
/// audit append, and a pool of readers on one file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    group: GroupCommit,
    retention_batch: i64,
}

impl SqliteStore {
    /// Opens `url` (`sqlite://PATH` or `sqlite:PATH`; the file and its
    /// parent directory are created if missing), applies the embedded
    /// migrations, and opens up to `max_readers` read-only connections
    /// beside the one writer.
    ///
    /// # Errors
    /// [`StoreError`] when the URL is not a file path, the file cannot be
    /// opened or created, or a migration fails.
    pub async fn connect(url: &str, max_readers: u32) -> Result<Self, StoreError> {
        Self::open_url(url, max_readers, true).await
    }

    /// [`SqliteStore::connect`], or, without `create`, only an existing
    /// file.
    ///
    /// # Errors
    /// As [`SqliteStore::connect`]; [`StoreError::NotFound`] for a missing
    /// file without `create`.
    pub async fn open_url(url: &str, max_readers: u32, create: bool) -> Result<Self, StoreError> {
        Self::open(SqliteConnectOptions::from_str(url)?, max_readers, create).await
    }

    /// Opens the file at `path` (no URL parsing, so any file name works);
    /// with `create`, creates it and its directory if missing, otherwise a
    /// missing file is an error (for tools that only read or append to an
    /// existing trail). Then as [`SqliteStore::connect`].
    ///
    /// # Errors
    /// As [`SqliteStore::connect`]; [`StoreError::NotFound`] for a missing
    /// file without `create`.
    pub async fn open_path(
        path: &std::path::Path,
        max_readers: u32,
        create: bool,
    ) -> Result<Self, StoreError> {
        Self::open(
            SqliteConnectOptions::new().filename(path),
            max_readers,
            create,
        )
        .await
    }

    async fn open(
        options: SqliteConnectOptions,
        max_readers: u32,
        create: bool,
    ) -> Result<Self, StoreError> {
        let path = options.get_filename().to_path_buf();
        // An in-memory or unnamed database would be a different, volatile
        // database on every connection of the two pools.
        if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
            return Err(StoreError::UnsupportedUrl(
                "sqlite: needs a file path (not :memory:)".into(),
            ));
        }
        if !create && !path.exists() {
            return Err(StoreError::NotFound(path.display().to_string()));
        }
        let options = options
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        if create
            && let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(e.into()))?;
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // Writers queue here for the one connection; each holds it for
            // one short transaction.
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
                    .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string()),
            )
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(max_readers.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.read_only(true))
            .await?;
        let group = GroupCommit::spawn(batch::SqliteBatch {
            writer: writer.clone(),
        });
        Ok(Self {
            writer,
            reader,
            group,
            retention_batch: RETENTION_BATCH,
        })
    }

    /// This store with retention deleting `rows` events per write
    /// transaction instead of [`RETENTION_BATCH`] (at least 1).
    pub fn with_retention_batch(mut self, rows: i64) -> Self {
        self.retention_batch = rows.max(1);
        self
    }

    /// The writer pool (one connection), for tests and tools that need raw
    /// SQL.
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The read-only pool.
    pub fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// `now`, or the host's clock to the microsecond.
    fn clock(now: Option<OffsetDateTime>) -> OffsetDateTime {
        now.unwrap_or_else(crate::audit::now_micros)
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1 from audit_chain limit 1")
            .execute(&self.reader)
            .await?;
        Ok(())
    }

    fn pool_status(&self) -> PoolStatus {
        let size = self.writer.size() + self.reader.size();
        let idle = self.writer.num_idle() + self.reader.num_idle();
        PoolStatus {
            open: size,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max: self.writer.options().get_max_connections()
                + self.reader.options().get_max_connections(),
        }
    }

    /// Claims go through the group-commit writer: the one writer
    /// connection serializes them anyway, and batching them saves a fsync
    /// each.
    #[tracing::instrument(name = "db.claim", skip_all)]
    async fn claim(
        &self,
        claim: &NewClaim,
        now: Option<OffsetDateTime>,
        upstream_token: UpstreamToken,
    ) -> Result<ClaimOutcome, StoreError> {
        self.group.claim(claim, now, upstream_token).await
    }

    #[tracing::instrument(name = "db.complete", skip_all)]
    async fn complete(
        &self,
        key: &RecordKey,
        lease_id: Uuid,
        outcome: &RecordOutcome,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.group.complete(key, lease_id, outcome, event).await
    }

    #[tracing::instrument(name = "db.append_audit_event", skip_all)]
    async fn append_audit_event(&self, event: &AuditEvent) -> Result<i64, StoreError> {
        self.group.append(event).await
    }

    #[tracing::instrument(name = "db.purge_expired", skip_all)]
    async fn purge_expired(&self, now: Option<OffsetDateTime>) -> Result<u64, StoreError> {
        let mut tx = waiting(self.writer.begin_with(BEGIN_IMMEDIATE)).await?;
        let deleted = queries::purge_expired(&mut tx, Self::clock(now)).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// In one `BEGIN IMMEDIATE` transaction on the writer, like a claim.
    #[tracing::instrument(name = "db.take_over_stale", skip_all)]
    async fn take_over_stale(
        &self,
        now: Option<OffsetDateTime>,
        retryable_for: Duration,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<StaleRecord>, StoreError> {
        let now = Self::clock(now);
        let mut tx = waiting(self.writer.begin_with(BEGIN_IMMEDIATE)).await?;
        let taken =
            queries::take_over_stale(&mut tx, now, now - retryable_for, lease, limit).await?;
        tx.commit().await?;
        Ok(taken)
    }

    #[tracing::instrument(name = "db.stale_backlog", skip_all)]
    async fn stale_backlog(
        &self,
        now: Option<OffsetDateTime>,
        retryable_for: Duration,
    ) -> Result<StaleBacklog, StoreError> {
        let now = Self::clock(now);
        Ok(queries::stale_backlog(&self.reader, now, now - retryable_for).await?)
    }

    #[tracing::instrument(name = "db.list_audit_events", skip_all)]
    async fn list_audit_events(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<StoredAuditEvent>, StoreError> {
        Ok(audit_query::list_audit_events(&self.reader, query).await?)
    }

    fn audit_rows_between<'a>(&'a self, chain_id: &'a str, from: i64, to: i64) -> AuditRows<'a> {
        queries::rows_between(&self.reader, chain_id, from, to)
    }

    fn audit_rows_in_time_range<'a>(
        &'a self,
        chain_id: &'a str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> AuditRows<'a> {
        audit_query::rows_in_time_range(&self.reader, chain_id, since, until)
    }

    async fn chain_head(&self, chain_id: &str) -> Result<ChainPoint, StoreError> {
        Ok(queries::chain_head(&self.reader, chain_id).await?)
    }

    async fn chain_anchor(&self, chain_id: &str) -> Result<Option<ChainPoint>, StoreError> {
        Ok(queries::chain_anchor(&self.reader, chain_id).await?)
    }

    async fn row_hash_at(&self, chain_id: &str, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(queries::row_hash_at(&self.reader, chain_id, seq).await?)
    }

    async fn insert_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        Ok(queries::insert_checkpoint(&self.writer, checkpoint).await?)
    }

    async fn newest_checkpoint_before(
        &self,
        chain_id: &str,
        older_than: OffsetDateTime,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        Ok(queries::newest_checkpoint_before(&self.reader, chain_id, older_than).await?)
    }

    /// The checks of PostgreSQL's `audit_event_retain()`, then the delete,
    /// in batches of [`RETENTION_BATCH`] rows, one `BEGIN IMMEDIATE`
    /// transaction each, so that appends wait for one batch at most. Each
    /// batch re-checks the checkpoint, deletes under a permit row the
    /// `audit_event_no_delete` trigger admits (removed before commit), and
    /// moves the anchor to its last deleted row, so the chain verifies
    /// between batches and after a crash mid-way (a second run finishes
    /// the prefix). The last batch also appends `record(deleted)`.
    #[tracing::instrument(name = "db.retain_through", skip_all)]
    async fn retain_through(
        &self,
        chain_id: &str,
        to_seq: i64,
        record: impl FnOnce(i64) -> AuditEvent + Send,
    ) -> Result<i64, StoreError> {
        let mut deleted_total: i64 = 0;
        loop {
            let mut tx = waiting(self.writer.begin_with(BEGIN_IMMEDIATE)).await?;
            let checkpoint: Option<(Vec<u8>, serde_json::Value)> = sqlx::query_as(
                "select head_hash, body from audit_checkpoint where chain_id = $1 and to_seq = $2",
            )
            .bind(chain_id)
            .bind(to_seq)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((head_hash, body)) = checkpoint else {
                return Err(StoreError::Corrupt(format!(
                    "no checkpoint at seq {to_seq} of chain {chain_id}"
                )));
            };
            if queries::row_hash_in(&mut tx, chain_id, to_seq)
                .await?
                .as_deref()
                != Some(head_hash.as_slice())
            {
                return Err(StoreError::Corrupt(format!(
                    "the row at seq {to_seq} does not match its checkpoint"
                )));
            }
            let first: i64 =
                sqlx::query_scalar("select min(seq) from audit_event where chain_id = $1")
                    .bind(chain_id)
                    .fetch_one(&mut *tx)
                    .await?;
            let batch_end = to_seq.min(first.saturating_add(self.retention_batch - 1));
            let Some(anchor_hash) = queries::row_hash_in(&mut tx, chain_id, batch_end).await?
            else {
                return Err(StoreError::Corrupt(format!(
                    "seq {batch_end} of chain {chain_id} is missing"
                )));
            };
            sqlx::query("insert into audit_retention_permit (chain_id, to_seq) values ($1, $2)")
                .bind(chain_id)
                .bind(to_seq)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("delete from audit_event where chain_id = $1 and seq <= $2")
                .bind(chain_id)
                .bind(batch_end)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("delete from audit_retention_permit where chain_id = $1")
                .bind(chain_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "insert into audit_anchor (chain_id, seq, row_hash, checkpoint) \
                 values ($1, $2, $3, $4) \
                 on conflict (chain_id) do update \
                 set seq = excluded.seq, row_hash = excluded.row_hash, \
                     checkpoint = excluded.checkpoint, created_at = $5",
            )
            .bind(chain_id)
            .bind(batch_end)
            .bind(&anchor_hash)
            .bind(&body)
            .bind(DbTime(crate::audit::now_micros()))
            .execute(&mut *tx)
            .await?;
            deleted_total =
                deleted_total.saturating_add(i64::try_from(deleted).unwrap_or(i64::MAX));
            if batch_end == to_seq {
                queries::insert_audit_event(&mut tx, &record(deleted_total)).await?;
                tx.commit().await?;
                return Ok(deleted_total);
            }
            tx.commit().await?;
        }
    }

    /// Closes the readers first, then the writer: the last connection to
    /// close checkpoints the WAL into the database file and removes it,
    /// which only a read-write connection can do. Until then the newest
    /// commits live in `account-link.db-wal` (back up with `VACUUM INTO`
    /// or the `.backup` command, never by copying the `.db` file alone).
    async fn close(&self) {
        self.reader.close().await;
        if let Err(e) = sqlx::query("pragma wal_checkpoint(truncate)")
            .execute(&self.writer)
            .await
        {
            tracing::warn!(error = %e, "sqlite: the WAL checkpoint at close failed");
        }
        self.writer.close().await;
    }
}
