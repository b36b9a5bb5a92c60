//! [`PgStore`]: the PostgreSQL store (the production store; several
//! replicas share one database). Schema: `migrations/postgres`.

mod audit;
mod audit_query;
mod client_token;

use std::time::Duration;

use sqlx::Postgres;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use time::OffsetDateTime;
use uuid::Uuid;

pub use audit_query::{explain_list_audit_events, list_audit_events};

use super::{
    AuditEvent, AuditQuery, AuditRows, ChainPoint, ClaimOutcome, NewClaim, PoolStatus, RecordKey,
    RecordOutcome, Store, StoreError, StoredAuditEvent, StoredCheckpoint, observe_audit_write,
};

/// The embedded migrations of `migrations/postgres`.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`), creating the database when it
    /// does not exist, and applies the embedded migrations.
    ///
    /// # Errors
    /// [`StoreError`] when the server cannot be reached, the database
    /// cannot be created, or a migration fails.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        if !Postgres::database_exists(url).await? {
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
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Wraps an existing pool (migrations not applied).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
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

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    fn pool_status(&self) -> PoolStatus {
        PoolStatus {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }

    /// Concurrent claims of one key serialize on the primary key and the
    /// row lock; `now = None` reads the database's clock, shared by every
    /// replica.
    #[tracing::instrument(name = "db.claim", skip_all)]
    async fn claim(
        &self,
        claim: &NewClaim,
        now: Option<OffsetDateTime>,
        upstream_token: &(dyn Fn(i32) -> String + Sync),
    ) -> Result<ClaimOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = client_token::clock(&mut tx, now).await?;
        let outcome = client_token::claim(&mut tx, claim, now, upstream_token).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    #[tracing::instrument(name = "db.complete", skip_all)]
    async fn complete(
        &self,
        key: &RecordKey,
        lease_id: Uuid,
        outcome: &RecordOutcome,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let started = std::time::Instant::now();
        let mut tx = self.pool.begin().await?;
        let held =
            client_token::complete(&mut tx, key, lease_id, outcome, event.event_time).await?;
        audit::insert_audit_event(&mut tx, event).await?;
        tx.commit().await?;
        observe_audit_write(started);
        Ok(held)
    }

    #[tracing::instrument(name = "db.append_audit_event", skip_all)]
    async fn append_audit_event(&self, event: &AuditEvent) -> Result<i64, StoreError> {
        let started = std::time::Instant::now();
        let mut tx = self.pool.begin().await?;
        let seq = audit::insert_audit_event(&mut tx, event).await?;
        tx.commit().await?;
        observe_audit_write(started);
        Ok(seq)
    }

    #[tracing::instrument(name = "db.purge_expired", skip_all)]
    async fn purge_expired(&self, now: Option<OffsetDateTime>) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let now = client_token::clock(&mut conn, now).await?;
        Ok(client_token::purge_expired(&mut conn, now).await?)
    }

    #[tracing::instrument(name = "db.list_audit_events", skip_all)]
    async fn list_audit_events(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<StoredAuditEvent>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(list_audit_events(&mut conn, query).await?)
    }

    fn audit_rows_between<'a>(&'a self, chain_id: &'a str, from: i64, to: i64) -> AuditRows<'a> {
        audit::rows_between(&self.pool, chain_id, from, to)
    }

    fn audit_rows_in_time_range<'a>(
        &'a self,
        chain_id: &'a str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> AuditRows<'a> {
        audit::rows_in_time_range(&self.pool, chain_id, since, until)
    }

    async fn chain_head(&self, chain_id: &str) -> Result<ChainPoint, StoreError> {
        let (seq, row_hash) =
            sqlx::query_as("select last_seq, last_hash from audit_chain where chain_id = $1")
                .bind(chain_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(ChainPoint { seq, row_hash })
    }

    async fn chain_anchor(&self, chain_id: &str) -> Result<Option<ChainPoint>, StoreError> {
        let anchor: Option<(i64, Vec<u8>)> =
            sqlx::query_as("select seq, row_hash from audit_anchor where chain_id = $1")
                .bind(chain_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(anchor.map(|(seq, row_hash)| ChainPoint { seq, row_hash }))
    }

    async fn row_hash_at(&self, chain_id: &str, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("select row_hash from audit_event where chain_id = $1 and seq = $2")
                .bind(chain_id)
                .bind(seq)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn insert_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        sqlx::query(
            "insert into audit_checkpoint (chain_id, to_seq, head_hash, signature, body) \
             values ($1, $2, $3, $4, $5) on conflict (chain_id, to_seq) do nothing",
        )
        .bind(&checkpoint.chain_id)
        .bind(checkpoint.to_seq)
        .bind(&checkpoint.head_hash)
        .bind(&checkpoint.signature)
        .bind(&checkpoint.body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn newest_checkpoint_before(
        &self,
        chain_id: &str,
        older_than: OffsetDateTime,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        Ok(sqlx::query_scalar(
            "select c.body from audit_checkpoint c \
             join audit_event e on e.chain_id = c.chain_id and e.seq = c.to_seq \
             where c.chain_id = $1 and e.event_time < $2 \
             order by c.to_seq desc limit 1",
        )
        .bind(chain_id)
        .bind(older_than)
        .fetch_optional(&self.pool)
        .await?)
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
        let mut tx = self.pool.begin().await?;
        let deleted: i64 = sqlx::query_scalar("select audit_event_retain($1, $2)")
            .bind(chain_id)
            .bind(to_seq)
            .fetch_one(&mut *tx)
            .await?;
        audit::insert_audit_event(&mut tx, &record(deleted)).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
