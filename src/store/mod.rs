//! Persistence: client-token dedup records (DESIGN §5) and the audit trail
//! (DESIGN §6), behind one [`Store`] trait with two backends through sqlx:
//!
//! - [`PgStore`] (PostgreSQL): the production store, and the one several
//!   replicas share. Leases and expiry are decided on the database's clock.
//! - [`SqliteStore`] (SQLite, one file): the embedded default, for one
//!   process on one machine (development, a single-node deployment). It is
//!   created on first use; nothing has to be installed.
//!
//! Both keep the same schema semantics (`migrations/postgres`,
//! `migrations/sqlite`): the dedup record and its lease, the audit events
//! with the hash chain computed in Rust ([`crate::audit::row_hash`]) under
//! the chain head's write lock, and append-only triggers. One conformance
//! suite (`tests/store_conformance.rs`) runs against both.
//!
//! No transaction is ever held across an upstream call: phase 1
//! ([`Store::claim`]) and phase 3 ([`Store::complete`]) are separate
//! transactions (Brandur's atomic phases). The decisions of phase 1 are
//! one pure function shared by both backends ([`client_token`]), and the
//! SQL itself is written once ([`sql`]), with the few backend-specific
//! fragments passed in.
//!
//! [`AnyStore`] is the store the service runs on: whichever backend the
//! `--database-url` names.

mod audit;
mod audit_query;
mod client_token;
mod group_commit;
pub mod postgres;
mod sql;
pub mod sqlite;

use std::future::Future;
use std::pin::Pin;

use time::OffsetDateTime;
use uuid::Uuid;

pub use audit::{AuditEvent, DEFAULT_CHAIN, IdempotencyOutcome, StoredAuditEvent};
pub use audit_query::AuditQuery;
pub use client_token::{
    ClaimOutcome, NewClaim, RecordKey, RecordOutcome, StaleBacklog, StaleRecord, StoredOutcome,
    UpstreamToken,
};
pub use group_commit::MAX_BATCH;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or did not answer.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL names no supported backend.
    #[error("unsupported database URL {0:?}: expected postgres://… or sqlite://PATH")]
    UnsupportedUrl(String),
    /// `audit` tools open only an existing store: there is none here.
    #[error("no store at {0}: check --database-url / --data-dir")]
    NotFound(String),
    /// A stored value is not what the schema promises (e.g. a hash that is
    /// not 32 bytes).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The group commit this write was part of failed and was rolled back
    /// whole: nothing of it was written ([`group_commit`]). The one
    /// exception is a batch that [timed out](StoreError::BatchTimedOut):
    /// either way, nothing of it is answered as written.
    #[error("the batch this write was part of failed")]
    Batch(#[source] std::sync::Arc<StoreError>),
    /// PostgreSQL did not finish a group-commit batch within the writers'
    /// batch timeout (10 s), e.g. over a connection that went half-open.
    /// The writer dropped the connection and goes on with a new one. Whether
    /// the database still commits the batch is unknown; the chain stays
    /// whole either way, because a batch only writes at the head it was
    /// chained on, and the next batch reads the head afresh.
    #[error("the database did not finish a batch within {0:?}")]
    BatchTimedOut(std::time::Duration),
    /// The group-commit writer is gone (the store is closing).
    #[error("the store's writer has stopped")]
    WriterStopped,
    /// A batch transaction panicked (a bug); its writes were rolled back.
    #[error("a batch transaction panicked: {0}")]
    WriterPanicked(String),
}

/// A stream of stored audit events, in `seq` order.
pub type AuditRows<'a> =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<StoredAuditEvent, StoreError>> + Send + 'a>>;

/// Connection pool gauges (`accountlink_db_pool_connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Open connections.
    pub open: u32,
    /// Idle connections.
    pub idle: u32,
    /// The configured maximum.
    pub max: u32,
}

/// A chain's head (`audit_chain`) or its retention anchor
/// (`audit_anchor`): a `seq` and the `row_hash` at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainPoint {
    /// The position.
    pub seq: i64,
    /// `row_hash` at `seq` (32 bytes; the genesis hash at seq 0).
    pub row_hash: Vec<u8>,
}

/// A stored, signed audit checkpoint (`audit_checkpoint`), see
/// [`crate::audit::checkpoint`].
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCheckpoint {
    /// The chain.
    pub chain_id: String,
    /// The last `seq` the checkpoint vouches for.
    pub to_seq: i64,
    /// `row_hash` at `to_seq`.
    pub head_hash: Vec<u8>,
    /// The checkpoint's Ed25519 signature (hex).
    pub signature: String,
    /// The checkpoint document (JSON).
    pub body: serde_json::Value,
}

