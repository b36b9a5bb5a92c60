//! Client-token dedup records (DESIGN §5): the types of phase 1 claims and
//! phase 3 completions, and [`decide`], the one place that decides what a
//! claim of an existing record means (both backends run it inside their
//! claim transaction, on the row they hold locked).

use std::time::Duration;

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

/// Derives the ClientToken sent to AWS for a use (generation) of a key;
/// phase 1 calls it for a new record (generation 0) or a restarted one.
pub type UpstreamToken = std::sync::Arc<dyn Fn(i32) -> String + Send + Sync>;

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
    /// The canonical request (JSON, see `grpc::completer`), stored so the
    /// completer can re-drive the record without its caller; `None`
    /// leaves it to the caller's retries.
    pub request_body: Option<String>,
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

/// A record the completer took over ([`Store::take_over_stale`]): its
/// driver went away (lease expired) or it was left retryable, and it holds
/// the canonical request, so it can be re-driven without its caller.
///
/// [`Store::take_over_stale`]: crate::store::Store::take_over_stale
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StaleRecord {
    /// The principal of the original caller (part of the dedup key).
    pub principal: String,
    /// The RPC method name (part of the dedup key).
    pub method: String,
    /// Lowercase hex SHA-256 of the client token (part of the dedup key).
    pub client_token_sha256: String,
    /// The acting account of the original request.
    pub acting_account_id: String,
    /// The ClientToken of the record's drives: a re-drive is the same AWS
    /// request, so AWS applies it once.
    pub upstream_client_token: String,
    /// The canonical request, as written at claim time.
    pub request_body: String,
    /// The completer's lease; phase 3 completes only while it holds.
    pub lease_id: Uuid,
}

/// The completer's backlog ([`Store::stale_backlog`]).
///
/// [`Store::stale_backlog`]: crate::store::Store::stale_backlog
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StaleBacklog {
    /// Stale records (lease expired, or retryable and left alone), within
    /// their ttl.
    pub stale: u64,
    /// Of those, the ones without a canonical request (claimed before the
    /// column existed): the completer cannot re-drive them.
    pub without_request: u64,
}

/// A stored record as phase 1 reads it (under the backend's write lock).
#[derive(Debug, Clone)]
pub(crate) struct ExistingRecord {
    pub(crate) request_fingerprint: String,
    pub(crate) upstream_client_token: String,
    pub(crate) generation: i32,
    /// `in_progress`, `completed` or `retryable`.
    pub(crate) state: String,
    pub(crate) locked_until: Option<OffsetDateTime>,
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) grpc_code: Option<i32>,
    pub(crate) error_reason: Option<String>,
    pub(crate) response_message: Option<String>,
    pub(crate) response_details: Option<Vec<u8>>,
    pub(crate) response_body: Option<Vec<u8>>,
}

/// What a claim of an existing record does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Expired and not under a live lease: start afresh as a new AWS
    /// request, with this generation (the next upstream ClientToken).
    Restart {
        /// The record's next generation.
        generation: i32,
    },
    /// Other parameters under the same token.
    Mismatch,
    /// Another request holds a live lease.
    InProgress {
        /// Until the lease ends.
        retry_after: Duration,
    },
    /// Final outcome: replay it.
    Replay(StoredOutcome),
    /// Retryable, or in progress under an expired lease: take it over,
    /// re-sending the stored upstream ClientToken.
    Takeover {
        /// The stored upstream ClientToken.
        upstream_client_token: String,
    },
}

/// Phase 1's decision on an existing record (DESIGN §5), in this order:
/// expired and not under a live lease -> start afresh (next generation);
/// other fingerprint -> mismatch; live lease -> in progress; completed ->
/// replay; retryable or lease expired -> take over. A record still driven
/// under a live lease is never restarted.
pub(crate) fn decide(existing: ExistingRecord, fingerprint: &str, now: OffsetDateTime) -> Decision {
    let live_lease =
        existing.state == "in_progress" && existing.locked_until.is_some_and(|until| until > now);
    if !live_lease && existing.expires_at <= now {
        return Decision::Restart {
            generation: existing.generation.saturating_add(1),
        };
    }
    if existing.request_fingerprint != fingerprint {
        return Decision::Mismatch;
    }
    if live_lease {
        let remaining = existing
            .locked_until
            .map_or(time::Duration::ZERO, |u| u - now);
        return Decision::InProgress {
            retry_after: Duration::try_from(remaining).unwrap_or(Duration::ZERO),
        };
    }
    if existing.state == "completed" {
        return Decision::Replay(StoredOutcome {
            grpc_code: existing.grpc_code.unwrap_or(tonic::Code::Unknown as i32),
            error_reason: existing.error_reason,
            message: existing.response_message,
            details: existing.response_details,
            body: existing.response_body,
        });
    }
    Decision::Takeover {
        upstream_client_token: existing.upstream_client_token,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn record(state: &str, locked_until: Option<OffsetDateTime>) -> ExistingRecord {
        ExistingRecord {
            request_fingerprint: "fp".into(),
            upstream_client_token: "up".into(),
            generation: 2,
            state: state.into(),
            locked_until,
            expires_at: datetime!(2026-11-21 12:00 UTC),
            grpc_code: (state == "completed").then_some(0),
            error_reason: None,
            response_message: None,
            response_details: None,
            response_body: Some(vec![1]),
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-21 11:00 UTC);

    #[test]
    fn a_live_lease_is_in_progress_even_past_expiry() {
        let mut r = record("in_progress", Some(NOW + time::Duration::seconds(5)));
        r.expires_at = NOW - time::Duration::seconds(1);
        assert_eq!(
            decide(r, "fp", NOW),
            Decision::InProgress {
                retry_after: Duration::from_secs(5)
            }
        );
    }

    #[test]
    fn expiry_restarts_with_the_next_generation_before_any_fingerprint_check() {
        let mut r = record("completed", None);
        r.expires_at = NOW;
        assert_eq!(decide(r, "other", NOW), Decision::Restart { generation: 3 });
    }

    #[test]
    fn mismatch_replay_and_takeover() {
        assert_eq!(
            decide(record("completed", None), "other", NOW),
            Decision::Mismatch
        );
        assert!(matches!(
            decide(record("completed", None), "fp", NOW),
            Decision::Replay(StoredOutcome { grpc_code: 0, .. })
        ));
        assert_eq!(
            decide(record("retryable", None), "fp", NOW),
            Decision::Takeover {
                upstream_client_token: "up".into()
            }
        );
        assert_eq!(
            decide(record("in_progress", Some(NOW)), "fp", NOW),
            Decision::Takeover {
                upstream_client_token: "up".into()
            }
        );
    }
}
