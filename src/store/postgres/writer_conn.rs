//! The one connection of a group-commit writer ([`crate::store::group_commit`]).
//!
//! A writer runs one batch at a time, so it keeps one connection of its own
//! instead of taking one from the pool for every batch. A pooled
//! connection costs a batch two extra round trips: sqlx pings a connection
//! before handing it out (`test_before_acquire`), on the batch's path
//! (0.15 ms of a 0.75 ms one-write batch on loopback), and again when it
//! comes back (always), which keeps both ends busy (docs/benchmarks.md).
//! Here a connection is pinged only when it sat idle for [`IDLE_PING`]:
//! after a database restart, the first batch then finds the connection
//! dead and opens a new one instead of failing, as the pool's ping did. A
//! connection that saw an error is dropped, and the next batch opens a new
//! one. So is one whose batch did not finish within [`BATCH_TIMEOUT`]: a
//! connection that went half-open must not hold the writer. Both rules
//! live in [`WriterConnection::run`], the one way the writers use it.
//!
//! The connection is opened with `plan_cache_mode = force_generic_plan`.
//! The writers run a few fixed statements over `unnest` of array
//! parameters. With the default mode PostgreSQL plans them anew at every
//! execution: in a custom plan the planner sees the array's length and
//! estimates a one-row batch cheaper than a generic plan of ten rows, so it
//! never switches. That was 0.2 ms of planning per batch. The pool keeps
//! the default, because ListAuditEvents needs a plan for its values
//! (`src/store/audit_query.rs`).
//!
//! A generic plan is made once, on the statement's first execution, from
//! the statistics of that moment, and kept until an `ANALYZE` of its
//! tables. On a new database that moment finds `client_token_record`
//! empty, and the planner joined a batch's completions to it by a hash
//! join over a sequential scan of the whole table. Every batch then read
//! every record: with autovacuum off, CreateAccountLinkInvitation at c=16
//! fell from 1 500 to 560 rps within 30 s of load, as the table grew to
//! 30 000 records (docs/benchmarks.md). The writers' statements have one
//! right plan at every size, primary-key probes from the batch's rows, so
//! the connection also turns off the planner's other choices
//! (`enable_seqscan`, `enable_hashjoin`, `enable_mergejoin`: PostgreSQL,
//! "Planner Method Configuration"), and the plan no longer depends on when
//! it was made. `writer_plans_probe_the_primary_key_on_an_empty_database`
//! checks the plan of [`super::batch`]'s statement.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::time::Instant;

use crate::store::{StoreError, waiting};

/// The settings of a writer's connection (see the module docs).
pub(super) const WRITER_SETTINGS: [(&str, &str); 4] = [
    ("plan_cache_mode", "force_generic_plan"),
    ("enable_seqscan", "off"),
    ("enable_hashjoin", "off"),
    ("enable_mergejoin", "off"),
];

/// How long a connection may sit idle before a batch pings it first (on
/// tokio's clock).
pub(super) const IDLE_PING: Duration = Duration::from_secs(1);

/// How long opening a connection, or pinging an idle one, may take: the
/// pool's acquire timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one batch may take on its connection (on tokio's clock) before
/// the writer gives up on it ([`WriterConnection::run`]).
///
/// A batch takes milliseconds, and a second or two when the database
/// stalls on a checkpoint or a slow disk; 10 s is far beyond that. Without
/// a bound, a connection that went half-open in the middle of a batch (a
/// network partition, a database host that froze) would hold the writer,
/// and with it every RPC, until the kernel's TCP retransmissions give up,
/// about 15 minutes later: sqlx sets no TCP keepalive.
pub(super) const BATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A writer's connection: opened on first use, kept between batches.
/// Clones share it; the writer takes it for the length of one batch.
#[derive(Debug, Clone)]
pub(super) struct WriterConnection {
    options: Arc<PgConnectOptions>,
    /// The idle connection and when it was last given back; `None` while a
    /// batch holds it, and before the first or after a failed batch.
    idle: Arc<Mutex<Option<(PgConnection, Instant)>>>,
    /// Whether a batch holds a connection, for [`WriterConnection::is_open`].
    busy: Arc<AtomicBool>,
}

impl WriterConnection {
    /// A writer connection to the database of `options` (those of the
    /// store's pool), opened lazily with the writers' settings.
    pub(super) fn new(options: &PgConnectOptions) -> Self {
        let options = options.clone().options(WRITER_SETTINGS);
        Self {
            options: Arc::new(options),
            idle: Arc::default(),
            busy: Arc::default(),
        }
    }

    /// Runs one batch's statements, `batch`, on the connection, bounded by
    /// [`BATCH_TIMEOUT`]. The connection is the kept one (pinged first if
    /// it sat idle for [`IDLE_PING`]; replaced if the ping fails or takes
    /// 5 s), else a new one. It is kept for the next batch if `batch`
    /// succeeded, and dropped otherwise: after an error or a timeout it may
    /// still be in the middle of the batch, and the next batch opens a new
    /// one.
    ///
    /// # Errors
    /// `batch`'s own; [`StoreError::BatchTimedOut`] when it did not finish
    /// in time (the database may yet commit it); [`StoreError::Database`]
    /// when no connection can be opened (after 5 s: `PoolTimedOut`, as the
    /// pool's acquire timeout).
    pub(super) async fn run<T>(
        &self,
        batch: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.take().await?;
        let _busy = Busy::hold(&self.busy);
        let result = tokio::time::timeout(BATCH_TIMEOUT, batch(&mut conn))
            .await
            .unwrap_or(Err(StoreError::BatchTimedOut(BATCH_TIMEOUT)));
        if result.is_ok() {
            *self.idle.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((conn, Instant::now()));
        }
        result
    }

    /// The connection for one batch (see [`WriterConnection::run`]).
    async fn take(&self) -> Result<PgConnection, StoreError> {
        let kept = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((mut conn, since)) = kept {
            // Bounded, as the pool bounds its own ping by the acquire
            // timeout: a half-open connection must not stall the writer.
            if since.elapsed() < IDLE_PING
                || matches!(
                    tokio::time::timeout(CONNECT_TIMEOUT, conn.ping()).await,
                    Ok(Ok(()))
                )
            {
                return Ok(conn);
            }
            tracing::info!("a group-commit writer's idle connection was dead; opening a new one");
        }
        match waiting(tokio::time::timeout(
            CONNECT_TIMEOUT,
            self.options.connect(),
        ))
        .await
        {
            Ok(conn) => Ok(conn?),
            Err(_) => Err(sqlx::Error::PoolTimedOut.into()),
        }
    }

    /// Whether a connection is open: kept between batches, or held by one.
    pub(super) fn is_open(&self) -> bool {
        self.busy.load(Ordering::Relaxed) || self.is_idle()
    }

    /// Whether a connection is kept (idle between batches).
    pub(super) fn is_idle(&self) -> bool {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Closes the kept connection, if any.
    pub(super) async fn close(&self) {
        let kept = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((conn, _)) = kept {
            let _ = conn.close().await;
        }
    }
}

/// Marks a writer's connection held by a batch until dropped, also when the
/// batch's future is dropped half-way.
struct Busy<'a>(&'a AtomicBool);

impl<'a> Busy<'a> {
    fn hold(flag: &'a AtomicBool) -> Self {
        flag.store(true, Ordering::Relaxed);
        Self(flag)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}
