//! What the two backends share below the [`Store`](super::Store) trait: the
//! row types, the time column codec, and the SQL of the dedup records and
//! the audit trail, written once.
//!
//! The SQL is the same text on PostgreSQL and SQLite (both take `$N`
//! parameters) except for a few fragments each backend passes in. It is
//! generated per backend by the macros below rather than by functions
//! generic over `sqlx::Database`: each expansion is ordinary monomorphic
//! sqlx code over that backend's connection type, without a dozen
//! `Encode`/`Decode` bounds on every function. Each backend module invokes
//! [`client_token_queries!`] and [`audit_queries!`] once.

use serde_json::Value;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Postgres, Sqlite, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::{AuditEvent, IdempotencyOutcome, StoredAuditEvent};
use super::client_token::ExistingRecord;

/// A time column: `timestamptz` on PostgreSQL, INTEGER microseconds since
/// the Unix epoch on SQLite (whose sqlx codec writes RFC 3339 text with a
/// varying number of fraction digits, which does not sort as time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DbTime(pub(crate) OffsetDateTime);

/// Microseconds since the Unix epoch of `t`, rounded down.
pub(crate) fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000)).unwrap_or(i64::MAX)
}

/// The time of a microsecond count since the Unix epoch.
pub(crate) fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Type<Postgres> for DbTime {
    fn type_info() -> <Postgres as Database>::TypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for DbTime {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <OffsetDateTime as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbTime {
    fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self(<OffsetDateTime as Decode<'r, Postgres>>::decode(
            value,
        )?))
    }
}

impl Type<Sqlite> for DbTime {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }
}

impl Encode<'_, Sqlite> for DbTime {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'_, Sqlite>>::encode(micros(self.0), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbTime {
    fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self(from_micros(<i64 as Decode<'r, Sqlite>>::decode(
            value,
        )?)))
    }
}

/// A `client_token_record` row as phase 1 reads it.
#[derive(sqlx::FromRow)]
pub(crate) struct RecordRow {
    request_fingerprint: String,
    upstream_client_token: String,
    generation: i32,
    state: String,
    locked_until: Option<DbTime>,
    expires_at: DbTime,
    grpc_code: Option<i32>,
    error_reason: Option<String>,
    response_message: Option<String>,
    response_details: Option<Vec<u8>>,
    response_body: Option<Vec<u8>>,
}

impl From<RecordRow> for ExistingRecord {
    fn from(r: RecordRow) -> Self {
        Self {
            request_fingerprint: r.request_fingerprint,
            upstream_client_token: r.upstream_client_token,
            generation: r.generation,
            state: r.state,
            locked_until: r.locked_until.map(|t| t.0),
            expires_at: r.expires_at.0,
            grpc_code: r.grpc_code,
            error_reason: r.error_reason,
            response_message: r.response_message,
            response_details: r.response_details,
            response_body: r.response_body,
        }
    }
}

/// Every column of `audit_event`, in one SELECT list.
pub(crate) const AUDIT_COLUMNS: &str = "event_id, chain_id, seq, event_time, method, read_only, \
    principal, source_ip, user_agent, request_id, account_id, request_parameters, \
    response_elements, grpc_code, error_reason, error_message, upstream_request_id, \
    upstream_attempts, idempotency_outcome, client_token_sha256, duration_us, prev_hash, row_hash";

/// An `audit_event` row.
#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    event_id: Uuid,
    chain_id: String,
    seq: i64,
    event_time: DbTime,
    method: String,
    read_only: bool,
    principal: String,
    source_ip: Option<String>,
    user_agent: Option<String>,
    request_id: String,
    account_id: Option<String>,
    request_parameters: Value,
    response_elements: Option<Value>,
    grpc_code: String,
    error_reason: Option<String>,
    error_message: Option<String>,
    upstream_request_id: Option<String>,
    upstream_attempts: i32,
    idempotency_outcome: String,
    client_token_sha256: Option<String>,
    duration_us: i64,
    prev_hash: Vec<u8>,
    row_hash: Vec<u8>,
}

