//! Group commit: one writer per store and chain (the sequencer) that turns
//! many RPCs' writes into one transaction.
//!
//! An RPC hands its write ([`Op`]: an audit event, a phase-3 completion
//! with its audit event, or a phase-1 claim: on SQLite to the same writer,
//! on PostgreSQL to a claim writer of its own) to the writer over a
//! bounded channel and waits on a oneshot. The writer drains whatever is
//! queued, with no fixed wait, up to [`MAX_BATCH`] writes, and gives them
//! to the backend's [`Batch::write`], which runs them in one transaction:
//! it takes the chain head once (PostgreSQL: one `for update` of the
//! `audit_chain` row per batch, so replicas still append one gapless
//! `seq`), chains the events in queue order ([`chain`] on SQLite; on
//! PostgreSQL the database hashes, `store::postgres::batch`), writes every
//! row in one statement (or a few), moves the head once and commits once.
//!
//! Each waiter is answered only after that commit: nothing is answered
//! before its audit event is durable (DESIGN §2). If the batch fails, it
//! is rolled back whole and every waiter in it gets
//! [`StoreError::Batch`], which the service answers as
//! `DATABASE_UNAVAILABLE`; the next batch reads the head afresh, so
//! appends by another replica in between are picked up. (A PostgreSQL
//! batch that [timed out](StoreError::BatchTimedOut) may yet commit; its
//! waiters are failed all the same.)
//!
//! A write is cheap to wait for when the writer is busy: while one batch
//! commits, the next one queues. At concurrency 1 a write costs one
//! transaction, as before; at concurrency N, about one transaction per N
//! writes.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{
    AuditEvent, ClaimOutcome, DEFAULT_CHAIN, NewClaim, RecordKey, RecordOutcome, StoreError,
    UpstreamToken,
};
use crate::audit::CanonicalParts;

/// The most writes one batch (one transaction) carries.
pub const MAX_BATCH: usize = 256;

/// How many writes may queue for the writer before submitters wait.
const QUEUE: usize = 4 * MAX_BATCH;

/// An audit event ready for the chain: the event as stored
/// ([`storable`](super::audit::storable)) and its canonical encoding with
/// the `seq` left open, computed by the submitting task so that the writer
/// (or, on PostgreSQL, the database) only hashes.
#[derive(Debug)]
pub(crate) struct ChainEntry {
    pub(crate) event: AuditEvent,
    pub(crate) canonical: CanonicalParts,
}

impl ChainEntry {
    /// `event` prepared for the chain `chain_id`.
    pub(crate) fn new(chain_id: &str, event: &AuditEvent) -> Self {
        let event = super::audit::storable(event).into_owned();
        let canonical = CanonicalParts::new(chain_id, &event);
        Self { event, canonical }
    }
}

/// One write of a batch.
pub(crate) enum Op {
    /// Append an audit event.
    Append(ChainEntry),
    /// Phase 3: record the outcome of the drive holding `lease_id`, and
    /// append its audit event.
    Complete {
        key: RecordKey,
        lease_id: Uuid,
        outcome: RecordOutcome,
        entry: ChainEntry,
    },
    /// Phase 1: claim a client token (SQLite: in the one writer's batches;
    /// PostgreSQL: in the claim writer's, `store::postgres::claims`).
    Claim {
        claim: NewClaim,
        now: Option<OffsetDateTime>,
        upstream_token: UpstreamToken,
    },
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Append(entry) => f
                .debug_tuple("Append")
                .field(&entry.event.event_id)
                .finish(),
            Self::Complete { key, lease_id, .. } => f
                .debug_struct("Complete")
                .field("key", key)
                .field("lease_id", lease_id)
                .finish_non_exhaustive(),
            Self::Claim { claim, .. } => f
                .debug_struct("Claim")
                .field("key", &claim.key)
                .finish_non_exhaustive(),
        }
    }
}

/// What one write did, once its batch committed.
#[derive(Debug)]
pub(crate) enum Done {
    /// The event's `seq`.
    Appended(i64),
    /// Whether the lease still held the record (else only the event was
    /// written).
    Completed { held: bool },
    /// The claim's outcome.
    Claimed(ClaimOutcome),
}

/// A backend's batch transaction.
pub(crate) trait Batch: Clone + Send + Sync + 'static {
    /// Runs `ops` in one transaction, in order, and commits; returns one
    /// [`Done`] per op, in order.
    ///
    /// # Errors
    /// [`StoreError`]; then the transaction was rolled back and nothing of
    /// `ops` was written.
    fn write(&self, ops: &[Op]) -> impl Future<Output = Result<Vec<Done>, StoreError>> + Send;
}

