//! The PostgreSQL group-commit transaction ([`crate::store::group_commit`]).
//!
//! A batch is one statement ([`APPLY`]), whatever its size: it moves the
//! chain head from the `seq` and hash the writer expects to the batch's
//! last, inserts every event (`insert … select … from unnest(…)`) and
//! records every completion (`update … from unnest(…)`) — all three only
//! if the head was where the writer expected. Run on its own, it is its
//! own transaction: one round trip and one commit per batch.
//!
//! The writer remembers the head its last batch left. When another replica
//! appended in between, the head has moved, the statement changes nothing
//! and says so, and the writer runs the batch again the slow way: `begin`,
//! lock the head (`select … for update`, which serializes the appends of
//! every replica), the same statement from the locked head, `commit`. So
//! `seq` stays gapless across replicas, and a stale head can never write a
//! row. After any failure the head is read afresh.
//!
//! Claims (phase 1) have a writer of their own ([`super::claims`]), so that
//! they never wait for the chain head; a claim op here is answered as a
//! store bug.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use super::writer_conn::WriterConnection;
use crate::store::group_commit::{self, Batch, ChainEntry, Done, Link, Op};
use crate::store::{DEFAULT_CHAIN, RecordOutcome, StoreError, hash32};

/// A chain head as the writer remembers it: `(last_seq, last_hash)`.
type Head = (i64, [u8; 32]);

/// The batch writer of a [`PgStore`](super::PgStore).
#[derive(Debug, Clone)]
pub(super) struct PgBatch {
    conn: WriterConnection,
    /// The head the last batch of this writer left: `(last_seq,
    /// last_hash)`; `None` before the first batch and after a failure.
    head: Arc<Mutex<Option<Head>>>,
}

impl PgBatch {
    pub(super) fn new(conn: WriterConnection) -> Self {
        Self {
            conn,
            head: Arc::default(),
        }
    }

    fn remembered(&self) -> Option<Head> {
        *self
            .head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn remember(&self, head: Option<Head>) {
        *self
            .head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = head;
    }
}

impl Batch for PgBatch {
    async fn write(&self, ops: &[Op]) -> Result<Vec<Done>, StoreError> {
        let entries = group_commit::entries(ops);
        let completions = CompleteColumns::new(ops);
        self.conn
            .run(async |conn| {
                self.write_from_head(conn, ops, &entries, &completions)
                    .await
            })
            .await
            // The next batch reads the head afresh (one that timed out may
            // yet commit).
            .inspect_err(|_| self.remember(None))
    }
}

impl PgBatch {
    async fn write_from_head(
        &self,
        conn: &mut PgConnection,
        ops: &[Op],
        entries: &[&ChainEntry],
        completions: &CompleteColumns<'_>,
    ) -> Result<Vec<Done>, StoreError> {
        if let Some(head) = self.remembered() {
            let links = group_commit::chain(head.0, head.1, entries.iter().copied());
            if let Some(held) = apply(conn, head, entries, &links, completions).await? {
                return self.finish(ops, &links, &held);
            }
            // Another replica appended since: lock the head and redo.
        }
        let mut tx = conn.begin().await?;
        let (last_seq, last_hash): (i64, Vec<u8>) = sqlx::query_as(
            "select last_seq, last_hash from audit_chain where chain_id = $1 for update",
        )
        .bind(DEFAULT_CHAIN)
        .fetch_one(&mut *tx)
        .await?;
        let head = (last_seq, hash32(&last_hash, "audit_chain.last_hash")?);
        let links = group_commit::chain(head.0, head.1, entries.iter().copied());
        let held = apply(&mut tx, head, entries, &links, completions)
            .await?
            .ok_or_else(|| StoreError::Corrupt("the locked chain head moved".into()))?;
        tx.commit().await?;
        self.finish(ops, &links, &held)
    }