impl From<AuditRow> for StoredAuditEvent {
    fn from(r: AuditRow) -> Self {
        Self {
            chain_id: r.chain_id,
            seq: r.seq,
            prev_hash: r.prev_hash,
            row_hash: r.row_hash,
            event: AuditEvent {
                event_id: r.event_id,
                event_time: r.event_time.0,
                method: r.method,
                read_only: r.read_only,
                principal: r.principal,
                source_ip: r.source_ip,
                user_agent: r.user_agent,
                request_id: r.request_id,
                account_id: r.account_id,
                request_parameters: r.request_parameters,
                response_elements: r.response_elements,
                grpc_code: r.grpc_code,
                error_reason: r.error_reason,
                error_message: r.error_message,
                upstream_request_id: r.upstream_request_id,
                upstream_attempts: u32::try_from(r.upstream_attempts).unwrap_or(0),
                // The column's check constraint admits only known names.
                idempotency_outcome: IdempotencyOutcome::parse(&r.idempotency_outcome)
                    .unwrap_or(IdempotencyOutcome::None),
                client_token_sha256: r.client_token_sha256,
                duration_us: u64::try_from(r.duration_us).unwrap_or(0),
            },
        }
    }
}

/// The ListAuditEvents filters on event attributes (everything but the
/// seq and time bounds, which each backend narrows its own way), as fixed
/// SQL fragments with bound values. `link_request` and `link_response` are
/// the backend's expressions of the link-id indexes, verbatim, `invitation`
/// that of the invitation-id index; `provider` the backend's JSON access to
/// `request_parameters.provider`.
macro_rules! push_attribute_filters {
    ($sql:expr, $query:expr, link_request = $req:literal, link_response = $resp:literal,
     provider = $prov:literal, invitation = $inv:literal) => {{
        let (sql, query) = ($sql, $query);
        if let Some(m) = &query.method {
            sql.push(" and method = ").push_bind(m.clone());
        }
        if let Some(p) = &query.principal {
            sql.push(" and principal = ").push_bind(p.clone());
        }
        if let Some(a) = &query.account_id {
            sql.push(" and account_id = ").push_bind(a.clone());
        }
        if let Some(l) = &query.link_id {
            sql.push(concat!(" and (", $req, " = "))
                .push_bind(l.clone())
                .push(concat!(" or ", $resp, " = "))
                .push_bind(l.clone())
                .push(")");
        }
        if let Some(p) = &query.provider {
            sql.push(concat!(" and ", $prov, " = "))
                .push_bind(p.clone());
        }
        if let Some(i) = &query.invitation_id {
            sql.push(concat!(" and ", $inv, " = ")).push_bind(i.clone());
        }
        if let Some(c) = &query.grpc_code {
            sql.push(" and grpc_code = ").push_bind(c.clone());
        }
        if let Some(o) = query.idempotency_outcome {
            sql.push(" and idempotency_outcome = ")
                .push_bind(o.as_str());
        }
    }};
}
pub(crate) use push_attribute_filters;