/// One chained event of a batch: its `seq`, the previous row's hash and
/// its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) seq: i64,
    pub(crate) prev_hash: [u8; 32],
    pub(crate) row_hash: [u8; 32],
}

/// Chains `entries` after the head `(last_seq, last_hash)`, in order: the
/// first gets `last_seq + 1` and `prev_hash = last_hash` (SQLite's batch;
/// PostgreSQL's does the same in the database, `audit_row_hashes`).
pub(crate) fn chain<'a>(
    last_seq: i64,
    last_hash: [u8; 32],
    entries: impl IntoIterator<Item = &'a ChainEntry>,
) -> Vec<Link> {
    let mut prev = last_hash;
    entries
        .into_iter()
        .zip(last_seq + 1..)
        .map(|(entry, seq)| {
            let row_hash = entry.canonical.row_hash(&prev, seq);
            let link = Link {
                seq,
                prev_hash: prev,
                row_hash,
            };
            prev = row_hash;
            link
        })
        .collect()
}

/// The entries of `ops` that append an event, in order.
pub(crate) fn entries(ops: &[Op]) -> Vec<&ChainEntry> {
    ops.iter()
        .filter_map(|op| match op {
            Op::Append(entry) | Op::Complete { entry, .. } => Some(entry),
            Op::Claim { .. } => None,
        })
        .collect()
}

/// The answers of a committed batch, in the order of `ops`: `claims` and
/// `held` are the outcomes of its claims and of its completions, `seqs`
/// the places of its events ([`entries`]), each in order.
///
/// # Errors
/// [`StoreError::Corrupt`] when the counts do not match `ops` (a bug in
/// the backend's batch).
pub(crate) fn answers(
    ops: &[Op],
    claims: Vec<ClaimOutcome>,
    held: Vec<bool>,
    seqs: impl IntoIterator<Item = i64>,
) -> Result<Vec<Done>, StoreError> {
    let (mut claims, mut held, mut seqs) = (claims.into_iter(), held.into_iter(), seqs.into_iter());
    let short = || StoreError::Corrupt("a batch answered fewer writes than it was given".into());
    ops.iter()
        .map(|op| {
            Ok(match op {
                Op::Append(_) => Done::Appended(seqs.next().ok_or_else(short)?),
                Op::Complete { .. } => {
                    seqs.next().ok_or_else(short)?;
                    Done::Completed {
                        held: held.next().ok_or_else(short)?,
                    }
                }
                Op::Claim { .. } => Done::Claimed(claims.next().ok_or_else(short)?),
            })
        })
        .collect()
}

/// A write waiting for its batch.
struct Pending {
    op: Op,
    reply: oneshot::Sender<Result<Done, StoreError>>,
}

/// The handle of a store's writer task; clones share the writer.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("queued", &(QUEUE - self.queue.capacity()))
            .finish()
    }
}

impl GroupCommit {
    /// Starts the writer of `backend` on the current tokio runtime. It
    /// runs until every handle is dropped.
    pub(crate) fn spawn<B: Batch>(backend: B) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(backend, rx));
        Self { queue }
    }

    /// Appends `event` to the default chain once its batch has committed;
    /// returns its `seq`. Records the wait in
    /// `accountlink_audit_write_duration_seconds`.
    ///
    /// # Errors
    /// As [`GroupCommit::submit`].
    pub(crate) async fn append(&self, event: &AuditEvent) -> Result<i64, StoreError> {
        let started = Instant::now();
        let op = Op::Append(ChainEntry::new(DEFAULT_CHAIN, event));
        let seq = expect_seq(self.submit(op).await?)?;
        super::observe_audit_write(started);
        Ok(seq)
    }

    /// Phase 3 once its batch has committed: the outcome of the drive
    /// holding `lease_id` (if it still holds) and `event`. Returns whether
    /// the lease held. Records the wait as [`GroupCommit::append`] does.
    ///
    /// # Errors
    /// As [`GroupCommit::submit`].
    pub(crate) async fn complete(
        &self,
        key: &RecordKey,
        lease_id: Uuid,
        outcome: &RecordOutcome,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let started = Instant::now();
        let op = Op::Complete {
            key: key.clone(),
            lease_id,
            outcome: outcome.clone(),
            entry: ChainEntry::new(DEFAULT_CHAIN, event),
        };
        let held = expect_held(self.submit(op).await?)?;
        super::observe_audit_write(started);
        Ok(held)
    }

    /// Phase 1 once its batch has committed: see
    /// [`Store::claim`](super::Store::claim).
    ///
    /// # Errors
    /// As [`GroupCommit::submit`].
    pub(crate) async fn claim(
        &self,
        claim: &NewClaim,
        now: Option<OffsetDateTime>,
        upstream_token: UpstreamToken,
    ) -> Result<ClaimOutcome, StoreError> {
        let op = Op::Claim {
            claim: claim.clone(),
            now,
            upstream_token,
        };
        expect_claim(self.submit(op).await?)
    }

    /// Queues `op` and waits until its batch has committed.
    ///
    /// # Errors
    /// [`StoreError::Batch`] when its batch failed (nothing of it was
    /// written); [`StoreError::WriterStopped`] when the writer is gone.
    pub(crate) async fn submit(&self, op: Op) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { op, reply })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// The writer: drains the queue into batches until every handle is gone.