/// The persistence the service needs, implemented by [`PgStore`] and
/// [`SqliteStore`] with the same observable behaviour (checked by the
/// conformance suite). Times passed as `now: Option<OffsetDateTime>` are
/// `None` in production (the store's clock decides: the database's for
/// PostgreSQL, the host's for SQLite) and set by tests.
pub trait Store: Clone + Send + Sync + 'static {
    /// The backend's name, `postgres` or `sqlite`, for logs.
    fn backend(&self) -> &'static str;

    /// Checks that the database answers.
    ///
    /// # Errors
    /// [`StoreError::Database`] when it does not.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The connection pool gauges.
    fn pool_status(&self) -> PoolStatus;

    /// Phase 1 of a mutating RPC (DESIGN §5), committed before it returns:
    /// see [`ClaimOutcome`]. Concurrent claims of one key serialize, so
    /// exactly one of them is `Acquired`. `upstream_token(generation)`
    /// derives the ClientToken sent to AWS for a new use of the key.
    ///
    /// # Errors
    /// [`StoreError::Database`] or [`StoreError::Batch`]; then nothing was
    /// written.
    fn claim(
        &self,
        claim: &NewClaim,
        now: Option<OffsetDateTime>,
        upstream_token: UpstreamToken,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// Phase 3 of a mutating RPC, in one transaction (a group commit, with
    /// other RPCs' writes): records the outcome (if `lease_id` still holds
    /// the record) and appends `event`. Returns whether the lease still
    /// held.
    ///
    /// # Errors
    /// [`StoreError::Database`] or [`StoreError::Batch`]; then nothing was
    /// written.
    fn complete(
        &self,
        key: &RecordKey,
        lease_id: Uuid,
        outcome: &RecordOutcome,
        event: &AuditEvent,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Appends one audit event to the default chain, committed before it
    /// returns (a group commit, with other RPCs' writes); returns its
    /// `seq`.
    ///
    /// # Errors
    /// [`StoreError::Database`] or [`StoreError::Batch`]; then nothing was
    /// written.
    fn append_audit_event(
        &self,
        event: &AuditEvent,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Deletes expired client-token records not under a live lease;
    /// returns how many.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn purge_expired(
        &self,
        now: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The completer's takeover (DESIGN §5), committed before it returns:
    /// up to `limit` records within their ttl that are in progress under
    /// an expired lease, or retryable and untouched since `retryable_for`
    /// ago, and that hold their canonical request, oldest first, each put
    /// under a fresh lease of `lease` (as a caller's takeover would:
    /// concurrent claims of a taken record then see a live lease). The
    /// decision is one atomic update, so replicas never take the same
    /// record (PostgreSQL: `for update skip locked`).
    ///
    /// # Errors
    /// [`StoreError::Database`]; then nothing was taken.
    fn take_over_stale(
        &self,
        now: Option<OffsetDateTime>,
        retryable_for: std::time::Duration,
        lease: std::time::Duration,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<StaleRecord>, StoreError>> + Send;

    /// How many records [`Store::take_over_stale`] would consider now, and
    /// how many of those it cannot re-drive (no canonical request).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn stale_backlog(
        &self,
        now: Option<OffsetDateTime>,
        retryable_for: std::time::Duration,
    ) -> impl Future<Output = Result<StaleBacklog, StoreError>> + Send;

    /// The events of the default chain that match `query`, newest first
    /// (`seq` descending), at most `query.limit` of them.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn list_audit_events(
        &self,
        query: &AuditQuery,
    ) -> impl Future<Output = Result<Vec<StoredAuditEvent>, StoreError>> + Send;

    /// Streams the events of `chain_id` with `from <= seq <= to`, in `seq`
    /// order, without loading the range into memory.
    fn audit_rows_between<'a>(&'a self, chain_id: &'a str, from: i64, to: i64) -> AuditRows<'a>;

    /// Streams the events of `chain_id` with `since <= event_time < until`,
    /// in `seq` order, without loading the range into memory.
    fn audit_rows_in_time_range<'a>(
        &'a self,
        chain_id: &'a str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> AuditRows<'a>;

    /// The chain head: the last `seq` appended and its `row_hash`.
    ///
    /// # Errors
    /// [`StoreError::Database`] (`RowNotFound` for an unknown chain).
    fn chain_head(
        &self,
        chain_id: &str,
    ) -> impl Future<Output = Result<ChainPoint, StoreError>> + Send;

    /// The retention anchor: the last deleted `seq` and its `row_hash`,
    /// once retention has run.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn chain_anchor(
        &self,
        chain_id: &str,
    ) -> impl Future<Output = Result<Option<ChainPoint>, StoreError>> + Send;

    /// The `row_hash` at `seq`, if that row exists.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn row_hash_at(
        &self,
        chain_id: &str,
        seq: i64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Stores a signed checkpoint (a second one at the same `to_seq` is
    /// ignored).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn insert_checkpoint(
        &self,
        checkpoint: &StoredCheckpoint,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The body of the newest stored checkpoint whose last event is older
    /// than `older_than`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn newest_checkpoint_before(
        &self,
        chain_id: &str,
        older_than: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<serde_json::Value>, StoreError>> + Send;

    /// Retention, in one transaction: deletes the events of `chain_id`
    /// with `seq <= to_seq` (refused unless a stored checkpoint ends at
    /// `to_seq` with that row's hash), records the anchor, and appends the
    /// event `record(deleted)` describing the deletion. Returns how many
    /// events were deleted. The append-only triggers admit this path only.
    ///
    /// # Errors
    /// [`StoreError::Database`]; then nothing was deleted.
    fn retain_through(
        &self,
        chain_id: &str,
        to_seq: i64,
        record: impl FnOnce(i64) -> AuditEvent + Send,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Closes the pool(s), waiting for checked-out connections to return.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// Either backend, chosen by URL scheme at start-up.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// `postgres://…` or `postgresql://…`.
    Postgres(PgStore),
    /// `sqlite://PATH` or `sqlite:PATH`.
    Sqlite(SqliteStore),
}

impl AnyStore {
    /// Opens the store `database` names (its `--database-url`, or the
    /// SQLite file `account-link.db` in its `--data-dir`, opened by path so
    /// any file name works), as [`AnyStore::connect`] does. Without
    /// `create` only an existing database or file is opened (for the
    /// `audit` tools: verifying a store that was just created empty would
    /// report a healthy, empty trail).
    ///
    /// # Errors
    /// As [`AnyStore::connect`]; [`StoreError::NotFound`] for a missing
    /// store without `create`.
    pub async fn open(
        database: &crate::config::DatabaseArgs,
        max_connections: u32,
        create: bool,
    ) -> Result<Self, StoreError> {
        match &database.database_url {
            Some(url) => Self::open_url(url, max_connections, create).await,
            None => Ok(Self::Sqlite(
                SqliteStore::open_path(&database.sqlite_path(), max_connections, create).await?,
            )),
        }
    }

    /// Connects to `url` and applies that backend's embedded migrations:
    /// `postgres://…`/`postgresql://…` (the database is created if
    /// missing) or `sqlite://PATH` (the file is created if missing).
    /// `max_connections` bounds the pool (for SQLite, the reader pool; it
    /// has one writer connection).
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`] for another scheme; otherwise as the
    /// backend's `connect`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::open_url(url, max_connections, true).await
    }

    /// The backend of `url`'s scheme, opened as [`AnyStore::open`] says.
    async fn open_url(url: &str, max_connections: u32, create: bool) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(
                PgStore::open(url, max_connections, create).await?,
            ))
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(
                SqliteStore::open_url(url, max_connections, create).await?,
            ))
        } else {
            Err(StoreError::UnsupportedUrl(display_url(url)))
        }
    }
}

/// `url` as logs and errors may show it: a `sqlite:` URL whole (it is a
/// path), any other reduced to its scheme (the rest may hold a password).
pub fn display_url(url: &str) -> String {
    if url.starts_with("sqlite:") {
        url.to_owned()
    } else {
        format!("{}://…", url.split(':').next().unwrap_or_default())
    }
}

/// Forwards a [`Store`] method to the backend.
macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Postgres($s) => $call,
            AnyStore::Sqlite($s) => $call,
        }
    };
}

impl Store for AnyStore {
    fn backend(&self) -> &'static str {
        dispatch!(self, s => s.backend())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.ping().await)
    }

    fn pool_status(&self) -> PoolStatus {
        dispatch!(self, s => s.pool_status())
    }

    async fn claim(
        &self,
        claim: &NewClaim,
        now: Option<OffsetDateTime>,
        upstream_token: UpstreamToken,
    ) -> Result<ClaimOutcome, StoreError> {
        dispatch!(self, s => s.claim(claim, now, upstream_token).await)
    }

    async fn complete(
        &self,
        key: &RecordKey,
        lease_id: Uuid,
        outcome: &RecordOutcome,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.complete(key, lease_id, outcome, event).await)
    }

    async fn append_audit_event(&self, event: &AuditEvent) -> Result<i64, StoreError> {
        dispatch!(self, s => s.append_audit_event(event).await)
    }

    async fn purge_expired(&self, now: Option<OffsetDateTime>) -> Result<u64, StoreError> {
        dispatch!(self, s => s.purge_expired(now).await)
    }

    async fn take_over_stale(
        &self,
        now: Option<OffsetDateTime>,
        retryable_for: std::time::Duration,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<StaleRecord>, StoreError> {
        dispatch!(self, s => s.take_over_stale(now, retryable_for, lease, limit).await)
    }

    async fn stale_backlog(
        &self,
        now: Option<OffsetDateTime>,
        retryable_for: std::time::Duration,
    ) -> Result<StaleBacklog, StoreError> {
        dispatch!(self, s => s.stale_backlog(now, retryable_for).await)
    }

    async fn list_audit_events(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<StoredAuditEvent>, StoreError> {
        dispatch!(self, s => s.list_audit_events(query).await)
    }

    fn audit_rows_between<'a>(&'a self, chain_id: &'a str, from: i64, to: i64) -> AuditRows<'a> {
        dispatch!(self, s => s.audit_rows_between(chain_id, from, to))
    }

    fn audit_rows_in_time_range<'a>(
        &'a self,
        chain_id: &'a str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> AuditRows<'a> {
        dispatch!(self, s => s.audit_rows_in_time_range(chain_id, since, until))
    }

    async fn chain_head(&self, chain_id: &str) -> Result<ChainPoint, StoreError> {
        dispatch!(self, s => s.chain_head(chain_id).await)
    }

    async fn chain_anchor(&self, chain_id: &str) -> Result<Option<ChainPoint>, StoreError> {
        dispatch!(self, s => s.chain_anchor(chain_id).await)
    }

    async fn row_hash_at(&self, chain_id: &str, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, s => s.row_hash_at(chain_id, seq).await)
    }

    async fn insert_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_checkpoint(checkpoint).await)
    }

    async fn newest_checkpoint_before(
        &self,
        chain_id: &str,
        older_than: OffsetDateTime,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        dispatch!(self, s => s.newest_checkpoint_before(chain_id, older_than).await)
    }

    async fn retain_through(
        &self,
        chain_id: &str,
        to_seq: i64,
        record: impl FnOnce(i64) -> AuditEvent + Send,
    ) -> Result<i64, StoreError> {
        dispatch!(self, s => s.retain_through(chain_id, to_seq, record).await)
    }

    async fn close(&self) {
        dispatch!(self, s => s.close().await);
    }
}

/// Runs `acquire` (taking a pooled connection or opening a transaction)
/// while counting it in `accountlink_db_pool_connections{state="waiting"}`,
/// so a pool too small for the load shows as waiters. The count is
/// released even if the caller is cancelled mid-wait.
async fn waiting<T>(acquire: impl Future<Output = T>) -> T {
    struct Waiter(metrics::Gauge);
    impl Drop for Waiter {
        fn drop(&mut self) {
            self.0.decrement(1.0);
        }
    }
    let gauge = metrics::gauge!(crate::metrics::DB_POOL_CONNECTIONS, "state" => "waiting");
    gauge.increment(1.0);
    let _waiter = Waiter(gauge);
    acquire.await
}

/// Records the audit write latency (`accountlink_audit_write_seconds`).
fn observe_audit_write(started: std::time::Instant) {
    metrics::histogram!(crate::metrics::AUDIT_WRITE_DURATION)
        .record(started.elapsed().as_secs_f64());
}

/// A 32-byte hash read from a `bytea`/`blob` column.
fn hash32(bytes: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_credentials() {
        assert_eq!(
            display_url("postgres://svc:s3cret@db.internal/account_link"),
            "postgres://…"
        );
        assert_eq!(display_url("mysql://root:pw@h/db"), "mysql://…");
        assert_eq!(
            display_url("sqlite:///var/lib/al/account-link.db"),
            "sqlite:///var/lib/al/account-link.db"
        );
    }

    #[tokio::test]
    async fn an_unsupported_scheme_is_refused_without_echoing_the_url() {
        let err = AnyStore::connect("mysql://root:s3cret@127.0.0.1/x", 1)
            .await
            .expect_err("no mysql backend");
        assert!(matches!(err, StoreError::UnsupportedUrl(_)));
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