    /// Remembers the head `links` leave and answers `ops`.
    fn finish(
        &self,
        ops: &[Op],
        links: &[Link],
        held: &HashSet<Uuid>,
    ) -> Result<Vec<Done>, StoreError> {
        if let Some(last) = links.last() {
            self.remember(Some((last.seq, last.row_hash)));
        }
        let held = ops
            .iter()
            .filter_map(|op| match op {
                Op::Complete { lease_id, .. } => Some(held.contains(lease_id)),
                _ => None,
            })
            .collect();
        group_commit::answers(ops, Vec::new(), held, links)
    }
}

/// The one statement of a batch (see the module docs). `$1` chain, `$2`
/// and `$3` the head it expects, `$4` and `$5` the head it leaves, `$6` ..
/// `$27` the event columns, `$28` .. `$38` the completion columns. Returns
/// whether the head was where it was expected (else nothing was written)
/// and the leases whose completion held: a completion whose lease was lost
/// to a takeover matches no record (the `lease_id` condition) and changes
/// nothing, as one at a time would; leases are unique, so no record is
/// matched twice. A record in progress holds no outcome (claims clear it),
/// so writing a retryable completion's nulls changes nothing there.
const APPLY: &str = "with head as (
        update audit_chain set last_seq = $4, last_hash = $5
        where chain_id = $1 and last_seq = $2 and last_hash = $3
        returning chain_id
    ), events as (
        insert into audit_event (
            event_id, chain_id, seq, event_time, method, read_only, principal,
            source_ip, user_agent, request_id, account_id, request_parameters,
            response_elements, grpc_code, error_reason, error_message,
            upstream_request_id, upstream_attempts, idempotency_outcome,
            client_token_sha256, duration_us, prev_hash, row_hash
        )
        select u.event_id, head.chain_id, u.seq, u.event_time, u.method, u.read_only,
               u.principal, u.source_ip, u.user_agent, u.request_id, u.account_id,
               u.request_parameters, u.response_elements, u.grpc_code, u.error_reason,
               u.error_message, u.upstream_request_id, u.upstream_attempts,
               u.idempotency_outcome, u.client_token_sha256, u.duration_us, u.prev_hash,
               u.row_hash
        from head, unnest($6::uuid[], $7::int8[], $8::timestamptz[], $9::text[], $10::bool[],
                          $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
                          $16::jsonb[], $17::jsonb[], $18::text[], $19::text[], $20::text[],
                          $21::text[], $22::int4[], $23::text[], $24::text[], $25::int8[],
                          $26::bytea[], $27::bytea[])
             as u(event_id, seq, event_time, method, read_only, principal, source_ip,
                  user_agent, request_id, account_id, request_parameters, response_elements,
                  grpc_code, error_reason, error_message, upstream_request_id,
                  upstream_attempts, idempotency_outcome, client_token_sha256, duration_us,
                  prev_hash, row_hash)
    ), done as (
        update client_token_record r
        set state = c.state, lease_id = null, locked_until = null,
            grpc_code = c.grpc_code, error_reason = c.error_reason,
            response_message = c.response_message, response_details = c.response_details,
            response_body = c.response_body, updated_at = c.updated_at
        from head, unnest($28::text[], $29::text[], $30::text[], $31::uuid[], $32::text[],
                          $33::int4[], $34::text[], $35::text[], $36::bytea[], $37::bytea[],
                          $38::timestamptz[])
             as c(principal, method, client_token_sha256, lease_id, state, grpc_code,
                  error_reason, response_message, response_details, response_body, updated_at)
        where r.principal = c.principal and r.method = c.method
          and r.client_token_sha256 = c.client_token_sha256 and r.lease_id = c.lease_id
        returning c.lease_id
    )
    select exists (select 1 from head), array(select lease_id from done)";

