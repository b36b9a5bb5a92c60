//! Group commit of phase-1 claims on PostgreSQL ([`crate::store::group_commit`]):
//! a second writer beside the audit writer, so that claims never wait for
//! the chain head and the two commit in parallel.
//!
//! One batch is one transaction: every claim is first offered to one
//! `insert … select … from unnest(…) on conflict do nothing returning
//! lease_id`; the claims it inserted hold their record (`Acquired`). The
//! others — the key exists, or an earlier claim of the batch took it —
//! then run the one-claim SQL ([`super::queries::claim`]) one after
//! another, which reads the record under `for update` and decides
//! ([`crate::store::client_token::decide`]). Claims are taken in key order
//! (queue order within a key), so two replicas' batches lock the same
//! records in the same order and cannot deadlock, and two claims of one
//! key in a batch still give exactly one winner.

use std::collections::HashSet;

use sqlx::postgres::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::clock;
use crate::store::group_commit::{Batch, Done, Op};
use crate::store::{ClaimOutcome, NewClaim, StoreError, UpstreamToken, waiting};

/// The claim writer of a [`PgStore`](super::PgStore).
#[derive(Debug, Clone)]
pub(super) struct PgClaimBatch {
    pub(super) pool: PgPool,
}

impl Batch for PgClaimBatch {
    async fn write(&self, ops: &[Op]) -> Result<Vec<Done>, StoreError> {
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
        let mut tx = waiting(self.pool.begin()).await?;
        // The database's clock, shared by every replica, for the claims that
        // bring no time of their own (all but tests').
        let db_now = clock(&mut tx, None).await?;
        let now_of = |now: Option<OffsetDateTime>| now.unwrap_or(db_now);
        let leases: Vec<Uuid> = claims.iter().map(|_| Uuid::new_v4()).collect();
        let tokens: Vec<String> = claims.iter().map(|c| (c.3)(0)).collect();
        let mut cols = ClaimColumns::default();
        for ((_, claim, now, _), (lease, token)) in claims.iter().zip(leases.iter().zip(&tokens)) {
            let now = now_of(*now);
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
            cols.locked_until.push(now + claim.lease);
            cols.now.push(now);
            cols.expires_at.push(now + claim.ttl);
            cols.request_body.push(claim.request_body.as_deref());
        }
        let inserted: HashSet<Uuid> = sqlx::query_scalar(
            "insert into client_token_record (
                principal, method, client_token_sha256, acting_account_id,
                request_fingerprint, upstream_client_token, state, lease_id,
                locked_until, created_at, updated_at, expires_at, request_body
            )
            select u.principal, u.method, u.client_token_sha256, u.acting_account_id,
                   u.request_fingerprint, u.upstream_client_token, 'in_progress', u.lease_id,
                   u.locked_until, u.now, u.now, u.expires_at, u.request_body
            from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                        $7::uuid[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[],
                        $11::text[])
                 as u(principal, method, client_token_sha256, acting_account_id,
                      request_fingerprint, upstream_client_token, lease_id, locked_until, now,
                      expires_at, request_body)
            on conflict do nothing
            returning lease_id",
        )
        .bind(&cols.principal)
        .bind(&cols.method)
        .bind(&cols.client_token_sha256)
        .bind(&cols.acting_account_id)
        .bind(&cols.request_fingerprint)
        .bind(&cols.upstream_client_token)
        .bind(&cols.lease_id)
        .bind(&cols.locked_until)
        .bind(&cols.now)
        .bind(&cols.expires_at)
        .bind(&cols.request_body)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let mut outcomes: Vec<Option<ClaimOutcome>> = ops.iter().map(|_| None).collect();
        for ((i, claim, now, upstream_token), (lease, token)) in
            claims.into_iter().zip(leases.into_iter().zip(tokens))
        {
            outcomes[i] = Some(if inserted.contains(&lease) {
                ClaimOutcome::Acquired {
                    lease_id: lease,
                    takeover: false,
                    upstream_client_token: token,
                }
            } else {
                super::queries::claim(&mut tx, claim, now_of(now), &**upstream_token).await?
            });
        }
        tx.commit().await?;
        outcomes
            .into_iter()
            .map(|o| {
                o.map(Done::Claimed)
                    .ok_or_else(|| StoreError::Corrupt("a claim went unanswered".into()))
            })
            .collect()
    }
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
    locked_until: Vec<OffsetDateTime>,
    now: Vec<OffsetDateTime>,
    expires_at: Vec<OffsetDateTime>,
    request_body: Vec<Option<&'a str>>,
}
