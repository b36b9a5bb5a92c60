//! The PostgreSQL group-commit transaction ([`crate::store::group_commit`]).
//!
//! A batch is one statement ([`APPLY`]), whatever its size and whoever
//! appended last. It locks the chain head (`select … for update` of the
//! `audit_chain` row, which serializes the appends of every replica),
//! chains the batch's events after it in the database (the function
//! `audit_row_hashes`, migration `20261203000001`), inserts every event
//! (`insert … select … from unnest(…)`), moves the head once and records
//! every completion (`update … from unnest(…)`). Run on its own, it is its
//! own transaction: one round trip and one commit per batch, and the
//! head's lock is held only while the statement runs and commits. So
//! `seq` stays gapless across replicas.
//!
//! The service computes each event's canonical encoding with the `seq`
//! left open ([`crate::audit::CanonicalParts`]); the database only hashes
//! (`row_hash = SHA-256(prev_hash || before || seq || after)`), so the
//! chain is the one `audit verify` checks. Before, a writer chained its
//! events after the head its last batch had left, and when another replica
//! had appended in between it had to lock the head in a transaction of its
//! own and hash between two round trips, holding the lock across both
//! (docs/benchmarks.md).
//!
//! Claims (phase 1) have a writer of their own ([`super::claims`]), so that
//! they never wait for the chain head; a claim op here is answered as a
//! store bug.

use std::collections::HashSet;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::writer_conn::WriterConnection;
use crate::store::group_commit::{self, Batch, ChainEntry, Done, Op};
use crate::store::{DEFAULT_CHAIN, RecordOutcome, StoreError};

/// The batch writer of a [`PgStore`](super::PgStore).
#[derive(Debug, Clone)]
pub(super) struct PgBatch {
    conn: WriterConnection,
}

impl PgBatch {
    pub(super) fn new(conn: WriterConnection) -> Self {
        Self { conn }
    }
}

impl Batch for PgBatch {
    async fn write(&self, ops: &[Op]) -> Result<Vec<Done>, StoreError> {
        let entries = group_commit::entries(ops);
        let events = EventColumns::new(&entries);
        let completions = CompleteColumns::new(ops);
        let (first_seq, held) = self
            .conn
            .run(async |conn| apply(conn, &events, &completions).await)
            .await?;
        let held = ops
            .iter()
            .filter_map(|op| match op {
                Op::Complete { lease_id, .. } => Some(held.contains(lease_id)),
                _ => None,
            })
            .collect();
        group_commit::answers(ops, Vec::new(), held, (first_seq..).take(entries.len()))
    }
}

