//! Client-token dedup records (DESIGN §5): phase 1 claims, phase 3
//! completions, and the purge of expired records.

use std::time::Duration;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// The dedup key: `(principal, method, SHA-256 of the client token)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKey {
    /// The authenticated caller.
    pub principal: String,
    /// The RPC method name.
    pub method: &'static str,
    /// Lowercase hex SHA-256 of the client token.
    pub client_token_sha256: String,
}

/// A phase-1 claim.
#[derive(Debug, Clone)]
pub struct NewClaim {
    /// The dedup key.
    pub key: RecordKey,
    /// The acting account.
    pub acting_account_id: String,
    /// Lowercase hex SHA-256 of the canonical request.
    pub request_fingerprint: String,
    /// How long the claimant may drive the record before another request
    /// may take it over.
    pub lease: Duration,
    /// How long the record is kept.
    pub ttl: Duration,
}

/// A completed outcome, replayed to later requests with the same token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOutcome {
    /// The gRPC status code (0 = OK).
    pub grpc_code: i32,
    /// `ErrorInfo.reason` of an error.
    pub error_reason: Option<String>,
    /// The error message of an error.
    pub message: Option<String>,
    /// Encoded `google.rpc.Status` details of an error.
    pub details: Option<Vec<u8>>,
    /// Encoded `accountlink.v1.AccountLink` of a success.
    pub body: Option<Vec<u8>>,
}

/// What phase 1 decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The caller holds the lease and must drive the request.
    Acquired {
        /// Identifies this drive; phase 3 completes only while it holds.
        lease_id: Uuid,
        /// Whether a retryable or lease-expired record was taken over.
        takeover: bool,
        /// The ClientToken to send to AWS (the stored one on a takeover).
        upstream_client_token: String,
    },
    /// The token's outcome is final: replay it.
    Replay(StoredOutcome),
    /// Another request holds a live lease.
    InProgress {
        /// Until the lease ends.
        retry_after: Duration,
    },
    /// The token was used with a different request fingerprint.
    Mismatch,
}

/// What phase 3 records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// A final outcome (success or deterministic AWS client error).
    Completed(StoredOutcome),
    /// A transient failure: the next request with the token re-drives it.
    Retryable,
}

#[derive(sqlx::FromRow)]
struct ExistingRecord {
    request_fingerprint: String,
    upstream_client_token: String,
    generation: i32,
    state: String,
    locked_until: Option<OffsetDateTime>,
    expires_at: OffsetDateTime,
    grpc_code: Option<i32>,
    error_reason: Option<String>,
    response_message: Option<String>,
    response_details: Option<Vec<u8>>,
    response_body: Option<Vec<u8>>,
}

/// The time decisions are made at: `now` when given (tests), else the
/// database's clock, shared by every replica (so a replica whose clock runs
/// ahead cannot take over a live lease).
pub(crate) async fn clock(
    conn: &mut PgConnection,
    now: Option<OffsetDateTime>,
) -> Result<OffsetDateTime, sqlx::Error> {
    match now {
        Some(t) => Ok(t),
        None => sqlx::query_scalar("select now()").fetch_one(conn).await,
    }
}

/// Phase 1 (DESIGN §5): inserts the record `in_progress` with a lease, or,
/// on conflict, locks the existing row and decides, in this order:
/// expired and not under a live lease -> start afresh (next generation);
/// other fingerprint -> mismatch; live lease -> in progress; completed ->
/// replay; retryable or lease expired -> take over. `upstream_token(generation)` derives the
/// ClientToken sent to AWS for a new generation; a takeover reuses the
/// stored one.
pub(crate) async fn claim(
    conn: &mut PgConnection,
    claim: &NewClaim,
    now: OffsetDateTime,
    upstream_token: &(dyn Fn(i32) -> String + Sync),
) -> Result<ClaimOutcome, sqlx::Error> {
    let lease_id = Uuid::new_v4();
    let locked_until = now + claim.lease;
    // Twice at most: a purge may delete the conflicting row between the
    // insert and the select.
    for _ in 0..2 {
        let first_token = upstream_token(0);
        let inserted = sqlx::query(
            "insert into client_token_record (
                principal, method, client_token_sha256, acting_account_id, request_fingerprint,
                upstream_client_token, state, lease_id, locked_until, created_at, updated_at,
                expires_at
            ) values ($1, $2, $3, $4, $5, $6, 'in_progress', $7, $8, $9, $9, $10)
            on conflict do nothing",
        )
        .bind(&claim.key.principal)
        .bind(claim.key.method)
        .bind(&claim.key.client_token_sha256)
        .bind(&claim.acting_account_id)
        .bind(&claim.request_fingerprint)
        .bind(&first_token)
        .bind(lease_id)
        .bind(locked_until)
        .bind(now)
        .bind(now + claim.ttl)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(ClaimOutcome::Acquired {
                lease_id,
                takeover: false,
                upstream_client_token: first_token,
            });
        }

        let existing: Option<ExistingRecord> = sqlx::query_as(
            "select request_fingerprint, upstream_client_token, generation, state, locked_until,
                    expires_at, grpc_code, error_reason, response_message, response_details,
                    response_body
             from client_token_record
             where principal = $1 and method = $2 and client_token_sha256 = $3
             for update",
        )
        .bind(&claim.key.principal)
        .bind(claim.key.method)
        .bind(&claim.key.client_token_sha256)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(existing) = existing else { continue };
        return decide(conn, claim, existing, lease_id, now, upstream_token).await;
    }
    Err(sqlx::Error::RowNotFound)
}