/// Runs [`APPLY`] for `entries` chained as `links` after `head`, with the
/// completions `c`. `None` when the head was not at `head` (nothing was
/// written); else the leases whose completion held.
async fn apply(
    conn: &mut PgConnection,
    head: Head,
    entries: &[&ChainEntry],
    links: &[Link],
    c: &CompleteColumns<'_>,
) -> Result<Option<HashSet<Uuid>>, StoreError> {
    let Some(last) = links.last() else {
        return Ok(Some(HashSet::new()));
    };
    let e = EventColumns::new(entries, links);
    let (moved, held): (bool, Vec<Uuid>) = sqlx::query_as(APPLY)
        .bind(DEFAULT_CHAIN)
        .bind(head.0)
        .bind(head.1.as_slice())
        .bind(last.seq)
        .bind(last.row_hash.as_slice())
        .bind(&e.event_id)
        .bind(&e.seq)
        .bind(&e.event_time)
        .bind(&e.method)
        .bind(&e.read_only)
        .bind(&e.principal)
        .bind(&e.source_ip)
        .bind(&e.user_agent)
        .bind(&e.request_id)
        .bind(&e.account_id)
        .bind(&e.request_parameters)
        .bind(&e.response_elements)
        .bind(&e.grpc_code)
        .bind(&e.error_reason)
        .bind(&e.error_message)
        .bind(&e.upstream_request_id)
        .bind(&e.upstream_attempts)
        .bind(&e.idempotency_outcome)
        .bind(&e.client_token_sha256)
        .bind(&e.duration_us)
        .bind(&e.prev_hash)
        .bind(&e.row_hash)
        .bind(&c.principal)
        .bind(&c.method)
        .bind(&c.client_token_sha256)
        .bind(&c.lease_id)
        .bind(&c.state)
        .bind(&c.grpc_code)
        .bind(&c.error_reason)
        .bind(&c.message)
        .bind(&c.details)
        .bind(&c.body)
        .bind(&c.updated_at)
        .fetch_one(&mut *conn)
        .await?;
    Ok(moved.then(|| held.into_iter().collect()))
}

/// The columns of a batch's completions, one array each.
#[derive(Default)]
struct CompleteColumns<'a> {
    principal: Vec<&'a str>,
    method: Vec<&'a str>,
    client_token_sha256: Vec<&'a str>,
    lease_id: Vec<Uuid>,
    state: Vec<&'a str>,
    grpc_code: Vec<Option<i32>>,
    error_reason: Vec<Option<&'a str>>,
    message: Vec<Option<&'a str>>,
    details: Vec<Option<&'a [u8]>>,
    body: Vec<Option<&'a [u8]>>,
    updated_at: Vec<OffsetDateTime>,
}

impl<'a> CompleteColumns<'a> {
    /// The completions of `ops`, in order.
    fn new(ops: &'a [Op]) -> Self {
        let mut cols = Self::default();
        for op in ops {
            let Op::Complete {
                key,
                lease_id,
                outcome,
                entry,
            } = op
            else {
                continue;
            };
            cols.principal.push(key.principal.as_str());
            cols.method.push(key.method);
            cols.client_token_sha256
                .push(key.client_token_sha256.as_str());
            cols.lease_id.push(*lease_id);
            cols.updated_at.push(entry.event.event_time);
            match outcome {
                RecordOutcome::Completed(stored) => {
                    cols.state.push("completed");
                    cols.grpc_code.push(Some(stored.grpc_code));
                    cols.error_reason.push(stored.error_reason.as_deref());
                    cols.message.push(stored.message.as_deref());
                    cols.details.push(stored.details.as_deref());
                    cols.body.push(stored.body.as_deref());
                }
                RecordOutcome::Retryable => {
                    cols.state.push("retryable");
                    cols.grpc_code.push(None);
                    cols.error_reason.push(None);
                    cols.message.push(None);
                    cols.details.push(None);
                    cols.body.push(None);
                }
            }
        }
        cols
    }
}

/// The columns of a batch's events, one array each.
struct EventColumns<'a> {
    event_id: Vec<Uuid>,
    seq: Vec<i64>,
    event_time: Vec<OffsetDateTime>,
    method: Vec<&'a str>,
    read_only: Vec<bool>,
    principal: Vec<&'a str>,
    source_ip: Vec<Option<&'a str>>,
    user_agent: Vec<Option<&'a str>>,
    request_id: Vec<&'a str>,
    account_id: Vec<Option<&'a str>>,
    request_parameters: Vec<&'a serde_json::Value>,
    response_elements: Vec<Option<&'a serde_json::Value>>,
    grpc_code: Vec<&'a str>,
    error_reason: Vec<Option<&'a str>>,
    error_message: Vec<Option<&'a str>>,
    upstream_request_id: Vec<Option<&'a str>>,
    upstream_attempts: Vec<i32>,
    idempotency_outcome: Vec<&'static str>,
    client_token_sha256: Vec<Option<&'a str>>,
    duration_us: Vec<i64>,
    prev_hash: Vec<&'a [u8]>,
    row_hash: Vec<&'a [u8]>,
}

