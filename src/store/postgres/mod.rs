//! [`PgStore`]: the PostgreSQL store (the production store; several
//! replicas share one database). Schema: `migrations/postgres`.

mod audit_query;
mod batch;
mod claims;
mod writer_conn;

/// The shared SQL of [`crate::store::sql`], for PostgreSQL: concurrent
/// claims of one key wait on the row lock (`for update`).
mod queries {
    crate::store::sql::client_token_queries!(
        conn = sqlx::PgConnection,
        lock = " for update",
        greatest = "greatest",
        new_uuid = "gen_random_uuid()",
        skip_locked = " for update skip locked"
    );
    crate::store::sql::audit_queries!(conn = sqlx::PgConnection, pool = sqlx::PgPool);
}

use std::time::Duration;

use sqlx::Postgres;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use time::OffsetDateTime;
use uuid::Uuid;

pub use audit_query::{explain_list_audit_events, list_audit_events};

use super::group_commit::GroupCommit;
use super::{
    AuditEvent, AuditQuery, AuditRows, ChainPoint, ClaimOutcome, NewClaim, PoolStatus, RecordKey,
    RecordOutcome, StaleBacklog, StaleRecord, Store, StoreError, StoredAuditEvent,
    StoredCheckpoint, UpstreamToken, waiting,
};
use writer_conn::WriterConnection;