/// The one statement of a batch (see the module docs). `$1` chain, `$2` ..
/// `$20` the event columns, `$21` and `$22` their canonical encodings
/// before and after the `seq`, `$23` .. `$33` the completion columns.
/// Returns the `seq` of the batch's first event (null when the chain has
/// no head row) and the leases whose completion held: a completion whose
/// lease was lost to a takeover matches no record (the `lease_id`
/// condition) and changes nothing, as one at a time would; leases are
/// unique, so no record is matched twice. A record in progress holds no
/// outcome (claims clear it), so writing a retryable completion's nulls
/// changes nothing there.
///
/// The head's `for update` waits for another replica's batch to commit and
/// then returns the row it left (read committed), and the head's update
/// moves that row.
const APPLY: &str = "with head as (
        select last_seq, last_hash from audit_chain where chain_id = $1 for update
    ), chained as (
        select head.last_seq, h.prev_hashes, h.row_hashes
        from head, audit_row_hashes(head.last_seq, head.last_hash, $21::bytea[], $22::bytea[]) as h
    ), moved as (
        update audit_chain a
        set last_seq = c.last_seq + cardinality(c.row_hashes),
            last_hash = c.row_hashes[cardinality(c.row_hashes)]
        from chained c
        where a.chain_id = $1 and cardinality(c.row_hashes) > 0
    ), events as (
        insert into audit_event (
            event_id, chain_id, seq, event_time, method, read_only, principal,
            source_ip, user_agent, request_id, account_id, request_parameters,
            response_elements, grpc_code, error_reason, error_message,
            upstream_request_id, upstream_attempts, idempotency_outcome,
            client_token_sha256, duration_us, prev_hash, row_hash
        )
        select u.event_id, $1, c.last_seq + u.n, u.event_time, u.method, u.read_only,
               u.principal, u.source_ip, u.user_agent, u.request_id, u.account_id,
               u.request_parameters, u.response_elements, u.grpc_code, u.error_reason,
               u.error_message, u.upstream_request_id, u.upstream_attempts,
               u.idempotency_outcome, u.client_token_sha256, u.duration_us, u.prev_hash,
               u.row_hash
        from chained c,
             unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::bool[], $6::text[],
                    $7::text[], $8::text[], $9::text[], $10::text[], $11::jsonb[],
                    $12::jsonb[], $13::text[], $14::text[], $15::text[], $16::text[],
                    $17::int4[], $18::text[], $19::text[], $20::int8[],
                    c.prev_hashes, c.row_hashes) with ordinality
             as u(event_id, event_time, method, read_only, principal, source_ip,
                  user_agent, request_id, account_id, request_parameters, response_elements,
                  grpc_code, error_reason, error_message, upstream_request_id,
                  upstream_attempts, idempotency_outcome, client_token_sha256, duration_us,
                  prev_hash, row_hash, n)
    ), done as (
        update client_token_record r
        set state = c.state, lease_id = null, locked_until = null,
            grpc_code = c.grpc_code, error_reason = c.error_reason,
            response_message = c.response_message, response_details = c.response_details,
            response_body = c.response_body, updated_at = c.updated_at
        from unnest($23::text[], $24::text[], $25::text[], $26::uuid[], $27::text[],
                    $28::int4[], $29::text[], $30::text[], $31::bytea[], $32::bytea[],
                    $33::timestamptz[])
             as c(principal, method, client_token_sha256, lease_id, state, grpc_code,
                  error_reason, response_message, response_details, response_body, updated_at)
        where r.principal = c.principal and r.method = c.method
          and r.client_token_sha256 = c.client_token_sha256 and r.lease_id = c.lease_id
        returning c.lease_id
    )
    select (select last_seq + 1 from chained), array(select lease_id from done)";

/// Runs [`APPLY`] for the events `e` and the completions `c`; returns the
/// `seq` of the first event and the leases whose completion held.
///
/// # Errors
/// [`StoreError::Corrupt`] when the chain has no head row; else the
/// database's errors.
async fn apply(
    conn: &mut PgConnection,
    e: &EventColumns<'_>,
    c: &CompleteColumns<'_>,
) -> Result<(i64, HashSet<Uuid>), StoreError> {
    let (first_seq, held): (Option<i64>, Vec<Uuid>) = sqlx::query_as(APPLY)
        .bind(DEFAULT_CHAIN)
        .bind(&e.event_id)
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
        .bind(&e.before)
        .bind(&e.after)
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
    let first_seq = first_seq.ok_or_else(|| {
        StoreError::Corrupt(format!("the chain {DEFAULT_CHAIN:?} has no head row"))
    })?;
    Ok((first_seq, held.into_iter().collect()))
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

/// The columns of a batch's events, one array each, with their canonical
/// encodings around the `seq` ([`crate::audit::CanonicalParts`]).
struct EventColumns<'a> {
    event_id: Vec<Uuid>,
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
    before: Vec<&'a [u8]>,
    after: Vec<&'a [u8]>,
}

impl<'a> EventColumns<'a> {
    /// `entries`, in order.
    fn new(entries: &[&'a ChainEntry]) -> Self {
        let n = entries.len();
        let mut c = Self {
            event_id: Vec::with_capacity(n),
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
            before: Vec::with_capacity(n),
            after: Vec::with_capacity(n),
        };
        for entry in entries {
            // `storable` clamped the counters to their columns' range.
            let e = &entry.event;
            c.event_id.push(e.event_id);
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
            c.before.push(entry.canonical.before());
            c.after.push(entry.canonical.after());
        }
        c
    }
}

/// The test databases' names and reaper, shared with the integration tests.
#[cfg(test)]
#[path = "../../../tests/support/test_database.rs"]
mod test_database;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{CanonicalParts, GENESIS_HASH};
    use crate::store::Store as _;
    use crate::store::postgres::PgStore;