impl<'a> EventColumns<'a> {
    /// `entries` at their places `links` (`links[i]` is that of
    /// `entries[i]`).
    fn new(entries: &[&'a ChainEntry], links: &'a [Link]) -> Self {
        let n = entries.len();
        let mut c = Self {
            event_id: Vec::with_capacity(n),
            seq: Vec::with_capacity(n),
            event_time: Vec::with_capacity(n),
            method: Vec::with_capacity(n),
            read_only: Vec::with_capacity(n),
            principal: Vec::with_capacity(n),
            source_ip: Vec::with_capacity(n),
            user_agent: Vec::with_capacity(n),
            request_id: Vec::with_capacity(n),
            account_id: Vec::with_capacity(n),
            request_parameters: Vec::with_capacity(n),
            response_elements: Vec::with_capacity(n),
            grpc_code: Vec::with_capacity(n),
            error_reason: Vec::with_capacity(n),
            error_message: Vec::with_capacity(n),
            upstream_request_id: Vec::with_capacity(n),
            upstream_attempts: Vec::with_capacity(n),
            idempotency_outcome: Vec::with_capacity(n),
            client_token_sha256: Vec::with_capacity(n),
            duration_us: Vec::with_capacity(n),
            prev_hash: Vec::with_capacity(n),
            row_hash: Vec::with_capacity(n),
        };
        for (entry, link) in entries.iter().zip(links) {
            // `storable` clamped the counters to their columns' range.
            let e = &entry.event;
            c.event_id.push(e.event_id);
            c.seq.push(link.seq);
            c.event_time.push(e.event_time);
            c.method.push(e.method.as_str());
            c.read_only.push(e.read_only);
            c.principal.push(e.principal.as_str());
            c.source_ip.push(e.source_ip.as_deref());
            c.user_agent.push(e.user_agent.as_deref());
            c.request_id.push(e.request_id.as_str());
            c.account_id.push(e.account_id.as_deref());
            c.request_parameters.push(&e.request_parameters);
            c.response_elements.push(e.response_elements.as_ref());
            c.grpc_code.push(e.grpc_code.as_str());
            c.error_reason.push(e.error_reason.as_deref());
            c.error_message.push(e.error_message.as_deref());
            c.upstream_request_id.push(e.upstream_request_id.as_deref());
            c.upstream_attempts
                .push(i32::try_from(e.upstream_attempts).unwrap_or(i32::MAX));
            c.idempotency_outcome.push(e.idempotency_outcome.as_str());
            c.client_token_sha256.push(e.client_token_sha256.as_deref());
            c.duration_us
                .push(i64::try_from(e.duration_us).unwrap_or(i64::MAX));
            c.prev_hash.push(link.prev_hash.as_slice());
            c.row_hash.push(link.row_hash.as_slice());
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::PgStore;

    /// The plan of [`APPLY`] on a writer's connection, made (as in
    /// service) on a new database, where `client_token_record` is empty:
    /// it must still find a completion's record by its primary key, not
    /// scan the table (`super::super::writer_conn`). Needs the PostgreSQL
    /// server of `TEST_DATABASE_URL`, as the integration tests do.
    #[tokio::test]
    async fn writer_plans_probe_the_primary_key_on_an_empty_database() {
        let server = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        let url = format!("{server}/test_{}", Uuid::new_v4().simple());
        let store = PgStore::connect(&url, 1).await.expect("a new database");
        let writer = WriterConnection::new(&store.pool().connect_options());
        let plan: Vec<String> = writer
            .run(async |conn| {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("prepare apply as {APPLY}")))
                    .execute(&mut *conn)
                    .await?;
                let nulls = vec!["null"; 38].join(", ");
                Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "explain execute apply({nulls})"
                )))
                .fetch_all(&mut *conn)
                .await?)
            })
            .await
            .expect("explain");
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index Scan using client_token_record_pkey on client_token_record"),
            "{plan}"
        );
        for scan in ["Seq Scan", "Hash Join", "Merge Join"] {
            assert!(!plan.contains(scan), "{scan} in\n{plan}");
        }
        writer.close().await;
    }
}
