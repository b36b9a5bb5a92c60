//! The PostgreSQL group-commit transaction ([`crate::store::group_commit`]).
//!
//! One batch is one transaction of a fixed number of statements, whatever
//! its size: the completions in one `update … from unnest(…)`, then the
//! chain head locked once
//! (`select … for update` of the `audit_chain` row, which serializes the
//! appends of every replica), every event in one `insert … select … from
//! unnest(…)`, the head moved once, and one commit. Each statement's text
//! is fixed, so sqlx prepares it once per connection and reuses it.
//!
//! Claims (phase 1) are not batched here: each runs in its own short
//! transaction on a pooled connection (`PgStore::claim`), concurrently with
//! the others, and PostgreSQL already flushes the WAL of concurrent commits
//! together. A claim op in a batch is answered as a store bug.

use std::collections::HashSet;

use sqlx::PgConnection;
use sqlx::postgres::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::group_commit::{self, Batch, ChainEntry, Done, Link, Op};
use crate::store::{DEFAULT_CHAIN, RecordOutcome, StoreError, hash32, waiting};

/// The batch writer of a [`PgStore`](super::PgStore).
#[derive(Debug, Clone)]
pub(super) struct PgBatch {
    pub(super) pool: PgPool,
}

impl Batch for PgBatch {
    async fn write(&self, ops: &[Op]) -> Result<Vec<Done>, StoreError> {
        let mut tx = waiting(self.pool.begin()).await?;
        let completed = complete_all(&mut tx, ops).await?;
        let entries = group_commit::entries(ops);
        let (last_seq, last_hash): (i64, Vec<u8>) = sqlx::query_as(
            "select last_seq, last_hash from audit_chain where chain_id = $1 for update",
        )
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
        let held = ops
            .iter()
            .filter_map(|op| match op {
                Op::Complete { lease_id, .. } => Some(completed.contains(lease_id)),
                _ => None,
            })
            .collect();
        group_commit::answers(ops, Vec::new(), held, &links)
    }
}