/// Each batch runs as a task of its own, so that a panic in it fails that
/// batch's waiters, not the writer.
async fn run<B: Batch>(backend: B, mut rx: mpsc::Receiver<Pending>) {
    let mut pending = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut pending, MAX_BATCH).await > 0 {
        let (ops, replies): (Vec<Op>, Vec<_>) = pending.drain(..).map(|p| (p.op, p.reply)).unzip();
        let started = Instant::now();
        metrics::histogram!(crate::metrics::DB_BATCH_SIZE).record(ops.len() as f64);
        let writer = backend.clone();
        let result = tokio::spawn(async move { writer.write(&ops).await })
            .await
            .unwrap_or_else(|e| Err(StoreError::WriterPanicked(e.to_string())));
        metrics::histogram!(crate::metrics::DB_BATCH_DURATION)
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(done) if done.len() == replies.len() => {
                for (reply, done) in replies.into_iter().zip(done) {
                    // A waiter that went away misses nothing: it is written.
                    let _ = reply.send(Ok(done));
                }
            }
            Ok(done) => {
                let e = Arc::new(StoreError::Corrupt(format!(
                    "a batch of {} writes answered {}",
                    replies.len(),
                    done.len()
                )));
                fail(replies, &e);
            }
            Err(e) => {
                tracing::warn!(
                    error = %crate::telemetry::error_chain(&e),
                    writes = replies.len(),
                    "group commit failed; none of its writes is answered as written"
                );
                fail(replies, &Arc::new(e));
            }
        }
    }
}

fn fail(replies: Vec<oneshot::Sender<Result<Done, StoreError>>>, e: &Arc<StoreError>) {
    for reply in replies {
        let _ = reply.send(Err(StoreError::Batch(Arc::clone(e))));
    }
}

/// A submitted write's answer as what the [`Store`](super::Store) method
/// returns; any other [`Done`] is a bug in the backend's batch.
fn expect_seq(done: Done) -> Result<i64, StoreError> {
    match done {
        Done::Appended(seq) => Ok(seq),
        other => Err(StoreError::Corrupt(format!("append answered {other:?}"))),
    }
}

/// As [`expect_seq`], for completions.
fn expect_held(done: Done) -> Result<bool, StoreError> {
    match done {
        Done::Completed { held } => Ok(held),
        other => Err(StoreError::Corrupt(format!("complete answered {other:?}"))),
    }
}