/// The embedded migrations of `migrations/postgres`.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL store: a connection pool, and the group-commit writer
/// ([`crate::store::group_commit`]) through which every audit append and
/// phase-3 completion of this process goes.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The writers' connections, beside the pool: the audit writer's and
    /// the claim writer's ([`writer_conn`]).
    writers: [WriterConnection; 2],
    writer: GroupCommit,
    /// The group-commit writer of phase-1 claims ([`claims`]).
    claims: GroupCommit,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`), creating the database when it
    /// does not exist, and applies the embedded migrations.
    ///
    /// # Errors
    /// [`StoreError`] when the server cannot be reached, the database
    /// cannot be created, or a migration fails.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::open(url, max_connections, true).await
    }

    /// [`PgStore::connect`], or, without `create`, only an existing
    /// database.
    ///
    /// # Errors
    /// As [`PgStore::connect`]; [`StoreError::NotFound`] for a missing
    /// database without `create`.
    pub async fn open(url: &str, max_connections: u32, create: bool) -> Result<Self, StoreError> {
        let exists = Postgres::database_exists(url).await?;
        if !exists && !create {
            // Not the URL: it may hold a password.
            return Err(StoreError::NotFound(
                "the PostgreSQL database of --database-url".into(),
            ));
        }
        if !exists {
            match Postgres::create_database(url).await {
                Ok(()) => tracing::info!("created database"),
                // Another replica created it first (42P04 duplicate_database).
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => return Err(e.into()),
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        let store = Self::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// Wraps an existing pool (migrations not applied) and starts its
    /// group-commit writer on the current tokio runtime (so it must be
    /// called from within one).
    ///
    /// The two writers keep a connection of their own each
    /// ([`writer_conn`]), beside `pool`, to its database.
    pub fn from_pool(pool: PgPool) -> Self {
        let options = pool.connect_options();
        let writers = [
            WriterConnection::new(&options),
            WriterConnection::new(&options),
        ];
        let writer = GroupCommit::spawn(batch::PgBatch::new(writers[0].clone()));
        let claims = GroupCommit::spawn(claims::PgClaimBatch {
            conn: writers[1].clone(),
        });
        Self {
            pool,
            writers,
            writer,
            claims,
        }
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded migrations (idempotent; serialized by sqlx's
    /// advisory lock, so replicas may start together).
    ///
    /// # Errors
    /// [`StoreError::Migrate`] when a migration fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}

/// The time decisions are made at: `now` when given (tests), else the
/// database's clock, shared by every replica (so a replica whose clock runs
/// ahead cannot take over a live lease).
async fn clock(
    conn: &mut sqlx::PgConnection,
    now: Option<OffsetDateTime>,
) -> Result<OffsetDateTime, sqlx::Error> {
    match now {
        Some(t) => Ok(t),
        None => sqlx::query_scalar("select now()").fetch_one(conn).await,
    }
}

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The pool and the writers' connections together: a writer's
    /// connection counts as open while a batch holds it or while it is kept
    /// between batches, and as idle only while kept.
    fn pool_status(&self) -> PoolStatus {
        let open = self.writers.iter().filter(|w| w.is_open()).count();
        let kept = self.writers.iter().filter(|w| w.is_idle()).count();
        let idle = self.pool.num_idle() + kept;
        PoolStatus {
            open: self.pool.size() + u32::try_from(open).unwrap_or(u32::MAX),
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections()
                + u32::try_from(self.writers.len()).unwrap_or(u32::MAX),
        }
    }

    /// Claims go through the claim writer ([`claims`]): one statement per
    /// batch (a second transaction for the claims of existing records).
    /// Concurrent claims of one key serialize on the primary key and the
    /// row lock; `now = None` reads the database's clock, shared by
    /// every replica.
    #[tracing::instrument(name = "db.claim", skip_all)]
    async fn claim(
        &self,
        claim: &NewClaim,
        now: Option<OffsetDateTime>,
        upstream_token: UpstreamToken,
    ) -> Result<ClaimOutcome, StoreError> {
        self.claims.claim(claim, now, upstream_token).await
    }

    #[tracing::instrument(name = "db.complete", skip_all)]
    async fn complete(
        &self,
        key: &RecordKey,
        lease_id: Uuid,
        outcome: &RecordOutcome,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.writer.complete(key, lease_id, outcome, event).await
    }

    #[tracing::instrument(name = "db.append_audit_event", skip_all)]
    async fn append_audit_event(&self, event: &AuditEvent) -> Result<i64, StoreError> {
        self.writer.append(event).await
    }

    #[tracing::instrument(name = "db.purge_expired", skip_all)]
    async fn purge_expired(&self, now: Option<OffsetDateTime>) -> Result<u64, StoreError> {
        let mut conn = waiting(self.pool.acquire()).await?;
        let now = clock(&mut conn, now).await?;
        Ok(queries::purge_expired(&mut conn, now).await?)
    }

    /// On the database's clock; `for update skip locked` gives concurrent
    /// replicas disjoint batches, and a caller's claim holding a record's
    /// row lock keeps it out of the batch.
    #[tracing::instrument(name = "db.take_over_stale", skip_all)]
    async fn take_over_stale(
        &self,
        now: Option<OffsetDateTime>,
        retryable_for: Duration,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<StaleRecord>, StoreError> {
        let mut conn = waiting(self.pool.acquire()).await?;
        let now = clock(&mut conn, now).await?;
        Ok(queries::take_over_stale(&mut conn, now, now - retryable_for, lease, limit).await?)
    }

    #[tracing::instrument(name = "db.stale_backlog", skip_all)]
    async fn stale_backlog(
        &self,
        now: Option<OffsetDateTime>,
        retryable_for: Duration,
    ) -> Result<StaleBacklog, StoreError> {
        let mut conn = waiting(self.pool.acquire()).await?;
        let now = clock(&mut conn, now).await?;
        Ok(queries::stale_backlog(&mut *conn, now, now - retryable_for).await?)
    }

    #[tracing::instrument(name = "db.list_audit_events", skip_all)]
    async fn list_audit_events(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<StoredAuditEvent>, StoreError> {
        let mut conn = waiting(self.pool.acquire()).await?;
        Ok(list_audit_events(&mut conn, query).await?)
    }

    fn audit_rows_between<'a>(&'a self, chain_id: &'a str, from: i64, to: i64) -> AuditRows<'a> {
        queries::rows_between(&self.pool, chain_id, from, to)
    }

    fn audit_rows_in_time_range<'a>(
        &'a self,
        chain_id: &'a str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> AuditRows<'a> {
        audit_query::rows_in_time_range(&self.pool, chain_id, since, until)
    }

    async fn chain_head(&self, chain_id: &str) -> Result<ChainPoint, StoreError> {
        Ok(queries::chain_head(&self.pool, chain_id).await?)
    }

    async fn chain_anchor(&self, chain_id: &str) -> Result<Option<ChainPoint>, StoreError> {
        Ok(queries::chain_anchor(&self.pool, chain_id).await?)
    }

    async fn row_hash_at(&self, chain_id: &str, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(queries::row_hash_at(&self.pool, chain_id, seq).await?)
    }

    async fn insert_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        Ok(queries::insert_checkpoint(&self.pool, checkpoint).await?)
    }

    async fn newest_checkpoint_before(
        &self,
        chain_id: &str,
        older_than: OffsetDateTime,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        Ok(queries::newest_checkpoint_before(&self.pool, chain_id, older_than).await?)
    }

    /// Deletes through `audit_event_retain()` (migration 3), the only
    /// DELETE the append-only trigger admits; it checks the checkpoint and
    /// records the anchor.
    #[tracing::instrument(name = "db.retain_through", skip_all)]
    async fn retain_through(
        &self,
        chain_id: &str,
        to_seq: i64,
        record: impl FnOnce(i64) -> AuditEvent + Send,
    ) -> Result<i64, StoreError> {
        let mut tx = waiting(self.pool.begin()).await?;
        let deleted: i64 = sqlx::query_scalar("select audit_event_retain($1, $2)")
            .bind(chain_id)
            .bind(to_seq)
            .fetch_one(&mut *tx)
            .await?;
        queries::insert_audit_event(&mut tx, &record(deleted)).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn close(&self) {
        self.pool.close().await;
        for writer in &self.writers {
            writer.close().await;
        }
    }
}
