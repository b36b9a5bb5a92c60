//! Group commit of phase-1 claims on PostgreSQL ([`crate::store::group_commit`]):
//! a second writer beside the audit writer, so that claims never wait for
//! the chain head and the two commit in parallel.
//!
//! Every claim of a batch is first offered to one statement ([`INSERT`]:
//! `insert … select … from unnest(…) on conflict do nothing returning
//! lease_id`), run on its own, so it is its own transaction: one round
//! trip and one commit, with the database's clock read in the statement.
//! The claims it inserted hold their record (`Acquired`). The others — the
//! key exists, or an earlier claim of the batch took it — then run the
//! one-claim SQL ([`super::queries::claim`]) one after another in a second
//! transaction, which reads each record under `for update` and decides
//! ([`crate::store::client_token::decide`]), as if they had come in the
//! next batch. Claims are taken in key order (queue order within a key),
//! so two replicas' batches lock the same records in the same order and
//! cannot deadlock, and two claims of one key in a batch still give
//! exactly one winner.
//!
//! Nobody is answered before both have committed. If the second fails, the
//! whole batch is answered [`StoreError`]; the records the first inserted
//! stay in progress under leases nobody holds, as after a crash between
//! phase 1 and phase 2: a retry with the same client token waits out the
//! lease and takes over, and so does the completer.

use std::collections::HashSet;

use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use super::clock;
use super::writer_conn::WriterConnection;
use crate::store::group_commit::{Batch, Done, Op};
use crate::store::{ClaimOutcome, NewClaim, StoreError, UpstreamToken};

/// The claim writer of a [`PgStore`](super::PgStore).
#[derive(Debug, Clone)]
pub(super) struct PgClaimBatch {
    pub(super) conn: WriterConnection,
}

impl Batch for PgClaimBatch {
    async fn write(&self, ops: &[Op]) -> Result<Vec<Done>, StoreError> {
        self.conn
            .run(async |conn| claim_batch(conn, ops).await)
            .await
    }
}

/// One batch of claims on `conn` (see the module docs).
async fn claim_batch(conn: &mut PgConnection, ops: &[Op]) -> Result<Vec<Done>, StoreError> {
    let mut claims: Vec<(usize, &NewClaim, Option<OffsetDateTime>, &UpstreamToken)> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| match op {
            Op::Claim {
                claim,
                now,
                upstream_token,
            } => Ok((i, claim, *now, upstream_token)),
            other => Err(StoreError::Corrupt(format!(
                "the claim writer was given {other:?}"
            ))),
        })
        .collect::<Result<_, _>>()?;
    // Key order, queue order within a key (the sort is stable).
    claims.sort_by(|a, b| {
        let (a, b) = (&a.1.key, &b.1.key);
        (&a.principal, a.method, &a.client_token_sha256).cmp(&(
            &b.principal,
            b.method,
            &b.client_token_sha256,
        ))
    });
    let leases: Vec<Uuid> = claims.iter().map(|_| Uuid::new_v4()).collect();
    let tokens: Vec<String> = claims.iter().map(|c| (c.3)(0)).collect();
    let mut cols = ClaimColumns::default();
    for ((_, claim, now, _), (lease, token)) in claims.iter().zip(leases.iter().zip(&tokens)) {
        cols.principal.push(claim.key.principal.as_str());
        cols.method.push(claim.key.method);
        cols.client_token_sha256
            .push(claim.key.client_token_sha256.as_str());
        cols.acting_account_id
            .push(claim.acting_account_id.as_str());
        cols.request_fingerprint
            .push(claim.request_fingerprint.as_str());
        cols.upstream_client_token.push(token.as_str());
        cols.lease_id.push(*lease);
        cols.now.push(*now);
        cols.lease_us.push(micros(claim.lease));
        cols.ttl_us.push(micros(claim.ttl));
        cols.request_body.push(claim.request_body.as_deref());
    }
    let inserted: HashSet<Uuid> = sqlx::query_scalar(INSERT)
        .bind(&cols.principal)
        .bind(&cols.method)
        .bind(&cols.client_token_sha256)
        .bind(&cols.acting_account_id)
        .bind(&cols.request_fingerprint)
        .bind(&cols.upstream_client_token)
        .bind(&cols.lease_id)
        .bind(&cols.now)
        .bind(&cols.lease_us)
        .bind(&cols.ttl_us)
        .bind(&cols.request_body)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    let mut outcomes: Vec<Option<ClaimOutcome>> = ops.iter().map(|_| None).collect();
    let mut conflicts = Vec::new();
    for ((i, claim, now, upstream_token), (lease, token)) in
        claims.into_iter().zip(leases.into_iter().zip(tokens))
    {
        if inserted.contains(&lease) {
            outcomes[i] = Some(ClaimOutcome::Acquired {
                lease_id: lease,
                takeover: false,
                upstream_client_token: token,
            });
        } else {
            conflicts.push((i, claim, now, upstream_token));
        }
    }
    if !conflicts.is_empty() {
        // The records exist: decide each under its row lock, in key
        // order, in one transaction.
        let mut tx = conn.begin().await?;
        // The database's clock, shared by every replica, for the claims
        // that bring no time of their own (all but tests').
        let db_now = clock(&mut tx, None).await?;
        for (i, claim, now, upstream_token) in conflicts {
            outcomes[i] = Some(
                super::queries::claim(&mut tx, claim, now.unwrap_or(db_now), &**upstream_token)
                    .await?,
            );
        }
        tx.commit().await?;
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.map(Done::Claimed)
                .ok_or_else(|| StoreError::Corrupt("a claim went unanswered".into()))
        })
        .collect()
}

/// The first statement of a claim batch, run on its own (so it commits by
/// itself): every claim as a new record in progress under its lease, unless
/// its key exists. `$8` is each claim's time, null for the database's clock
/// (`now()`, shared by every replica); `$9` and `$10` its lease and its
/// record's time to live, in microseconds. Returns the leases of the
/// records it inserted.
const INSERT: &str = "insert into client_token_record (
        principal, method, client_token_sha256, acting_account_id,
        request_fingerprint, upstream_client_token, state, lease_id,
        locked_until, created_at, updated_at, expires_at, request_body
    )
    select u.principal, u.method, u.client_token_sha256, u.acting_account_id,
           u.request_fingerprint, u.upstream_client_token, 'in_progress', u.lease_id,
           t.now + u.lease_us * interval '1 microsecond', t.now, t.now,
           t.now + u.ttl_us * interval '1 microsecond', u.request_body
    from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::uuid[], $8::timestamptz[], $9::int8[], $10::int8[], $11::text[])
         as u(principal, method, client_token_sha256, acting_account_id,
              request_fingerprint, upstream_client_token, lease_id, now, lease_us,
              ttl_us, request_body)
         cross join lateral (select coalesce(u.now, now()) as now) as t
    on conflict do nothing
    returning lease_id";

/// `d` in whole microseconds (saturating), as [`INSERT`] takes durations.
fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The columns of a batch's new records, one array each.
#[derive(Default)]
struct ClaimColumns<'a> {
    principal: Vec<&'a str>,
    method: Vec<&'a str>,
    client_token_sha256: Vec<&'a str>,
    acting_account_id: Vec<&'a str>,
    request_fingerprint: Vec<&'a str>,
    upstream_client_token: Vec<&'a str>,
    lease_id: Vec<Uuid>,
    /// `None`: the database's clock.
    now: Vec<Option<OffsetDateTime>>,
    lease_us: Vec<i64>,
    ttl_us: Vec<i64>,
    request_body: Vec<Option<&'a str>>,
}