/// As [`expect_seq`], for claims.
fn expect_claim(done: Done) -> Result<ClaimOutcome, StoreError> {
    match done {
        Done::Claimed(outcome) => Ok(outcome),
        other => Err(StoreError::Corrupt(format!("claim answered {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{GENESIS_HASH, row_hash};

    fn entry(i: u64) -> ChainEntry {
        let event = AuditEvent {
            event_id: Uuid::new_v4(),
            event_time: crate::audit::now_micros(),
            method: "GetAccountLink".into(),
            read_only: true,
            principal: format!("p{i}"),
            source_ip: None,
            user_agent: None,
            request_id: format!("r{i}"),
            account_id: None,
            request_parameters: serde_json::json!({ "i": i }),
            response_elements: None,
            grpc_code: "OK".into(),
            error_reason: None,
            error_message: None,
            upstream_request_id: None,
            upstream_attempts: 0,
            idempotency_outcome: super::super::IdempotencyOutcome::None,
            client_token_sha256: None,
            duration_us: i,
        };
        ChainEntry::new("default", &event)
    }

    #[test]
    fn a_batch_chains_like_one_append_after_another() {
        let entries: Vec<_> = (0..5).map(entry).collect();
        let links = chain(41, GENESIS_HASH, &entries);
        let mut prev = GENESIS_HASH;
        for (i, (link, entry)) in links.iter().zip(&entries).enumerate() {
            let seq = 42 + i64::try_from(i).unwrap();
            assert_eq!(link.seq, seq);
            assert_eq!(link.prev_hash, prev);
            assert_eq!(link.row_hash, row_hash(&prev, "default", seq, &entry.event));
            prev = link.row_hash;
        }
    }

    /// A backend that records the size of each batch, fails the batch
    /// holding a poisoned write and panics in the one holding a write by
    /// the principal `panic`.
    #[derive(Clone)]
    struct Recorder {
        sizes: Arc<std::sync::Mutex<Vec<usize>>>,
        /// A permit per batch that has begun.
        entered: Arc<tokio::sync::Semaphore>,
        /// A permit per batch allowed to finish.
        gate: Arc<tokio::sync::Semaphore>,
    }

    impl Recorder {
        /// A recorder that lets `batches` batches finish before its gate
        /// closes.
        fn new(batches: usize) -> Self {
            Self {
                sizes: Arc::default(),
                entered: Arc::new(tokio::sync::Semaphore::new(0)),
                gate: Arc::new(tokio::sync::Semaphore::new(batches)),
            }
        }
    }

    impl Batch for Recorder {
        async fn write(&self, ops: &[Op]) -> Result<Vec<Done>, StoreError> {
            self.entered.add_permits(1);
            self.gate.acquire().await.expect("gate open").forget();
            self.sizes.lock().unwrap().push(ops.len());
            let holds_write_by = |p: &str| {
                ops.iter().any(|op| match op {
                    Op::Append(e) => e.event.principal == p,
                    _ => false,
                })
            };
            if holds_write_by("poison") {
                return Err(StoreError::Corrupt("poisoned".into()));
            }
            assert!(
                !holds_write_by("panic"),
                "a batch holding a panicking write"
            );
            Ok((0..ops.len())
                .map(|i| Done::Appended(i64::try_from(i).unwrap()))
                .collect())
        }
    }

    #[tokio::test]
    async fn writes_queued_behind_a_busy_writer_go_in_one_batch_and_a_failure_fails_them_all() {
        let recorder = Recorder::new(0);
        let writer = GroupCommit::spawn(recorder.clone());
        // The first write occupies the writer (its batch waits at the gate).
        let first = tokio::spawn({
            let writer = writer.clone();
            async move { writer.submit(Op::Append(entry(0))).await }
        });
        recorder.entered.acquire().await.unwrap().forget();
        // Ten more queue behind it; one of them is poisoned.
        let mut rest = Vec::new();
        for i in 1..=10 {
            let writer = writer.clone();
            let mut e = entry(i);
            if i == 7 {
                e.event.principal = "poison".into();
            }
            rest.push(tokio::spawn(
                async move { writer.submit(Op::Append(e)).await },
            ));
        }
        while QUEUE - writer.queue.capacity() < 10 {
            tokio::task::yield_now().await;
        }
        recorder.gate.add_permits(2);
        assert!(matches!(first.await.unwrap(), Ok(Done::Appended(0))));
        for r in rest {
            assert!(
                matches!(r.await.unwrap(), Err(StoreError::Batch(_))),
                "no write of a failed batch is answered as written"
            );
        }
        assert_eq!(*recorder.sizes.lock().unwrap(), vec![1, 10]);
    }

    #[tokio::test]
    async fn a_batch_that_panics_fails_its_waiters_and_the_writer_goes_on() {
        let recorder = Recorder::new(2);
        let writer = GroupCommit::spawn(recorder.clone());
        let mut e = entry(0);
        e.event.principal = "panic".into();
        match writer.submit(Op::Append(e)).await {
            Err(StoreError::Batch(e)) => assert!(
                matches!(&*e, StoreError::WriterPanicked(m) if m.contains("a panicking write")),
                "{e:?}"
            ),
            other => panic!("a panicked batch answered {other:?}"),
        }
        assert!(
            matches!(
                writer.submit(Op::Append(entry(1))).await,
                Ok(Done::Appended(0))
            ),
            "the writer survives the panic"
        );
    }
}