/// Records the outcome of every completion of `ops` whose lease still
/// holds its record, in one statement; returns the lease ids that held.
/// A completion whose lease was lost to a takeover matches no row (the
/// `lease_id` condition) and changes nothing, as one at a time would.
/// Leases are unique, so no record is matched twice.
async fn complete_all(conn: &mut PgConnection, ops: &[Op]) -> Result<HashSet<Uuid>, StoreError> {
    let mut cols = CompleteColumns::default();
    for op in ops {
        if let Op::Complete {
            key,
            lease_id,
            outcome,
            entry,
        } = op
        {
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
                // A record in progress holds no outcome (claims clear it),
                // so writing nulls changes nothing there.
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
    }
    if cols.lease_id.is_empty() {
        return Ok(HashSet::new());
    }
    let held: Vec<Uuid> = sqlx::query_scalar(
        "update client_token_record r
         set state = u.state, lease_id = null, locked_until = null,
             grpc_code = u.grpc_code, error_reason = u.error_reason,
             response_message = u.response_message, response_details = u.response_details,
             response_body = u.response_body, updated_at = u.updated_at
         from unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::int4[],
                     $7::text[], $8::text[], $9::bytea[], $10::bytea[], $11::timestamptz[])
              as u(principal, method, client_token_sha256, lease_id, state, grpc_code,
                   error_reason, response_message, response_details, response_body, updated_at)
         where r.principal = u.principal and r.method = u.method
           and r.client_token_sha256 = u.client_token_sha256 and r.lease_id = u.lease_id
         returning u.lease_id",
    )
    .bind(&cols.principal)
    .bind(&cols.method)
    .bind(&cols.client_token_sha256)
    .bind(&cols.lease_id)
    .bind(&cols.state)
    .bind(&cols.grpc_code)
    .bind(&cols.error_reason)
    .bind(&cols.message)
    .bind(&cols.details)
    .bind(&cols.body)
    .bind(&cols.updated_at)
    .fetch_all(&mut *conn)
    .await?;
    Ok(held.into_iter().collect())
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

/// Inserts the chained `entries` (`links[i]` is the place of
/// `entries[i]`) in one statement.
async fn insert_events(
    conn: &mut PgConnection,
    entries: &[&ChainEntry],
    links: &[Link],
) -> Result<(), StoreError> {
    let n = entries.len();
    let mut event_id = Vec::with_capacity(n);
    let mut seq = Vec::with_capacity(n);
    let mut event_time = Vec::with_capacity(n);
    let mut method = Vec::with_capacity(n);
    let mut read_only = Vec::with_capacity(n);
    let mut principal = Vec::with_capacity(n);
    let mut source_ip = Vec::with_capacity(n);
    let mut user_agent = Vec::with_capacity(n);
    let mut request_id = Vec::with_capacity(n);
    let mut account_id = Vec::with_capacity(n);
    let mut request_parameters = Vec::with_capacity(n);
    let mut response_elements = Vec::with_capacity(n);
    let mut grpc_code = Vec::with_capacity(n);
    let mut error_reason = Vec::with_capacity(n);
    let mut error_message = Vec::with_capacity(n);
    let mut upstream_request_id = Vec::with_capacity(n);
    let mut upstream_attempts = Vec::with_capacity(n);
    let mut idempotency_outcome = Vec::with_capacity(n);
    let mut client_token_sha256 = Vec::with_capacity(n);
    let mut duration_us = Vec::with_capacity(n);
    let mut prev_hash = Vec::with_capacity(n);
    let mut row_hash = Vec::with_capacity(n);
    for (entry, link) in entries.iter().zip(links) {
        // `storable` clamped the counters to their columns' range.
        let e = &entry.event;
        event_id.push(e.event_id);
        seq.push(link.seq);
        event_time.push(e.event_time);
        method.push(e.method.as_str());
        read_only.push(e.read_only);
        principal.push(e.principal.as_str());
        source_ip.push(e.source_ip.as_deref());
        user_agent.push(e.user_agent.as_deref());
        request_id.push(e.request_id.as_str());
        account_id.push(e.account_id.as_deref());
        request_parameters.push(&e.request_parameters);
        response_elements.push(e.response_elements.as_ref());
        grpc_code.push(e.grpc_code.as_str());
        error_reason.push(e.error_reason.as_deref());
        error_message.push(e.error_message.as_deref());
        upstream_request_id.push(e.upstream_request_id.as_deref());
        upstream_attempts.push(i32::try_from(e.upstream_attempts).unwrap_or(i32::MAX));
        idempotency_outcome.push(e.idempotency_outcome.as_str());
        client_token_sha256.push(e.client_token_sha256.as_deref());
        duration_us.push(i64::try_from(e.duration_us).unwrap_or(i64::MAX));
        prev_hash.push(link.prev_hash.as_slice());
        row_hash.push(link.row_hash.as_slice());
    }
    sqlx::query(
        "insert into audit_event (
            event_id, chain_id, seq, event_time, method, read_only, principal,
            source_ip, user_agent, request_id, account_id, request_parameters,
            response_elements, grpc_code, error_reason, error_message,
            upstream_request_id, upstream_attempts, idempotency_outcome,
            client_token_sha256, duration_us, prev_hash, row_hash
        )
        select u.event_id, $1, u.seq, u.event_time, u.method, u.read_only, u.principal,
               u.source_ip, u.user_agent, u.request_id, u.account_id, u.request_parameters,
               u.response_elements, u.grpc_code, u.error_reason, u.error_message,
               u.upstream_request_id, u.upstream_attempts, u.idempotency_outcome,
               u.client_token_sha256, u.duration_us, u.prev_hash, u.row_hash
        from unnest($2::uuid[], $3::int8[], $4::timestamptz[], $5::text[], $6::bool[],
                    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                    $12::jsonb[], $13::jsonb[], $14::text[], $15::text[], $16::text[],
                    $17::text[], $18::int4[], $19::text[], $20::text[], $21::int8[],
                    $22::bytea[], $23::bytea[])
             as u(event_id, seq, event_time, method, read_only, principal, source_ip,
                  user_agent, request_id, account_id, request_parameters, response_elements,
                  grpc_code, error_reason, error_message, upstream_request_id,
                  upstream_attempts, idempotency_outcome, client_token_sha256, duration_us,
                  prev_hash, row_hash)",
    )
    .bind(DEFAULT_CHAIN)
    .bind(&event_id)
    .bind(&seq)
    .bind(&event_time)
    .bind(&method)
    .bind(&read_only)
    .bind(&principal)
    .bind(&source_ip)
    .bind(&user_agent)
    .bind(&request_id)
    .bind(&account_id)
    .bind(&request_parameters)
    .bind(&response_elements)
    .bind(&grpc_code)
    .bind(&error_reason)
    .bind(&error_message)
    .bind(&upstream_request_id)
    .bind(&upstream_attempts)
    .bind(&idempotency_outcome)
    .bind(&client_token_sha256)
    .bind(&duration_us)
    .bind(&prev_hash)
    .bind(&row_hash)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