async fn decide(
    conn: &mut PgConnection,
    claim: &NewClaim,
    existing: ExistingRecord,
    lease_id: Uuid,
    now: OffsetDateTime,
    upstream_token: &(dyn Fn(i32) -> String + Sync),
) -> Result<ClaimOutcome, sqlx::Error> {
    let locked_until = now + claim.lease;
    let live_lease =
        existing.state == "in_progress" && existing.locked_until.is_some_and(|until| until > now);

    if !live_lease && existing.expires_at <= now {
        // Expired but not yet purged: the token starts afresh, as a new
        // AWS request (next generation, next upstream ClientToken). A
        // record still driven under a live lease is never restarted.
        let generation = existing.generation.saturating_add(1);
        let token = upstream_token(generation);
        sqlx::query(
            "update client_token_record
             set acting_account_id = $4, request_fingerprint = $5, upstream_client_token = $6,
                 generation = $7, state = 'in_progress', lease_id = $8, locked_until = $9,
                 drive_count = 1, grpc_code = null, error_reason = null,
                 response_message = null, response_details = null, response_body = null,
                 created_at = $10, updated_at = $10, expires_at = $11
             where principal = $1 and method = $2 and client_token_sha256 = $3",
        )
        .bind(&claim.key.principal)
        .bind(claim.key.method)
        .bind(&claim.key.client_token_sha256)
        .bind(&claim.acting_account_id)
        .bind(&claim.request_fingerprint)
        .bind(&token)
        .bind(generation)
        .bind(lease_id)
        .bind(locked_until)
        .bind(now)
        .bind(now + claim.ttl)
        .execute(&mut *conn)
        .await?;
        return Ok(ClaimOutcome::Acquired {
            lease_id,
            takeover: false,
            upstream_client_token: token,
        });
    }

    if existing.request_fingerprint != claim.request_fingerprint {
        return Ok(ClaimOutcome::Mismatch);
    }

    if live_lease {
        let remaining = existing
            .locked_until
            .map_or(time::Duration::ZERO, |u| u - now);
        return Ok(ClaimOutcome::InProgress {
            retry_after: Duration::try_from(remaining).unwrap_or(Duration::ZERO),
        });
    }

    if existing.state == "completed" {
        return Ok(ClaimOutcome::Replay(StoredOutcome {
            grpc_code: existing.grpc_code.unwrap_or(tonic::Code::Unknown as i32),
            error_reason: existing.error_reason,
            message: existing.response_message,
            details: existing.response_details,
            body: existing.response_body,
        }));
    }

    // Retryable, or in progress under an expired lease: take it over. The
    // record lives at least as long as the new lease.
    sqlx::query(
        "update client_token_record
         set state = 'in_progress', lease_id = $4, locked_until = $5,
             drive_count = drive_count + 1, updated_at = $6,
             expires_at = greatest(expires_at, $5)
         where principal = $1 and method = $2 and client_token_sha256 = $3",
    )
    .bind(&claim.key.principal)
    .bind(claim.key.method)
    .bind(&claim.key.client_token_sha256)
    .bind(lease_id)
    .bind(locked_until)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(ClaimOutcome::Acquired {
        lease_id,
        takeover: true,
        upstream_client_token: existing.upstream_client_token,
    })
}

/// Phase 3 (DESIGN §5): records the outcome of the drive holding
/// `lease_id`. Returns `false` (and changes nothing) when that lease was
/// lost to a takeover.
pub(crate) async fn complete(
    conn: &mut PgConnection,
    key: &RecordKey,
    lease_id: Uuid,
    outcome: &RecordOutcome,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    let result = match outcome {
        RecordOutcome::Completed(stored) => {
            sqlx::query(
                "update client_token_record
                 set state = 'completed', lease_id = null, locked_until = null,
                     grpc_code = $5, error_reason = $6, response_message = $7,
                     response_details = $8, response_body = $9, updated_at = $10
                 where principal = $1 and method = $2 and client_token_sha256 = $3
                   and lease_id = $4",
            )
            .bind(&key.principal)
            .bind(key.method)
            .bind(&key.client_token_sha256)
            .bind(lease_id)
            .bind(stored.grpc_code)
            .bind(&stored.error_reason)
            .bind(&stored.message)
            .bind(&stored.details)
            .bind(&stored.body)
            .bind(now)
            .execute(&mut *conn)
            .await?
        }
        RecordOutcome::Retryable => {
            sqlx::query(
                "update client_token_record
                 set state = 'retryable', lease_id = null, locked_until = null, updated_at = $5
                 where principal = $1 and method = $2 and client_token_sha256 = $3
                   and lease_id = $4",
            )
            .bind(&key.principal)
            .bind(key.method)
            .bind(&key.client_token_sha256)
            .bind(lease_id)
            .bind(now)
            .execute(&mut *conn)
            .await?
        }
    };
    Ok(result.rows_affected() == 1)
}

/// Deletes records whose `expires_at` is at or before `now`, except those
/// being driven under a live lease. Returns how many were deleted.
pub(crate) async fn purge_expired(
    conn: &mut PgConnection,
    now: OffsetDateTime,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "delete from client_token_record
         where expires_at <= $1 and (locked_until is null or locked_until <= $1)",
    )
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}