/// Generates the dedup-record SQL of one backend (DESIGN §5) as functions
/// over `&mut $conn`, run inside the caller's write transaction:
///
/// - `claim`: inserts the record `in_progress` with a lease, or reads the
///   existing one (`$lock` appended: `for update` on PostgreSQL, where
///   concurrent claims of a key wait on the row lock; SQLite's `BEGIN
///   IMMEDIATE` already holds the write lock) and carries out
///   [`decide`](crate::store::client_token::decide). `$greatest` is the
///   two-argument maximum (`greatest` / `max`).
/// - `complete`: records the outcome of the drive holding `lease_id`;
///   `false` (nothing changed) when that lease was lost to a takeover.
/// - `purge_expired`: deletes records past `expires_at` that are not under
///   a live lease.
/// - `take_over_stale`, `stale_backlog`: the completer's takeover of
///   records whose driver went away, and its backlog (see
///   [`Store::take_over_stale`](crate::store::Store::take_over_stale)).
///   `$new_uuid` is the backend's random-uuid expression (one per row),
///   `$skip_locked` what lets replicas take disjoint batches (` for update
///   skip locked` on PostgreSQL; SQLite's write lock already serializes).
macro_rules! client_token_queries {
    (
        conn = $conn:ty,
        lock = $lock:literal,
        greatest = $greatest:literal,
        new_uuid = $new_uuid:literal,
        skip_locked = $skip_locked:literal
    ) => {
        /// Phase 1 of a mutating RPC; see the module docs of
        /// `store::sql::client_token_queries!`.
        pub(super) async fn claim(
            conn: &mut $conn,
            claim: &$crate::store::NewClaim,
            now: ::time::OffsetDateTime,
            upstream_token: &(dyn Fn(i32) -> String + Sync),
        ) -> Result<$crate::store::ClaimOutcome, ::sqlx::Error> {
            use $crate::store::ClaimOutcome;
            use $crate::store::client_token::{Decision, decide};
            use $crate::store::sql::{DbTime, RecordRow};
            let lease_id = ::uuid::Uuid::new_v4();
            let locked_until = DbTime(now + claim.lease);
            // Twice at most: on PostgreSQL a purge may delete the
            // conflicting row between the insert and the select.
            for _ in 0..2 {
                let first_token = upstream_token(0);
                let inserted = ::sqlx::query(
                    "insert into client_token_record (
                        principal, method, client_token_sha256, acting_account_id,
                        request_fingerprint, upstream_client_token, state, lease_id,
                        locked_until, created_at, updated_at, expires_at, request_body
                    ) values ($1, $2, $3, $4, $5, $6, 'in_progress', $7, $8, $9, $9, $10, $11)
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
                .bind(DbTime(now))
                .bind(DbTime(now + claim.ttl))
                .bind(&claim.request_body)
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
                let existing: Option<RecordRow> = ::sqlx::query_as(concat!(
                    "select request_fingerprint, upstream_client_token, generation, state,
                            locked_until, expires_at, grpc_code, error_reason, response_message,
                            response_details, response_body
                     from client_token_record
                     where principal = $1 and method = $2 and client_token_sha256 = $3",
                    $lock
                ))
                .bind(&claim.key.principal)
                .bind(claim.key.method)
                .bind(&claim.key.client_token_sha256)
                .fetch_optional(&mut *conn)
                .await?;
                let Some(existing) = existing else { continue };
                return match decide(existing.into(), &claim.request_fingerprint, now) {
                    Decision::Restart { generation } => {
                        let token = upstream_token(generation);
                        ::sqlx::query(
                            "update client_token_record
                             set acting_account_id = $4, request_fingerprint = $5,
                                 upstream_client_token = $6, generation = $7,
                                 state = 'in_progress', lease_id = $8, locked_until = $9,
                                 drive_count = 1, grpc_code = null, error_reason = null,
                                 response_message = null, response_details = null,
                                 response_body = null, created_at = $10, updated_at = $10,
                                 expires_at = $11, request_body = $12
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
                        .bind(DbTime(now))
                        .bind(DbTime(now + claim.ttl))
                        .bind(&claim.request_body)
                        .execute(&mut *conn)
                        .await?;
                        Ok(ClaimOutcome::Acquired {
                            lease_id,
                            takeover: false,
                            upstream_client_token: token,
                        })
                    }
                    Decision::Mismatch => Ok(ClaimOutcome::Mismatch),
                    Decision::InProgress { retry_after } => {
                        Ok(ClaimOutcome::InProgress { retry_after })
                    }
                    Decision::Replay(stored) => Ok(ClaimOutcome::Replay(stored)),
                    Decision::Takeover {
                        upstream_client_token,
                    } => {
                        // The record lives at least as long as the new lease.
                        ::sqlx::query(concat!(
                            "update client_token_record
                             set state = 'in_progress', lease_id = $4, locked_until = $5,
                                 drive_count = drive_count + 1, updated_at = $6,
                                 expires_at = ",
                            $greatest,
                            "(expires_at, $5)
                             where principal = $1 and method = $2 and client_token_sha256 = $3"
                        ))
                        .bind(&claim.key.principal)
                        .bind(claim.key.method)
                        .bind(&claim.key.client_token_sha256)
                        .bind(lease_id)
                        .bind(locked_until)
                        .bind(DbTime(now))
                        .execute(&mut *conn)
                        .await?;
                        Ok(ClaimOutcome::Acquired {
                            lease_id,
                            takeover: true,
                            upstream_client_token,
                        })
                    }
                };
            }
            Err(::sqlx::Error::RowNotFound)
        }

        /// Phase 3: records the outcome of the drive holding `lease_id`.
        /// Returns `false` (and changes nothing) when that lease was lost
        /// to a takeover.
        #[allow(dead_code, reason = "PostgreSQL completes a batch in one statement")]
        pub(super) async fn complete(
            conn: &mut $conn,
            key: &$crate::store::RecordKey,
            lease_id: ::uuid::Uuid,
            outcome: &$crate::store::RecordOutcome,
            now: ::time::OffsetDateTime,
        ) -> Result<bool, ::sqlx::Error> {
            use $crate::store::RecordOutcome;
            use $crate::store::sql::DbTime;
            let result = match outcome {
                RecordOutcome::Completed(stored) => {
                    ::sqlx::query(
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
                    .bind(DbTime(now))
                    .execute(&mut *conn)
                    .await?
                }
                RecordOutcome::Retryable => {
                    ::sqlx::query(
                        "update client_token_record
                         set state = 'retryable', lease_id = null, locked_until = null,
                             updated_at = $5
                         where principal = $1 and method = $2 and client_token_sha256 = $3
                           and lease_id = $4",
                    )
                    .bind(&key.principal)
                    .bind(key.method)
                    .bind(&key.client_token_sha256)
                    .bind(lease_id)
                    .bind(DbTime(now))
                    .execute(&mut *conn)
                    .await?
                }
            };
            Ok(result.rows_affected() == 1)
        }

        /// Deletes records whose `expires_at` is at or before `now`, except
        /// those being driven under a live lease. Returns how many.
        pub(super) async fn purge_expired(
            conn: &mut $conn,
            now: ::time::OffsetDateTime,
        ) -> Result<u64, ::sqlx::Error> {
            Ok(::sqlx::query(
                "delete from client_token_record
                 where expires_at <= $1 and (locked_until is null or locked_until <= $1)",
            )
            .bind($crate::store::sql::DbTime(now))
            .execute(&mut *conn)
            .await?
            .rows_affected())
        }

        /// Takes over, under a fresh lease ending at `now + lease`, up to
        /// `limit` stale records (oldest `updated_at` first) that hold
        /// their canonical request; returns them.
        pub(super) async fn take_over_stale(
            conn: &mut $conn,
            now: ::time::OffsetDateTime,
            retryable_before: ::time::OffsetDateTime,
            lease: ::std::time::Duration,
            limit: u32,
        ) -> Result<Vec<$crate::store::StaleRecord>, ::sqlx::Error> {
            use $crate::store::sql::DbTime;
            let locked_until = DbTime(now + lease);
            ::sqlx::query_as(concat!(
                "update client_token_record
                 set state = 'in_progress', lease_id = ",
                $new_uuid,
                ", locked_until = $3, drive_count = drive_count + 1, updated_at = $1,
                    expires_at = ",
                $greatest,
                "(expires_at, $3)
                 where (principal, method, client_token_sha256) in (
                     select principal, method, client_token_sha256 from client_token_record
                     where ",
                $crate::store::sql::stale_records!(),
                " and request_body is not null
                     order by updated_at limit $4",
                $skip_locked,
                ")
                 returning principal, method, client_token_sha256, acting_account_id,
                           upstream_client_token, request_body, lease_id"
            ))
            .bind(DbTime(now))
            .bind(DbTime(retryable_before))
            .bind(locked_until)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await
        }

        /// How many records are stale now: `(all, without their canonical
        /// request)`.
        pub(super) async fn stale_backlog<'c, E>(
            conn: E,
            now: ::time::OffsetDateTime,
            retryable_before: ::time::OffsetDateTime,
        ) -> Result<$crate::store::StaleBacklog, ::sqlx::Error>
        where
            E: ::sqlx::Executor<'c, Database = <$conn as ::sqlx::Connection>::Database>,
        {
            use $crate::store::sql::DbTime;
            let (stale, without_request): (i64, i64) = ::sqlx::query_as(concat!(
                "select count(*),
                        coalesce(sum(case when request_body is null then 1 else 0 end), 0)
                 from client_token_record where ",
                $crate::store::sql::stale_records!()
            ))
            .bind(DbTime(now))
            .bind(DbTime(retryable_before))
            .fetch_one(conn)
            .await?;
            Ok($crate::store::StaleBacklog {
                stale: u64::try_from(stale).unwrap_or(0),
                without_request: u64::try_from(without_request).unwrap_or(0),
            })
        }
    };
}
pub(crate) use client_token_queries;

/// The completer's notion of a stale record (DESIGN §5), as SQL over `$1`
/// = now and `$2` = the `updated_at` before which a retryable record is
/// left to the completer: within its ttl, and either in progress under an
/// expired lease (its driver went away) or retryable and untouched since
/// `$2` (its caller did not come back). `state <> 'completed'` is spelled
/// out so the partial index `client_token_record_unfinished_idx` serves it.
macro_rules! stale_records {
    () => {
        "expires_at > $1 and state <> 'completed'
         and ((state = 'in_progress' and locked_until <= $1)
              or (state = 'retryable' and updated_at <= $2))"
    };
}
pub(crate) use stale_records;

/// Generates the audit-trail SQL of one backend as functions over
/// `&mut $conn` (writes, in the caller's transaction) and `&$pool` (reads):
///
/// - `insert_audit_event`: appends [`storable`](crate::store::audit::storable)
///   `event` to the default chain. The `update …
///   returning` on the chain head takes the row lock on PostgreSQL (held to
///   the end of the caller's transaction, serializing appends across
///   replicas) and runs under the write lock on SQLite. It takes the next
///   gapless `seq`, computes `row_hash` from the head's hash in Rust
///   ([`crate::audit::row_hash`]), inserts the row and moves the head.
/// - `rows_between`: streams in `seq` order.
/// - `chain_head`, `chain_anchor`, `row_hash_at`, `insert_checkpoint`,
///   `newest_checkpoint_before`: the small reads and writes of
///   `audit verify`, `checkpoint` and `retain`.
macro_rules! audit_queries {
    (conn = $conn:ty, pool = $pool:ty) => {
        /// Appends `event` to the default chain; returns its `seq`.
        pub(super) async fn insert_audit_event(
            conn: &mut $conn,
            event: &$crate::store::AuditEvent,
        ) -> Result<i64, $crate::store::StoreError> {
            use $crate::store::DEFAULT_CHAIN;
            use $crate::store::sql::DbTime;
            let (seq, last_hash): (i64, Vec<u8>) = ::sqlx::query_as(
                "update audit_chain set last_seq = last_seq + 1 where chain_id = $1 \
                 returning last_seq, last_hash",
            )
            .bind(DEFAULT_CHAIN)
            .fetch_one(&mut *conn)
            .await?;
            let prev = $crate::store::hash32(&last_hash, "audit_chain.last_hash")?;
            // Hash exactly what the columns will hold.
            let event = $crate::store::audit::storable(event);
            let event = event.as_ref();
            let row_hash = $crate::audit::row_hash(&prev, DEFAULT_CHAIN, seq, event);
            ::sqlx::query(
                "insert into audit_event (
                    event_id, chain_id, seq, event_time, method, read_only, principal,
                    source_ip, user_agent, request_id, account_id, request_parameters,
                    response_elements, grpc_code, error_reason, error_message,
                    upstream_request_id, upstream_attempts, idempotency_outcome,
                    client_token_sha256, duration_us, prev_hash, row_hash
                ) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                          $16, $17, $18, $19, $20, $21, $22, $23)",
            )
            .bind(event.event_id)
            .bind(DEFAULT_CHAIN)
            .bind(seq)
            .bind(DbTime(event.event_time))
            .bind(&event.method)
            .bind(event.read_only)
            .bind(&event.principal)
            .bind(&event.source_ip)
            .bind(&event.user_agent)
            .bind(&event.request_id)
            .bind(&event.account_id)
            .bind(&event.request_parameters)
            .bind(&event.response_elements)
            .bind(&event.grpc_code)
            .bind(&event.error_reason)
            .bind(&event.error_message)
            .bind(&event.upstream_request_id)
            .bind(i32::try_from(event.upstream_attempts).unwrap_or(i32::MAX))
            .bind(event.idempotency_outcome.as_str())
            .bind(&event.client_token_sha256)
            .bind(i64::try_from(event.duration_us).unwrap_or(i64::MAX))
            .bind(prev.as_slice())
            .bind(row_hash.as_slice())
            .execute(&mut *conn)
            .await?;
            ::sqlx::query("update audit_chain set last_hash = $2 where chain_id = $1")
                .bind(DEFAULT_CHAIN)
                .bind(row_hash.as_slice())
                .execute(&mut *conn)
                .await?;
            Ok(seq)
        }

        /// Streams the events of `chain_id` with `from <= seq <= to`.
        pub(super) fn rows_between<'a>(
            pool: &'a $pool,
            chain_id: &'a str,
            from: i64,
            to: i64,
        ) -> $crate::store::AuditRows<'a> {
            use ::tokio_stream::StreamExt;
            use $crate::store::sql::{AUDIT_COLUMNS, AuditRow};
            Box::pin(
                ::sqlx::query_as::<_, AuditRow>(::sqlx::AssertSqlSafe(format!(
                    "select {AUDIT_COLUMNS} from audit_event \
                     where chain_id = $1 and seq between $2 and $3 order by seq"
                )))
                .bind(chain_id)
                .bind(from)
                .bind(to)
                .fetch(pool)
                .map(|row| {
                    row.map($crate::store::StoredAuditEvent::from)
                        .map_err($crate::store::StoreError::from)
                }),
            )
        }

        /// The chain head: the last `seq` and its `row_hash`.
        pub(super) async fn chain_head(
            pool: &$pool,
            chain_id: &str,
        ) -> Result<$crate::store::ChainPoint, ::sqlx::Error> {
            let (seq, row_hash) =
                ::sqlx::query_as("select last_seq, last_hash from audit_chain where chain_id = $1")
                    .bind(chain_id)
                    .fetch_one(pool)
                    .await?;
            Ok($crate::store::ChainPoint { seq, row_hash })
        }

        /// The retention anchor, once retention has run.
        pub(super) async fn chain_anchor(
            pool: &$pool,
            chain_id: &str,
        ) -> Result<Option<$crate::store::ChainPoint>, ::sqlx::Error> {
            let anchor: Option<(i64, Vec<u8>)> =
                ::sqlx::query_as("select seq, row_hash from audit_anchor where chain_id = $1")
                    .bind(chain_id)
                    .fetch_optional(pool)
                    .await?;
            Ok(anchor.map(|(seq, row_hash)| $crate::store::ChainPoint { seq, row_hash }))
        }

        /// The `row_hash` at `seq`, if that row exists.
        pub(super) async fn row_hash_at(
            pool: &$pool,
            chain_id: &str,
            seq: i64,
        ) -> Result<Option<Vec<u8>>, ::sqlx::Error> {
            ::sqlx::query_scalar(
                "select row_hash from audit_event where chain_id = $1 and seq = $2",
            )
            .bind(chain_id)
            .bind(seq)
            .fetch_optional(pool)
            .await
        }

        /// The `row_hash` at `seq`, read in the caller's transaction.
        #[allow(dead_code, reason = "used by the backends that need it")]
        pub(super) async fn row_hash_in(
            conn: &mut $conn,
            chain_id: &str,
            seq: i64,
        ) -> Result<Option<Vec<u8>>, ::sqlx::Error> {
            ::sqlx::query_scalar(
                "select row_hash from audit_event where chain_id = $1 and seq = $2",
            )
            .bind(chain_id)
            .bind(seq)
            .fetch_optional(conn)
            .await
        }

        /// Stores a signed checkpoint (a second one at the same `to_seq` is
        /// ignored).
        pub(super) async fn insert_checkpoint(
            pool: &$pool,
            checkpoint: &$crate::store::StoredCheckpoint,
        ) -> Result<(), ::sqlx::Error> {
            ::sqlx::query(
                "insert into audit_checkpoint (chain_id, to_seq, head_hash, signature, body) \
                 values ($1, $2, $3, $4, $5) on conflict (chain_id, to_seq) do nothing",
            )
            .bind(&checkpoint.chain_id)
            .bind(checkpoint.to_seq)
            .bind(&checkpoint.head_hash)
            .bind(&checkpoint.signature)
            .bind(&checkpoint.body)
            .execute(pool)
            .await?;
            Ok(())
        }

        /// The body of the newest checkpoint whose last event is older than
        /// `older_than`.
        pub(super) async fn newest_checkpoint_before(
            pool: &$pool,
            chain_id: &str,
            older_than: ::time::OffsetDateTime,
        ) -> Result<Option<::serde_json::Value>, ::sqlx::Error> {
            ::sqlx::query_scalar(
                "select c.body from audit_checkpoint c \
                 join audit_event e on e.chain_id = c.chain_id and e.seq = c.to_seq \
                 where c.chain_id = $1 and e.event_time < $2 \
                 order by c.to_seq desc limit 1",
            )
            .bind(chain_id)
            .bind($crate::store::sql::DbTime(older_than))
            .fetch_optional(pool)
            .await
        }
    };
}
pub(crate) use audit_queries;