    /// A new database on the PostgreSQL server of `TEST_DATABASE_URL`,
    /// named and reaped as the integration tests' are.
    async fn new_store() -> PgStore {
        let url = format!(
            "{}/{}",
            test_database::database_server_url(),
            test_database::fresh_database_name()
        );
        PgStore::connect(&url, 1).await.expect("a new database")
    }

    /// The database's `audit_row_hashes` chains exactly as
    /// [`CanonicalParts::row_hash`] does, for events whose encodings hold
    /// escapes, non-ASCII text and nulls, up to the last `seq` below 2^53;
    /// and it refuses a `seq` of 2^53, where JCS rounds.
    #[tokio::test]
    async fn the_database_chains_like_the_service_up_to_two_to_the_53() {
        let store = new_store().await;
        let events: Vec<crate::store::AuditEvent> = (0..3)
            .map(|i| crate::store::AuditEvent {
                event_id: Uuid::new_v4(),
                principal: format!("spiffe://team-ä/\"quoted\"/{i}"),
                source_ip: (i == 1).then(|| "192.0.2.7".into()),
                user_agent: Some("grpc-go/1.70 \u{1F600}\n".into()),
                request_parameters: serde_json::json!({ "z": 1e21, "a": "\u{2028}", "n": null }),
                ..crate::audit::tests::event()
            })
            .collect();
        let parts: Vec<CanonicalParts> = events
            .iter()
            .map(|e| CanonicalParts::new(DEFAULT_CHAIN, e))
            .collect();
        let before: Vec<&[u8]> = parts.iter().map(CanonicalParts::before).collect();
        let after: Vec<&[u8]> = parts.iter().map(CanonicalParts::after).collect();
        /// `audit_row_hashes`'s `(prev_hashes, row_hashes)`.
        type Hashes = (Vec<Vec<u8>>, Vec<Vec<u8>>);
        let hashes = async |last_seq: i64| -> Result<Hashes, sqlx::Error> {
            sqlx::query_as("select * from audit_row_hashes($1, $2, $3, $4)")
                .bind(last_seq)
                .bind(GENESIS_HASH.as_slice())
                .bind(&before)
                .bind(&after)
                .fetch_one(store.pool())
                .await
        };
        let last_seq = (1_i64 << 53) - 4;
        let (prev_hashes, row_hashes) = hashes(last_seq).await.expect("hashes");
        let mut prev = GENESIS_HASH;
        for (i, part) in parts.iter().enumerate() {
            let seq = last_seq + 1 + i64::try_from(i).unwrap();
            let row = part.row_hash(&prev, seq);
            assert_eq!(prev_hashes[i], prev, "prev_hash of seq {seq}");
            assert_eq!(row_hashes[i], row, "row_hash of seq {seq}");
            prev = row;
        }
        let beyond = hashes(last_seq + 1).await.expect_err("seq 2^53 refused");
        assert!(beyond.to_string().contains("beyond 2^53"), "{beyond}");
        store.close().await;
    }

    /// The plan of [`APPLY`] on a writer's connection, made (as in
    /// service) on a new database, where `client_token_record` is empty:
    /// it must still find a completion's record by its primary key, not
    /// scan the table (`super::super::writer_conn`). Needs the PostgreSQL
    /// server of `TEST_DATABASE_URL`, as the integration tests do.
    #[tokio::test]
    async fn writer_plans_probe_the_primary_key_on_an_empty_database() {
        let store = new_store().await;
        let writer = WriterConnection::new(&store.pool().connect_options());
        let plan: Vec<String> = writer
            .run(async |conn| {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("prepare apply as {APPLY}")))
                    .execute(&mut *conn)
                    .await?;
                let nulls = vec!["null"; 33].join(", ");
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
