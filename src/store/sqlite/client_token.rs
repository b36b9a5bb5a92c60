//! The SQLite SQL of client-token dedup records (DESIGN §5). Runs inside
//! a `BEGIN IMMEDIATE` transaction on the writer connection, which holds
//! the database's write lock: the row read in phase 1 cannot change until
//! the decision is written.

use sqlx::SqliteConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{from_micros, micros};
use crate::store::client_token::{
    ClaimOutcome, Decision, ExistingRecord, NewClaim, RecordKey, RecordOutcome, decide,
};

#[derive(sqlx::FromRow)]
struct Row {
    request_fingerprint: String,
    upstream_client_token: String,
    generation: i32,
    state: String,
    locked_until: Option<i64>,
    expires_at: i64,
    grpc_code: Option<i32>,
    error_reason: Option<String>,
    response_message: Option<String>,
    response_details: Option<Vec<u8>>,
    response_body: Option<Vec<u8>>,
}

impl From<Row> for ExistingRecord {
    fn from(r: Row) -> Self {
        Self {
            request_fingerprint: r.request_fingerprint,
            upstream_client_token: r.upstream_client_token,
            generation: r.generation,
            state: r.state,
            locked_until: r.locked_until.map(from_micros),
            expires_at: from_micros(r.expires_at),
            grpc_code: r.grpc_code,
            error_reason: r.error_reason,
            response_message: r.response_message,
            response_details: r.response_details,
            response_body: r.response_body,
        }
    }
}

/// Phase 1: inserts the record `in_progress` with a lease, or acts on
/// [`decide`] for the existing one.
pub(super) async fn claim(
    conn: &mut SqliteConnection,
    claim: &NewClaim,
    now: OffsetDateTime,
    upstream_token: &(dyn Fn(i32) -> String + Sync),
) -> Result<ClaimOutcome, sqlx::Error> {
    let lease_id = Uuid::new_v4();
    let locked_until = micros(now + claim.lease);
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
    .bind(micros(now))
    .bind(micros(now + claim.ttl))
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

    // The write lock is held: no purge can run between the insert and this.
    let existing: Row = sqlx::query_as(
        "select request_fingerprint, upstream_client_token, generation, state, locked_until,
                expires_at, grpc_code, error_reason, response_message, response_details,
                response_body
         from client_token_record
         where principal = $1 and method = $2 and client_token_sha256 = $3",
    )
    .bind(&claim.key.principal)
    .bind(claim.key.method)
    .bind(&claim.key.client_token_sha256)
    .fetch_one(&mut *conn)
    .await?;
    match decide(existing.into(), &claim.request_fingerprint, now) {
        Decision::Restart { generation } => {
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
            .bind(micros(now))
            .bind(micros(now + claim.ttl))
            .execute(&mut *conn)
            .await?;
            Ok(ClaimOutcome::Acquired {
                lease_id,
                takeover: false,
                upstream_client_token: token,
            })
        }
        Decision::Mismatch => Ok(ClaimOutcome::Mismatch),
        Decision::InProgress { retry_after } => Ok(ClaimOutcome::InProgress { retry_after }),
        Decision::Replay(stored) => Ok(ClaimOutcome::Replay(stored)),
        Decision::Takeover {
            upstream_client_token,
        } => {
            // The record lives at least as long as the new lease (SQLite's
            // two-argument max() is PostgreSQL's greatest()).
            sqlx::query(
                "update client_token_record
                 set state = 'in_progress', lease_id = $4, locked_until = $5,
                     drive_count = drive_count + 1, updated_at = $6,
                     expires_at = max(expires_at, $5)
                 where principal = $1 and method = $2 and client_token_sha256 = $3",
            )
            .bind(&claim.key.principal)
            .bind(claim.key.method)
            .bind(&claim.key.client_token_sha256)
            .bind(lease_id)
            .bind(locked_until)
            .bind(micros(now))
            .execute(&mut *conn)
            .await?;
            Ok(ClaimOutcome::Acquired {
                lease_id,
                takeover: true,
                upstream_client_token,
            })
        }
    }
}

/// Phase 3: records the outcome of the drive holding `lease_id`. Returns
/// `false` (and changes nothing) when that lease was lost to a takeover.
pub(super) async fn complete(
    conn: &mut SqliteConnection,
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
            .bind(micros(now))
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
            .bind(micros(now))
            .execute(&mut *conn)
            .await?
        }
    };
    Ok(result.rows_affected() == 1)
}

/// Deletes records whose `expires_at` is at or before `now`, except those
/// being driven under a live lease. Returns how many were deleted.
pub(super) async fn purge_expired(
    conn: &mut SqliteConnection,
    now: OffsetDateTime,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "delete from client_token_record
         where expires_at <= $1 and (locked_until is null or locked_until <= $1)",
    )
    .bind(micros(now))
    .execute(&mut *conn)
    .await?
    .rows_affected())
}
