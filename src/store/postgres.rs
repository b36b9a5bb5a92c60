//! [`PgStore`]: the PostgreSQL store (the production store; several
//! replicas share one database).

use std::time::Duration;

use sqlx::Postgres;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use super::audit::{AuditEvent, insert_audit_event};
use super::client_token::{self, ClaimOutcome, NewClaim, RecordKey, RecordOutcome};

/// The embedded migrations of `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

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

    /// Checks that the database answers (`select 1`).
    ///
    /// # Errors
    /// [`StoreError::Database`] when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Phase 1 of a mutating RPC, in its own transaction: see
    /// [`ClaimOutcome`]. Concurrent claims of one key serialize on the
    /// primary key, so exactly one of them is `Acquired`. `now` is `None` in
    /// production (the database's clock decides leases and expiry) and set
    /// by tests. `upstream_token(generation)` derives the ClientToken sent to
    /// AWS for a new use of the key.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    #[tracing::instrument(name = "db.claim", skip_all)]
    pub async fn claim(
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

    /// Phase 3 of a mutating RPC, in one transaction: records the outcome
    /// (if `lease_id` still holds the record) and appends `event`. Returns
    /// whether the lease still held.
    ///
    /// # Errors
    /// [`StoreError::Database`]; then nothing was written.
    #[tracing::instrument(name = "db.complete", skip_all)]
    pub async fn complete(
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
        insert_audit_event(&mut tx, event).await?;
        tx.commit().await?;
        observe_audit_write(started);
        Ok(held)
    }

    /// Appends one audit event in its own transaction; returns its `seq`.
    ///
    /// # Errors
    /// [`StoreError::Database`]; then nothing was written.
    #[tracing::instrument(name = "db.append_audit_event", skip_all)]
    pub async fn append_audit_event(&self, event: &AuditEvent) -> Result<i64, StoreError> {
        let started = std::time::Instant::now();
        let mut tx = self.pool.begin().await?;
        let seq = insert_audit_event(&mut tx, event).await?;
        tx.commit().await?;
        observe_audit_write(started);
        Ok(seq)
    }

    /// Deletes expired client-token records; returns how many. `now` as
    /// for [`PgStore::claim`].
    ///
    /// # Errors
    /// [`StoreError::Database`].
    #[tracing::instrument(name = "db.purge_expired", skip_all)]
    pub async fn purge_expired(&self, now: Option<OffsetDateTime>) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let now = client_token::clock(&mut conn, now).await?;
        Ok(client_token::purge_expired(&mut conn, now).await?)
    }

    /// Closes the pool, waiting for checked-out connections to return.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn observe_audit_write(started: std::time::Instant) {
    metrics::histogram!(crate::metrics::AUDIT_WRITE_DURATION)
        .record(started.elapsed().as_secs_f64());
}
