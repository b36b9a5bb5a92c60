//! The `account_link_service::store::Store` conformance suite: one set of
//! cases, written once against the trait, run against every backend, so
//! that [`PgStore`] and [`SqliteStore`] are held to the same observable
//! behaviour: client-token claims, leases, takeover, expiry and purge
//! (DESIGN §5), and the hash-chained, append-only audit trail with its
//! checkpoints, retention and ListAuditEvents queries (DESIGN §6).
//!
//! The pattern is quickwit's `metastore_test_suite!`
//! (quickwit-oss/quickwit, `quickwit/quickwit-metastore/src/tests/mod.rs`):
//! every case is a generic `async fn case<S: Store>(store: S)` in
//! [`suite`], and the `store_conformance_suite!` macro stamps out, per
//! backend, a module with one `#[tokio::test]` per case that opens a fresh
//! store and runs it. Test names read `postgres::claim_acquires_then_replays`,
//! `sqlite::claim_acquires_then_replays`, and so on.
//!
//! Each test gets its own empty store: PostgreSQL, a new database
//! `test_<uuid>` on the server of `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432`); SQLite, a new file in a new
//! temporary directory. Time never comes from sleeping: claims and purges
//! are passed explicit `now` values (the stores decide leases and expiry on
//! the `now` they are given), except where a case checks the store's own
//! clock (`now: None`).
//!
//! To add a backend: write `async fn open_<name>() -> <Store>` (a fresh,
//! migrated, empty store) and `async fn raw_<name>(store: &<Store>, sql:
//! &str) -> Result<u64, sqlx::Error>` (runs one statement as the service's
//! own connection would, for the append-only cases), then add
//! `async fn second_<name>(store: &<Store>) -> <Store>` (a second store
//! on the same database, as another replica would open it) and
//! `store_conformance_suite!(<name>, open_<name>, raw_<name>, second_<name>);` at the end
//! of this file. A new case is a `pub(crate) async fn` in [`suite`] plus
//! its name in the macro's list.

use account_link_service::store::{PgStore, SqliteStore};

#[path = "support/test_database.rs"]
mod test_database;

/// Stamps out the suite for one backend: `$open` opens a fresh store,
/// `$raw` runs one raw SQL statement on it (see the module docs).
macro_rules! store_conformance_suite {
    ($backend:ident, $open:path, $raw:path, $second:path) => {
        mod $backend {
            use super::*;

            store_conformance_suite!(@cases $open;
                claim_acquires_then_replays,
                replays_a_stored_error_outcome,
                another_fingerprint_is_a_mismatch_and_changes_nothing,
                a_live_lease_is_in_progress_for_its_remaining_time,
                an_expired_lease_is_taken_over_and_the_old_drive_cannot_complete,
                a_retryable_record_is_taken_over_at_once,
                expired_records_restart_with_the_next_generation,
                purge_deletes_expired_records_but_never_a_live_lease,
                a_takeover_extends_the_record_to_its_lease,
                the_store_clock_decides_when_no_time_is_given,
                audit_events_append_gapless_and_verify,
                audit_events_round_trip_every_field,
                unstorable_values_are_stored_as_hashed,
                list_audit_events_filters,
                list_audit_events_pages_walk_every_event_once,
                concurrent_claims_of_one_key_have_exactly_one_winner,
                concurrent_appends_are_gapless_and_verify,
                a_failed_batch_answers_none_of_its_waiters_ok,
                completions_of_one_key_in_one_batch_keep_the_lease_rule,
                the_completer_takes_over_only_stale_records_that_hold_their_request,
            );
            store_conformance_suite!(@pair_cases $open, $second;
                batches_of_two_stores_interleave_without_a_gap,
                two_stores_completers_take_disjoint_records,
            );
            store_conformance_suite!(@raw_cases $open, $raw;
                audit_event_is_append_only,
                checkpoint_and_retention_keep_the_chain_verifiable,
            );
        }
    };
    (@cases $open:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store = $open().await;
                super::suite::$case(store).await;
            }
        )+
    };
    (@pair_cases $open:path, $second:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store = $open().await;
                let second = $second(&store).await;
                super::suite::$case(store, second).await;
            }
        )+
    };
    (@raw_cases $open:path, $raw:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store = $open().await;
                super::suite::$case(store, $raw).await;
            }
        )+
    };
}

/// The cases, generic over the backend.
mod suite {
    use std::time::Duration;

    use account_link_service::audit::{
        self, GENESIS_HASH, RetentionOutcome, VerifyReport, now_micros,
    };
    use account_link_service::store::{
        AuditEvent, AuditQuery, ChainPoint, ClaimOutcome, DEFAULT_CHAIN, IdempotencyOutcome,
        NewClaim, RecordKey, RecordOutcome, StaleBacklog, Store, StoredAuditEvent, StoredOutcome,
    };
    use serde_json::{Value, json};
    use time::OffsetDateTime;
    use time::macros::datetime;
    use tokio_stream::StreamExt;
    use uuid::Uuid;

    /// The `now` of the claim cases (microsecond precision: what both
    /// backends store).
    const T0: OffsetDateTime = datetime!(2026-11-21 09:00:00.123456 UTC);
    const MICRO: Duration = Duration::from_micros(1);
    const SEC: Duration = Duration::from_secs(1);
    /// The lease of [`claim`].
    const LEASE: Duration = Duration::from_secs(60);
    /// The ttl of [`claim`].
    const DAY: Duration = Duration::from_secs(24 * 3600);

    /// A claim by `alice` of `CreateAccountLinkInvitation` with token hash
    /// `token`, a 60 s lease and a one-day ttl.
    pub(crate) fn claim(token: &str, fingerprint: &str) -> NewClaim {
        NewClaim {
            key: RecordKey {
                principal: "alice".into(),
                method: "CreateAccountLinkInvitation",
                client_token_sha256: token.into(),
            },
            acting_account_id: "111111111111".into(),
            request_fingerprint: fingerprint.into(),
            lease: LEASE,
            ttl: DAY,
            request_body: Some(r#"{"v":1,"target_account_id":"222222222222"}"#.into()),
        }
    }

    /// An audit event of `method` by `principal` at `at`; every optional
    /// field `None`. Cases override fields with `..event(..)`.
    pub(crate) fn event(method: &str, principal: &str, at: OffsetDateTime) -> AuditEvent {
        AuditEvent {
            event_id: Uuid::new_v4(),
            event_time: at,
            method: method.into(),
            read_only: method.starts_with("Get") || method.starts_with("List"),
            principal: principal.into(),
            source_ip: None,
            user_agent: None,
            request_id: Uuid::new_v4().to_string(),
            account_id: None,
            request_parameters: json!({}),
            response_elements: None,
            grpc_code: "OK".into(),
            error_reason: None,
            error_message: None,
            upstream_request_id: None,
            upstream_attempts: 0,
            idempotency_outcome: IdempotencyOutcome::None,
            client_token_sha256: None,
            duration_us: 0,
        }
    }

    /// The upstream ClientToken of each generation, as the service derives
    /// one.
    fn upstream_token(generation: i32) -> String {
        format!("up-{generation}")
    }

    /// The lease of an `Acquired` outcome.
    fn lease(outcome: &ClaimOutcome) -> Uuid {
        match outcome {
            ClaimOutcome::Acquired { lease_id, .. } => *lease_id,
            other => panic!("expected Acquired, got {other:?}"),
        }
    }

    fn acquired(lease_id: Uuid, takeover: bool, generation: i32) -> ClaimOutcome {
        ClaimOutcome::Acquired {
            lease_id,
            takeover,
            upstream_client_token: upstream_token(generation),
        }
    }

    fn success(body: &[u8]) -> StoredOutcome {
        StoredOutcome {
            grpc_code: 0,
            error_reason: None,
            message: None,
            details: None,
            body: Some(body.to_vec()),
        }
    }

    fn in_progress(retry_after: Duration) -> ClaimOutcome {
        ClaimOutcome::InProgress { retry_after }
    }

    async fn claim_at<S: Store>(
        store: &S,
        claim: &NewClaim,
        now: Option<OffsetDateTime>,
    ) -> ClaimOutcome {
        store
            .claim(claim, now, std::sync::Arc::new(upstream_token))
            .await
            .expect("claim")
    }

    async fn complete<S: Store>(
        store: &S,
        claim: &NewClaim,
        lease_id: Uuid,
        outcome: RecordOutcome,
    ) -> bool {
        store
            .complete(
                &claim.key,
                lease_id,
                &outcome,
                &event("CreateAccountLinkInvitation", "alice", now_micros()),
            )
            .await
            .expect("complete")
    }

    async fn purge<S: Store>(store: &S, now: OffsetDateTime) -> u64 {
        store.purge_expired(Some(now)).await.expect("purge")
    }

    pub(crate) async fn verified<S: Store>(store: &S) -> VerifyReport {
        audit::verify(store, DEFAULT_CHAIN, None, None)
            .await
            .expect("verify reads the chain")
            .expect("the chain is intact")
    }

    pub(crate) async fn rows<S: Store>(store: &S) -> Vec<StoredAuditEvent> {
        store
            .audit_rows_between(DEFAULT_CHAIN, 1, i64::MAX)
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect("read rows")
    }

    async fn seqs<S: Store>(store: &S, query: &AuditQuery) -> Vec<i64> {
        store
            .list_audit_events(query)
            .await
            .expect("list")
            .iter()
            .map(|e| e.seq)
            .collect()
    }

    // ----- client-token claims (DESIGN §5) -----

    pub(crate) async fn claim_acquires_then_replays<S: Store>(store: S) {
        let c = claim("k1", "f");
        let first = claim_at(&store, &c, Some(T0)).await;
        let lease_id = lease(&first);
        assert_eq!(first, acquired(lease_id, false, 0));
        assert_ne!(lease_id, Uuid::nil());

        // Every byte value, including NUL and 0xff, survives.
        let outcome = success(&(0..=255).collect::<Vec<u8>>());
        assert!(
            complete(
                &store,
                &c,
                lease_id,
                RecordOutcome::Completed(outcome.clone())
            )
            .await
        );
        // Phase 3 appended its audit event in the same transaction.
        assert_eq!(store.chain_head(DEFAULT_CHAIN).await.unwrap().seq, 1);

        for at in [T0 + SEC, T0 + DAY - MICRO] {
            assert_eq!(
                claim_at(&store, &c, Some(at)).await,
                ClaimOutcome::Replay(outcome.clone()),
                "replay at {at}"
            );
        }
        // The lease is spent: completing again changes nothing.
        assert!(
            !complete(
                &store,
                &c,
                lease_id,
                RecordOutcome::Completed(success(b"x"))
            )
            .await
        );
        assert!(!complete(&store, &c, lease_id, RecordOutcome::Retryable).await);
        assert_eq!(
            claim_at(&store, &c, Some(T0 + 2 * SEC)).await,
            ClaimOutcome::Replay(outcome)
        );

        // The key is (principal, method, token): another principal or method
        // with the same token is another record.
        let mut other_principal = claim("k1", "f");
        other_principal.key.principal = "bob".into();
        let mut other_method = claim("k1", "f");
        other_method.key.method = "DeleteAccountLink";
        for other in [other_principal, other_method] {
            let got = claim_at(&store, &other, Some(T0 + SEC)).await;
            assert_eq!(got, acquired(lease(&got), false, 0), "{:?}", other.key);
        }
    }

    pub(crate) async fn replays_a_stored_error_outcome<S: Store>(store: S) {
        let error = StoredOutcome {
            grpc_code: 9, // FAILED_PRECONDITION
            error_reason: Some("ACCOUNT_LINK_STATE".into()),
            message: Some("the link is not pending — état «refusé»".into()),
            details: Some(vec![0x08, 0x09, 0x12, 0x00, 0xff]),
            body: None,
        };
        let c = claim("k-err", "f");
        let l = lease(&claim_at(&store, &c, Some(T0)).await);
        assert!(complete(&store, &c, l, RecordOutcome::Completed(error.clone())).await);
        assert_eq!(
            claim_at(&store, &c, Some(T0 + SEC)).await,
            ClaimOutcome::Replay(error)
        );

        // Empty (not absent) message and details stay empty, not NULL.
        let empty = StoredOutcome {
            grpc_code: 3,
            error_reason: Some(String::new()),
            message: Some(String::new()),
            details: Some(Vec::new()),
            body: None,
        };
        let c = claim("k-empty", "f");
        let l = lease(&claim_at(&store, &c, Some(T0)).await);
        assert!(complete(&store, &c, l, RecordOutcome::Completed(empty.clone())).await);
        assert_eq!(
            claim_at(&store, &c, Some(T0 + SEC)).await,
            ClaimOutcome::Replay(empty)
        );
    }

    pub(crate) async fn another_fingerprint_is_a_mismatch_and_changes_nothing<S: Store>(store: S) {
        // While in progress: the fingerprint is checked before the lease.
        let c = claim("k-mm", "f");
        let l = lease(&claim_at(&store, &c, Some(T0)).await);
        assert_eq!(
            claim_at(&store, &claim("k-mm", "g"), Some(T0 + SEC)).await,
            ClaimOutcome::Mismatch
        );
        assert_eq!(
            claim_at(&store, &c, Some(T0 + 2 * SEC)).await,
            in_progress(LEASE - 2 * SEC),
            "the lease is unchanged"
        );

        // Once completed: still a mismatch, and the original still replays.
        let outcome = success(b"link");
        assert!(complete(&store, &c, l, RecordOutcome::Completed(outcome.clone())).await);
        assert_eq!(
            claim_at(&store, &claim("k-mm", "g"), Some(T0 + 3 * SEC)).await,
            ClaimOutcome::Mismatch
        );
        assert_eq!(
            claim_at(&store, &c, Some(T0 + 4 * SEC)).await,
            ClaimOutcome::Replay(outcome)
        );
    }

    pub(crate) async fn a_live_lease_is_in_progress_for_its_remaining_time<S: Store>(store: S) {
        let c = claim("k-lease", "f");
        let first = claim_at(&store, &c, Some(T0)).await;
        assert_eq!(first, acquired(lease(&first), false, 0));
        for (at, remaining) in [
            (T0, LEASE),
            (T0 + 10 * SEC, 50 * SEC),
            (T0 + LEASE - MICRO, MICRO),
        ] {
            assert_eq!(
                claim_at(&store, &c, Some(at)).await,
                in_progress(remaining),
                "at T0 + {:?}",
                at - T0
            );
        }
    }

    pub(crate) async fn an_expired_lease_is_taken_over_and_the_old_drive_cannot_complete<
        S: Store,
    >(
        store: S,
    ) {
        let c = claim("k-take", "f");
        let old = lease(&claim_at(&store, &c, Some(T0)).await);
        assert_eq!(
            claim_at(&store, &c, Some(T0 + LEASE - MICRO)).await,
            in_progress(MICRO)
        );
        // The lease ends at locked_until: taken over, re-sending the stored
        // upstream token.
        let taken = claim_at(&store, &c, Some(T0 + LEASE)).await;
        let new = lease(&taken);
        assert_eq!(taken, acquired(new, true, 0));
        assert_ne!(new, old);

        // The old drive's late completion is refused and writes nothing:
        // the record is still in progress under the new lease.
        assert!(!complete(&store, &c, old, RecordOutcome::Completed(success(b"old"))).await);
        assert!(!complete(&store, &c, old, RecordOutcome::Retryable).await);
        assert_eq!(
            claim_at(&store, &c, Some(T0 + LEASE + SEC)).await,
            in_progress(LEASE - SEC)
        );
        // The new drive's completion lands.
        let outcome = success(b"new");
        assert!(complete(&store, &c, new, RecordOutcome::Completed(outcome.clone())).await);
        assert_eq!(
            claim_at(&store, &c, Some(T0 + LEASE + 2 * SEC)).await,
            ClaimOutcome::Replay(outcome)
        );
        // Every completion, held or not, appended its audit event.
        let report = verified(&store).await;
        assert_eq!((report.count, report.last_seq), (3, 3));
    }

    pub(crate) async fn a_retryable_record_is_taken_over_at_once<S: Store>(store: S) {
        let c = claim("k-retry", "f");
        let first = lease(&claim_at(&store, &c, Some(T0)).await);
        assert!(complete(&store, &c, first, RecordOutcome::Retryable).await);
        // No waiting for the lease: a retryable record is re-driven at once.
        let again = claim_at(&store, &c, Some(T0 + SEC)).await;
        let second = lease(&again);
        assert_eq!(again, acquired(second, true, 0));
        // Now in progress under the new lease; a mismatch is still detected.
        assert_eq!(
            claim_at(&store, &claim("k-retry", "other"), Some(T0)).await,
            ClaimOutcome::Mismatch
        );
        assert_eq!(
            claim_at(&store, &c, Some(T0 + 2 * SEC)).await,
            in_progress(LEASE - SEC)
        );
        // Retryable again, then completed by the third drive.
        assert!(complete(&store, &c, second, RecordOutcome::Retryable).await);
        let third = claim_at(&store, &c, Some(T0 + 3 * SEC)).await;
        assert_eq!(third, acquired(lease(&third), true, 0));
        let outcome = success(b"done");
        assert!(
            complete(
                &store,
                &c,
                lease(&third),
                RecordOutcome::Completed(outcome.clone())
            )
            .await
        );
        assert_eq!(
            claim_at(&store, &c, Some(T0 + 4 * SEC)).await,
            ClaimOutcome::Replay(outcome)
        );
    }

    pub(crate) async fn expired_records_restart_with_the_next_generation<S: Store>(store: S) {
        let c = claim("k-exp", "f");
        let l = lease(&claim_at(&store, &c, Some(T0)).await);
        assert!(complete(&store, &c, l, RecordOutcome::Completed(success(b"1"))).await);
        // Before expiry: a replay; at expiry (expires_at <= now): a new
        // upstream request with the next generation's token, even with other
        // parameters (expiry is decided before the fingerprint).
        assert_eq!(
            claim_at(&store, &c, Some(T0 + DAY - MICRO)).await,
            ClaimOutcome::Replay(success(b"1"))
        );
        let g = claim("k-exp", "g");
        let restarted = claim_at(&store, &g, Some(T0 + DAY)).await;
        let l = lease(&restarted);
        assert_eq!(restarted, acquired(l, false, 1));
        // The restart is a new record: the new fingerprint, lease and ttl.
        assert_eq!(
            claim_at(&store, &c, Some(T0 + DAY + SEC)).await,
            ClaimOutcome::Mismatch
        );
        assert_eq!(
            claim_at(&store, &g, Some(T0 + DAY + SEC)).await,
            in_progress(LEASE - SEC)
        );
        assert!(complete(&store, &g, l, RecordOutcome::Completed(success(b"2"))).await);
        assert_eq!(
            claim_at(&store, &g, Some(T0 + 2 * DAY - MICRO)).await,
            ClaimOutcome::Replay(success(b"2"))
        );
        // The generation is stored: the next expiry restarts at 2.
        let again = claim_at(&store, &g, Some(T0 + 2 * DAY)).await;
        assert_eq!(again, acquired(lease(&again), false, 2));
    }

    pub(crate) async fn purge_deletes_expired_records_but_never_a_live_lease<S: Store>(store: S) {
        // Completed and retryable records expiring at T0 + DAY.
        let done = claim("k-done", "f");
        let l = lease(&claim_at(&store, &done, Some(T0)).await);
        assert!(complete(&store, &done, l, RecordOutcome::Completed(success(b"d"))).await);
        let retry = claim("k-retryable", "f");
        let l = lease(&claim_at(&store, &retry, Some(T0)).await);
        assert!(complete(&store, &retry, l, RecordOutcome::Retryable).await);
        // Expiring at T0 + DAY too, but leased until T0 + DAY + 60 s.
        let mut live = claim("k-live", "f");
        live.lease = 2 * LEASE;
        live.ttl = LEASE;
        let got = claim_at(&store, &live, Some(T0 + DAY - LEASE)).await;
        assert_eq!(got, acquired(lease(&got), false, 0));
        // Expiring an hour later.
        let later = claim("k-later", "f");
        let l = lease(&claim_at(&store, &later, Some(T0 + 3600 * SEC)).await);
        assert!(complete(&store, &later, l, RecordOutcome::Completed(success(b"l"))).await);

        assert_eq!(purge(&store, T0 + DAY - MICRO).await, 0);
        // k-done and k-retryable; k-live is past its expiry but under a
        // live lease.
        assert_eq!(purge(&store, T0 + DAY).await, 2);
        assert_eq!(purge(&store, T0 + DAY).await, 0);
        // A purged record is gone: the next claim is a first use
        // (generation 0), not a restart of the expired record (generation 1).
        let fresh = claim_at(&store, &done, Some(T0 + DAY)).await;
        assert_eq!(fresh, acquired(lease(&fresh), false, 0));
        let fresh = claim_at(&store, &claim("k-retryable", "other"), Some(T0 + DAY)).await;
        assert_eq!(fresh, acquired(lease(&fresh), false, 0));
        // The live lease was kept and still holds.
        assert_eq!(
            claim_at(&store, &live, Some(T0 + DAY + 30 * SEC)).await,
            in_progress(30 * SEC)
        );
        assert_eq!(purge(&store, T0 + DAY + LEASE - MICRO).await, 0);
        // Its lease over, it goes.
        assert_eq!(purge(&store, T0 + DAY + LEASE).await, 1);
        let fresh = claim_at(&store, &live, Some(T0 + DAY + LEASE)).await;
        assert_eq!(fresh, acquired(lease(&fresh), false, 0));
        assert_eq!(
            claim_at(&store, &later, Some(T0 + DAY + 3600 * SEC - MICRO)).await,
            ClaimOutcome::Replay(success(b"l"))
        );
        // k-later, and k-live's second use (its 120 s lease over).
        assert_eq!(purge(&store, T0 + DAY + 3600 * SEC).await, 2);
    }

    pub(crate) async fn a_takeover_extends_the_record_to_its_lease<S: Store>(store: S) {
        let c = claim("k-ext", "f");
        let l = lease(&claim_at(&store, &c, Some(T0)).await);
        assert!(complete(&store, &c, l, RecordOutcome::Retryable).await);
        // Re-driven just before expiry: the record now lives until the end
        // of the new lease, late + 60 s = T0 + DAY + 55 s.
        let late = T0 + DAY - 5 * SEC;
        let taken = claim_at(&store, &c, Some(late)).await;
        let l = lease(&taken);
        assert_eq!(taken, acquired(l, true, 0));
        // Past the original expiry, inside the lease: in progress, not a
        // fresh start, and not purged.
        assert_eq!(
            claim_at(&store, &c, Some(T0 + DAY + SEC)).await,
            in_progress(54 * SEC)
        );
        assert_eq!(purge(&store, T0 + DAY + SEC).await, 0);
        // Retryable again after the original expiry: still the same record
        // (a takeover of generation 0), because expires_at was extended.
        assert!(complete(&store, &c, l, RecordOutcome::Retryable).await);
        assert_eq!(purge(&store, late + LEASE - MICRO).await, 0);
        let taken = claim_at(&store, &c, Some(T0 + DAY + 10 * SEC)).await;
        let l = lease(&taken);
        assert_eq!(taken, acquired(l, true, 0));
        // That takeover extended it to T0 + DAY + 70 s.
        assert!(complete(&store, &c, l, RecordOutcome::Retryable).await);
        let g = claim("k-ext", "g");
        assert_eq!(
            claim_at(&store, &g, Some(T0 + DAY + 70 * SEC - MICRO)).await,
            ClaimOutcome::Mismatch
        );
        // After the lease and the expiry: a new generation, a new upstream
        // request.
        let fresh = claim_at(&store, &g, Some(T0 + DAY + 70 * SEC)).await;
        assert_eq!(fresh, acquired(lease(&fresh), false, 1));
    }

    pub(crate) async fn the_store_clock_decides_when_no_time_is_given<S: Store>(store: S) {
        let c = claim("k-clock", "f");
        let first = claim_at(&store, &c, None).await;
        let l = lease(&first);
        assert_eq!(first, acquired(l, false, 0));
        // The store's clock (PostgreSQL's, or the host's for SQLite) is
        // inside the 60 s lease.
        match claim_at(&store, &c, None).await {
            ClaimOutcome::InProgress { retry_after } => {
                assert!(
                    retry_after > Duration::ZERO && retry_after <= LEASE,
                    "{retry_after:?}"
                );
            }
            other => panic!("expected InProgress, got {other:?}"),
        }
        let outcome = success(b"clock");
        assert!(complete(&store, &c, l, RecordOutcome::Completed(outcome.clone())).await);
        assert_eq!(
            claim_at(&store, &c, None).await,
            ClaimOutcome::Replay(outcome)
        );
        // Nothing expired a day before now.
        assert_eq!(store.purge_expired(None).await.unwrap(), 0);
    }

    // ----- the audit trail (DESIGN §6) -----

    pub(crate) async fn audit_events_append_gapless_and_verify<S: Store>(store: S) {
        // An empty chain.
        assert_eq!(
            store.chain_head(DEFAULT_CHAIN).await.unwrap(),
            ChainPoint {
                seq: 0,
                row_hash: GENESIS_HASH.to_vec()
            }
        );
        assert_eq!(store.chain_anchor(DEFAULT_CHAIN).await.unwrap(), None);
        assert_eq!(
            verified(&store).await,
            VerifyReport {
                chain_id: DEFAULT_CHAIN.into(),
                count: 0,
                first_seq: 0,
                last_seq: 0,
                head: GENESIS_HASH,
            }
        );

        const N: i64 = 7;
        let t = now_micros();
        let mut appended = Vec::new();
        for i in 0..N {
            let e = event(
                "GetAccountLink",
                "alice",
                t + MICRO * u32::try_from(i).unwrap(),
            );
            assert_eq!(store.append_audit_event(&e).await.unwrap(), i + 1);
            appended.push(e);
        }

        let rows = rows(&store).await;
        assert_eq!(
            rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (1..=N).collect::<Vec<_>>()
        );
        let mut prev = GENESIS_HASH.to_vec();
        for (row, e) in rows.iter().zip(&appended) {
            assert_eq!(row.chain_id, DEFAULT_CHAIN);
            assert_eq!(row.event.event_id, e.event_id, "seq {}", row.seq);
            assert_eq!(row.prev_hash, prev, "prev_hash of seq {}", row.seq);
            let prev32: [u8; 32] = prev.as_slice().try_into().unwrap();
            assert_eq!(
                row.row_hash,
                audit::row_hash(&prev32, DEFAULT_CHAIN, row.seq, e).to_vec(),
                "row_hash of seq {}",
                row.seq
            );
            prev.clone_from(&row.row_hash);
        }
        let last = rows.last().unwrap().row_hash.clone();
        assert_eq!(
            store.chain_head(DEFAULT_CHAIN).await.unwrap(),
            ChainPoint {
                seq: N,
                row_hash: last.clone()
            }
        );
        assert_eq!(
            verified(&store).await,
            VerifyReport {
                chain_id: DEFAULT_CHAIN.into(),
                count: u64::try_from(N).unwrap(),
                first_seq: 1,
                last_seq: N,
                head: last.as_slice().try_into().unwrap(),
            }
        );
        // A sub-range links to the row before it.
        let part = audit::verify(&store, DEFAULT_CHAIN, Some(3), Some(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((part.count, part.first_seq, part.last_seq), (3, 3, 5));
        assert_eq!(
            store.row_hash_at(DEFAULT_CHAIN, 3).await.unwrap(),
            Some(rows[2].row_hash.clone())
        );
        assert_eq!(store.row_hash_at(DEFAULT_CHAIN, N + 1).await.unwrap(), None);
        assert_eq!(
            store
                .audit_rows_between(DEFAULT_CHAIN, 2, 4)
                .map(|r| r.unwrap().seq)
                .collect::<Vec<_>>()
                .await,
            [2, 3, 4]
        );
        // The time range is half-open: [t + 1 µs, t + 4 µs) holds seqs 2..=4.
        assert_eq!(
            store
                .audit_rows_in_time_range(DEFAULT_CHAIN, t + MICRO, t + 4 * MICRO)
                .map(|r| r.unwrap().seq)
                .collect::<Vec<_>>()
                .await,
            [2, 3, 4]
        );
        assert_eq!(
            store
                .audit_rows_in_time_range(DEFAULT_CHAIN, t + MICRO, t + MICRO)
                .map(|r| r.unwrap().seq)
                .collect::<Vec<_>>()
                .await,
            Vec::<i64>::new()
        );
        // Another chain does not exist.
        assert!(store.chain_head("other").await.is_err());
    }

    pub(crate) async fn audit_events_round_trip_every_field<S: Store>(store: S) {
        let bare = event("ListAccountLinks", "anonymous", now_micros());
        let full = AuditEvent {
            event_id: Uuid::new_v4(),
            event_time: datetime!(2026-11-21 08:41:58.892672 UTC),
            method: "AcceptAccountLinkInvitation".into(),
            read_only: false,
            principal: "arn:aws:iam::111111111111:role/Ops \"quoted\" ✓".into(),
            source_ip: Some("[2001:db8::7]:50432".into()),
            user_agent: Some("grpc-rust/0.14 (é; \\back\\slash)".into()),
            request_id: "req-🦀-1".into(),
            account_id: Some("111111111111".into()),
            request_parameters: json!({
                "link_id": "link-0123456789abcdef",
                "nested": {"list": [1, -2, 3.5, true, null, "ü"], "empty": {}},
                "big": 9_007_199_254_740_993_u64,
                "z": "last", "a": "first",
            }),
            response_elements: Some(json!({
                "AccountLink": {
                    "AccountLinkId": "link-0123456789abcdef",
                    "AccountLinkStatus": "LINKED",
                }
            })),
            grpc_code: "FAILED_PRECONDITION".into(),
            error_reason: Some("ACCOUNT_LINK_STATE".into()),
            error_message: Some("multi\nline\ttext".into()),
            upstream_request_id: Some("5f0e7a2c-0000-4000-8000-000000000001".into()),
            upstream_attempts: 3,
            idempotency_outcome: IdempotencyOutcome::Replayed,
            client_token_sha256: Some("ab".repeat(32)),
            duration_us: 123_456,
        };
        // Boundaries of the columns' ranges and of time.
        let extremes = AuditEvent {
            event_time: datetime!(1969-12-31 23:59:59.999999 UTC),
            upstream_attempts: u32::try_from(i32::MAX).unwrap(),
            duration_us: u64::try_from(i64::MAX).unwrap(),
            request_parameters: json!([]),
            response_elements: Some(json!({})),
            idempotency_outcome: IdempotencyOutcome::Mismatch,
            ..event("CreateAccountLinkInvitation", "", now_micros())
        };
        // A time with another offset is the same instant.
        let offset = AuditEvent {
            event_time: datetime!(2026-11-21 14:11:58.000001 +05:30),
            idempotency_outcome: IdempotencyOutcome::InProgress,
            ..event("DeleteAccountLink", "bob", now_micros())
        };
        let new = AuditEvent {
            idempotency_outcome: IdempotencyOutcome::New,
            ..event("RejectAccountLinkInvitation", "carol", now_micros())
        };
        let sent = [bare, full, extremes, offset, new];
        for (i, e) in sent.iter().enumerate() {
            assert_eq!(
                store.append_audit_event(e).await.unwrap(),
                i64::try_from(i).unwrap() + 1
            );
        }

        let listed = store
            .list_audit_events(&AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let streamed = rows(&store).await;
        assert_eq!(streamed.len(), sent.len());
        assert_eq!(listed.len(), sent.len());
        for (i, want) in sent.iter().enumerate() {
            assert_same_event(&streamed[i].event, want, "audit_rows_between");
            assert_same_event(&listed[sent.len() - 1 - i].event, want, "list_audit_events");
        }
        // What was stored hashes as what was sent.
        verified(&store).await;
    }

    fn assert_same_event(got: &AuditEvent, want: &AuditEvent, via: &str) {
        macro_rules! same {
            ($($field:ident),+) => {
                $(assert_eq!(
                    got.$field, want.$field,
                    "{via}: {} of {}", stringify!($field), want.event_id
                );)+
            };
        }
        same!(
            event_id,
            event_time,
            method,
            read_only,
            principal,
            source_ip,
            user_agent,
            request_id,
            account_id,
            request_parameters,
            response_elements,
            grpc_code,
            error_reason,
            error_message,
            upstream_request_id,
            upstream_attempts,
            idempotency_outcome,
            client_token_sha256,
            duration_us
        );
        assert_eq!(
            audit::format_event_time(got.event_time),
            audit::format_event_time(want.event_time),
            "{via}: event_time to the microsecond"
        );
    }

    /// Values a column cannot hold as they are (NUL, which PostgreSQL
    /// refuses in `text` and `jsonb`; counters past the column's range) are
    /// stored as `store::audit::storable` makes them, and hashed as stored:
    /// the append succeeds and the chain verifies.
    pub(crate) async fn unstorable_values_are_stored_as_hashed<S: Store>(store: S) {
        let odd = AuditEvent {
            user_agent: Some("agent\0x".into()),
            error_message: Some("bad \0 input".into()),
            request_parameters: json!({"link_id": "link-\0", "nested": ["a\0", {"k\0": 1}]}),
            response_elements: Some(json!({"AccountLink": {"AccountLinkId": "\0"}})),
            upstream_attempts: u32::MAX,
            duration_us: u64::MAX,
            ..event("GetAccountLink", "carol\0", now_micros())
        };
        store.append_audit_event(&odd).await.expect("appended");
        let report = verified(&store).await;
        assert_eq!(report.count, 1);
        let stored = rows(&store).await.remove(0).event;
        assert_eq!(stored.principal, "carol\u{FFFD}");
        assert_eq!(stored.user_agent.as_deref(), Some("agent\u{FFFD}x"));
        assert_eq!(stored.error_message.as_deref(), Some("bad \u{FFFD} input"));
        assert_eq!(
            stored.request_parameters,
            json!({"link_id": "link-\u{FFFD}", "nested": ["a\u{FFFD}", {"k\u{FFFD}": 1}]})
        );
        assert_eq!(
            stored.response_elements,
            Some(json!({"AccountLink": {"AccountLinkId": "\u{FFFD}"}}))
        );
        assert_eq!(stored.upstream_attempts, i32::MAX.unsigned_abs());
        assert_eq!(stored.duration_us, i64::MAX.unsigned_abs());
    }

    pub(crate) async fn audit_event_is_append_only<S: Store>(
        store: S,
        raw: impl AsyncFn(&S, &str) -> Result<u64, sqlx::Error>,
    ) {
        for i in 0..3 {
            store
                .append_audit_event(&event("GetAccountLink", "alice", now_micros() + i * SEC))
                .await
                .unwrap();
        }
        let before = verified(&store).await;
        for sql in [
            "update audit_event set principal = 'mallory'",
            "update audit_event set principal = 'mallory' where seq = 2",
            "delete from audit_event",
            "delete from audit_event where seq = 3",
            "delete from audit_event where seq <= 1",
            // An upsert over an existing row is an update.
            "insert into audit_event select * from audit_event where seq = 2 \
             on conflict (chain_id, seq) do update set principal = 'mallory'",
        ] {
            let err = raw(&store, sql).await.expect_err(sql);
            assert!(
                matches!(err, sqlx::Error::Database(_)),
                "{sql}: refused by the database, got {err:?}"
            );
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
        // Nor can the chain's head go from under its events: a trigger
        // refuses it on both stores (migrations 20261207000001), before any
        // foreign key that still points at the row would.
        let sql = "delete from audit_chain";
        let err = raw(&store, sql).await.expect_err(sql);
        assert!(
            err.to_string().contains("audit_chain holds the heads"),
            "{sql}: {err}"
        );
        assert_eq!(verified(&store).await, before, "nothing changed");
        assert_eq!(
            rows(&store)
                .await
                .iter()
                .map(|r| r.event.principal.as_str())
                .collect::<Vec<_>>(),
            ["alice"; 3]
        );
        // Appending still works.
        assert_eq!(
            store
                .append_audit_event(&event("GetAccountLink", "alice", now_micros()))
                .await
                .unwrap(),
            4
        );
    }

    pub(crate) async fn checkpoint_and_retention_keep_the_chain_verifiable<S: Store>(
        store: S,
        raw: impl AsyncFn(&S, &str) -> Result<u64, sqlx::Error>,
    ) {
        let signing = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let verifying = signing.verifying_key();
        let future = OffsetDateTime::now_utc() + DAY;
        let past = OffsetDateTime::now_utc() - DAY;
        for _ in 0..6 {
            store
                .append_audit_event(&event("GetAccountLink", "alice", now_micros()))
                .await
                .unwrap();
        }
        // No checkpoint yet: nothing may be deleted.
        assert_eq!(
            audit::retain(&store, DEFAULT_CHAIN, &verifying, future)
                .await
                .unwrap(),
            Ok(None)
        );

        let cp = audit::create_checkpoint(&store, DEFAULT_CHAIN, &signing, None)
            .await
            .unwrap()
            .expect("an intact chain is signed");
        let hash6 = store.row_hash_at(DEFAULT_CHAIN, 6).await.unwrap().unwrap();
        assert_eq!((cp.from_seq, cp.to_seq), (1, 6));
        assert_eq!(cp.head_hash, hex::encode(&hash6));
        assert_eq!(
            audit::verify_checkpoint(&store, &cp, &verifying)
                .await
                .unwrap()
                .map(|r| (r.count, r.last_seq)),
            Ok((6, 6))
        );
        // Retention's raw DELETE is still refused outside retain_through,
        // even of the checkpointed prefix.
        let err = raw(&store, "delete from audit_event where seq <= 6")
            .await
            .expect_err("delete of a checkpointed prefix");
        assert!(err.to_string().contains("append-only"), "{err}");

        store
            .append_audit_event(&event("GetAccountLink", "bob", now_micros()))
            .await
            .unwrap(); // seq 7, after the checkpoint
        // A cut-off before every event deletes nothing.
        assert_eq!(
            audit::retain(&store, DEFAULT_CHAIN, &verifying, past)
                .await
                .unwrap(),
            Ok(None)
        );
        // Another signer's key is refused.
        let stranger = ed25519_dalek::SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(
            audit::retain(&store, DEFAULT_CHAIN, &stranger, future)
                .await
                .is_err()
        );
        assert_eq!(verified(&store).await.count, 7);

        assert_eq!(
            audit::retain(&store, DEFAULT_CHAIN, &verifying, future)
                .await
                .unwrap(),
            Ok(Some(RetentionOutcome {
                to_seq: 6,
                deleted: 6
            }))
        );
        let left = rows(&store).await;
        assert_eq!(
            left.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [7, 8],
            "seq 7 kept, seq 8 records the deletion"
        );
        let record = &left[1].event;
        assert_eq!(
            (record.method.as_str(), record.principal.as_str()),
            ("AuditRetention", "system:retention")
        );
        let response = record.response_elements.as_ref().unwrap();
        assert_eq!(response["deleted_events"], 6);
        assert_eq!(response["through_seq"], 6);
        assert_eq!(response["checkpoint_signature"], cp.signature.as_str());
        assert_eq!(left[0].prev_hash, hash6, "seq 7 links to the anchor");
        assert_eq!(
            store.chain_anchor(DEFAULT_CHAIN).await.unwrap(),
            Some(ChainPoint {
                seq: 6,
                row_hash: hash6
            })
        );
        // The chain still verifies, from the anchor.
        let report = verified(&store).await;
        assert_eq!((report.first_seq, report.last_seq, report.count), (7, 8, 2));
        // Deleting outside retention is still refused.
        let err = raw(&store, "delete from audit_event where seq = 7")
            .await
            .expect_err("delete of seq 7");
        assert!(err.to_string().contains("append-only"), "{err}");
        // The same checkpoint cannot delete again.
        assert_eq!(
            audit::retain(&store, DEFAULT_CHAIN, &verifying, future)
                .await
                .unwrap(),
            Ok(None)
        );

        // A chained checkpoint over the rest, and a second retention run
        // that moves the anchor.
        let next = audit::create_checkpoint(&store, DEFAULT_CHAIN, &signing, Some(&cp))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((next.from_seq, next.to_seq), (7, 8));
        assert_eq!(
            next.previous_signature.as_deref(),
            Some(cp.signature.as_str())
        );
        assert_eq!(
            audit::retain(&store, DEFAULT_CHAIN, &verifying, future)
                .await
                .unwrap(),
            Ok(Some(RetentionOutcome {
                to_seq: 8,
                deleted: 2
            }))
        );
        assert_eq!(
            store
                .chain_anchor(DEFAULT_CHAIN)
                .await
                .unwrap()
                .unwrap()
                .seq,
            8
        );
        let report = verified(&store).await;
        assert_eq!((report.first_seq, report.last_seq, report.count), (9, 9, 1));
        // A range from before the anchor starts at the anchor.
        assert_eq!(
            audit::verify(&store, DEFAULT_CHAIN, Some(1), None)
                .await
                .unwrap(),
            Ok(report)
        );
    }

    // ----- ListAuditEvents (filters and paging) -----

    /// Hour-aligned, so the time filters cross hour boundaries (which
    /// PostgreSQL's `audit_event_hour` probes work in).
    const B: OffsetDateTime = datetime!(2026-11-21 08:00:00 UTC);
    const ACCT_A: &str = "111111111111";
    const ACCT_B: &str = "222222222222";
    const MIN: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    /// A listing event: time after `B`, method, principal, account,
    /// request_parameters, response_elements, grpc_code, outcome.
    type Row<'a> = (
        Duration,
        &'a str,
        &'a str,
        Option<&'a str>,
        Value,
        Option<Value>,
        &'a str,
        IdempotencyOutcome,
    );

    /// Appends the 11 events of the listing cases; returns their ids by seq.
    async fn listing_fixture<S: Store>(store: &S) -> Vec<Uuid> {
        use IdempotencyOutcome as O;
        let link = |id: &str| json!({ "link_id": id });
        let linked = |id: &str| Some(json!({ "AccountLink": { "AccountLinkId": id } }));
        #[rustfmt::skip]
        let table: [Row<'_>; 11] = [
            /* 1 */ (Duration::ZERO, "CreateAccountLinkInvitation", "alice", Some(ACCT_A), json!({"target_account_id": ACCT_B}), linked("link-1"), "OK", O::New),
            /* 2 */ (20 * MIN, "GetAccountLink", "bob", Some(ACCT_A), link("link-1"), None, "OK", O::None),
            /* 3 */ (40 * MIN, "AcceptAccountLinkInvitation", "carol", Some(ACCT_B), link("link-2"), linked("link-2"), "OK", O::New),
            /* 4 */ (HOUR, "CreateAccountLinkInvitation", "dave", Some(ACCT_A), json!({"target_account_id": "bad"}), None, "INVALID_ARGUMENT", O::None),
            /* 5 */ (2 * HOUR, "CreateAccountLinkInvitation", "alice", Some(ACCT_A), json!({}), linked("link-3"), "OK", O::Replayed),
            // Older than seq 5, in the hour before: event_time and seq only
            // roughly agree.
            /* 6 */ (2 * HOUR - MICRO, "RejectAccountLinkInvitation", "bob", Some(ACCT_B), link("link-1"), None, "FAILED_PRECONDITION", O::New),
            /* 7 */ (2 * HOUR + 30 * MIN, "ListAccountLinks", "anonymous", None, json!({}), None, "UNAUTHENTICATED", O::None),
            /* 8 */ (3 * HOUR, "DeleteAccountLink", "carol", Some(ACCT_B), link("link-2"), linked("link-2"), "OK", O::New),
            /* 9 */ (3 * HOUR + MICRO, "CreateAccountLinkInvitation", "alice", Some(ACCT_A), json!({}), None, "ABORTED", O::InProgress),
            /* 10 */ (3 * HOUR + 2 * MICRO, "CreateAccountLinkInvitation", "alice", Some(ACCT_A), json!({}), None, "INVALID_ARGUMENT", O::Mismatch),
            // A link id elsewhere in the JSON is not the event's link id.
            /* 11 */ (3 * HOUR + 3 * MICRO, "GetAccountLink", "bob", Some(ACCT_A), json!({"filter": {"link_id": "link-1"}}), Some(json!({"link_id": "link-1", "AccountLinkId": "link-1"})), "OK", O::None),
        ];
        let mut ids = Vec::new();
        for (i, (offset, method, principal, account, req, resp, code, outcome)) in
            table.into_iter().enumerate()
        {
            let e = AuditEvent {
                account_id: account.map(str::to_owned),
                request_parameters: req,
                response_elements: resp,
                grpc_code: code.into(),
                idempotency_outcome: outcome,
                ..event(method, principal, B + offset)
            };
            let seq = store.append_audit_event(&e).await.unwrap();
            assert_eq!(seq, i64::try_from(i).unwrap() + 1);
            ids.push(e.event_id);
        }
        ids
    }

    fn q() -> AuditQuery {
        AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        }
    }

    pub(crate) async fn list_audit_events_filters<S: Store>(store: S) {
        let ids = listing_fixture(&store).await;

        // Newest first, every field of the row.
        let all = store.list_audit_events(&q()).await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=11).rev().collect::<Vec<_>>()
        );
        for row in &all {
            assert_eq!(row.chain_id, DEFAULT_CHAIN);
            assert_eq!(
                row.event.event_id,
                ids[usize::try_from(row.seq - 1).unwrap()]
            );
            assert_eq!(row.row_hash.len(), 32);
        }

        let s = |v: &str| Some(v.to_owned());
        let t = |d: Duration| Some(B + d);
        use IdempotencyOutcome as O;
        #[rustfmt::skip]
        let cases: Vec<(&str, AuditQuery, Vec<i64>)> = vec![
            ("method Create", AuditQuery { method: s("CreateAccountLinkInvitation"), ..q() }, vec![10, 9, 5, 4, 1]),
            ("method Get", AuditQuery { method: s("GetAccountLink"), ..q() }, vec![11, 2]),
            ("method unknown", AuditQuery { method: s("Nope"), ..q() }, vec![]),
            ("principal alice", AuditQuery { principal: s("alice"), ..q() }, vec![10, 9, 5, 1]),
            ("principal bob", AuditQuery { principal: s("bob"), ..q() }, vec![11, 6, 2]),
            ("principal anonymous", AuditQuery { principal: s("anonymous"), ..q() }, vec![7]),
            ("account A", AuditQuery { account_id: s(ACCT_A), ..q() }, vec![11, 10, 9, 5, 4, 2, 1]),
            ("account B", AuditQuery { account_id: s(ACCT_B), ..q() }, vec![8, 6, 3]),
            ("link-1: response of 1, requests of 2 and 6", AuditQuery { link_id: s("link-1"), ..q() }, vec![6, 2, 1]),
            ("link-2: both places, once each", AuditQuery { link_id: s("link-2"), ..q() }, vec![8, 3]),
            ("link-3: response only", AuditQuery { link_id: s("link-3"), ..q() }, vec![5]),
            ("link unknown", AuditQuery { link_id: s("link-9"), ..q() }, vec![]),
            ("grpc INVALID_ARGUMENT", AuditQuery { grpc_code: s("INVALID_ARGUMENT"), ..q() }, vec![10, 4]),
            ("grpc OK", AuditQuery { grpc_code: s("OK"), ..q() }, vec![11, 8, 5, 3, 2, 1]),
            ("grpc UNAUTHENTICATED", AuditQuery { grpc_code: s("UNAUTHENTICATED"), ..q() }, vec![7]),
            ("outcome new", AuditQuery { idempotency_outcome: Some(O::New), ..q() }, vec![8, 6, 3, 1]),
            ("outcome replayed", AuditQuery { idempotency_outcome: Some(O::Replayed), ..q() }, vec![5]),
            ("outcome in_progress", AuditQuery { idempotency_outcome: Some(O::InProgress), ..q() }, vec![9]),
            ("outcome mismatch", AuditQuery { idempotency_outcome: Some(O::Mismatch), ..q() }, vec![10]),
            ("outcome none", AuditQuery { idempotency_outcome: Some(O::None), ..q() }, vec![11, 7, 4, 2]),
            ("start B", AuditQuery { start_time: t(Duration::ZERO), ..q() }, (1..=11).rev().collect()),
            ("start B+1h (inclusive)", AuditQuery { start_time: t(HOUR), ..q() }, vec![11, 10, 9, 8, 7, 6, 5, 4]),
            ("start B+2h: not seq 6 of the hour before", AuditQuery { start_time: t(2 * HOUR), ..q() }, vec![11, 10, 9, 8, 7, 5]),
            ("end B+2h: seq 6, not seq 5", AuditQuery { end_time: t(2 * HOUR), ..q() }, vec![6, 4, 3, 2, 1]),
            ("end B+3h (exclusive)", AuditQuery { end_time: t(3 * HOUR), ..q() }, vec![7, 6, 5, 4, 3, 2, 1]),
            ("end B (exclusive)", AuditQuery { end_time: t(Duration::ZERO), ..q() }, vec![]),
            ("empty range", AuditQuery { start_time: t(HOUR), end_time: t(HOUR), ..q() }, vec![]),
            ("one microsecond", AuditQuery { start_time: t(HOUR), end_time: t(HOUR + MICRO), ..q() }, vec![4]),
            ("the microsecond before B+2h", AuditQuery { start_time: t(2 * HOUR - MICRO), end_time: t(2 * HOUR), ..q() }, vec![6]),
            ("B+3h+1us", AuditQuery { start_time: t(3 * HOUR + MICRO), end_time: t(3 * HOUR + 2 * MICRO), ..q() }, vec![9]),
            ("after everything", AuditQuery { start_time: t(DAY), ..q() }, vec![]),
            ("before everything", AuditQuery { end_time: Some(B - HOUR), ..q() }, vec![]),
            ("method Create since B+2h", AuditQuery { method: s("CreateAccountLinkInvitation"), start_time: t(2 * HOUR), ..q() }, vec![10, 9, 5]),
            ("account A and OK", AuditQuery { account_id: s(ACCT_A), grpc_code: s("OK"), ..q() }, vec![11, 5, 2, 1]),
            ("link-1 by bob", AuditQuery { link_id: s("link-1"), principal: s("bob"), ..q() }, vec![6, 2]),
            ("new, account B, before B+3h", AuditQuery { idempotency_outcome: Some(O::New), account_id: s(ACCT_B), end_time: t(3 * HOUR), ..q() }, vec![6, 3]),
            ("before_seq 5", AuditQuery { before_seq: Some(5), ..q() }, vec![4, 3, 2, 1]),
            ("before_seq 5, limit 2", AuditQuery { before_seq: Some(5), limit: 2, ..q() }, vec![4, 3]),
            ("before_seq 1", AuditQuery { before_seq: Some(1), ..q() }, vec![]),
            ("method Create before_seq 9", AuditQuery { method: s("CreateAccountLinkInvitation"), before_seq: Some(9), ..q() }, vec![5, 4, 1]),
            ("limit 3", AuditQuery { limit: 3, ..q() }, vec![11, 10, 9]),
            ("limit 0", AuditQuery { limit: 0, ..q() }, vec![]),
        ];
        for (name, query, want) in cases {
            assert_eq!(seqs(&store, &query).await, want, "{name}: {query:?}");
        }
        // `audit export --since --until` reads the same time ranges, in seq
        // order (on PostgreSQL through the hour summary's seq range).
        let far = B + 1000 * HOUR;
        for (since, until, want) in [
            (B, far, (1..=11).collect::<Vec<i64>>()),
            (B, B + HOUR, vec![1, 2, 3]),
            (B + HOUR, far, vec![4, 5, 6, 7, 8, 9, 10, 11]),
            (B + 2 * HOUR, far, vec![5, 7, 8, 9, 10, 11]),
            (far, far + HOUR, vec![]),
        ] {
            let got: Vec<i64> = store
                .audit_rows_in_time_range(DEFAULT_CHAIN, since, until)
                .map(|r| r.unwrap().seq)
                .collect()
                .await;
            assert_eq!(got, want, "export [{since}, {until})");
        }
    }

    pub(crate) async fn list_audit_events_pages_walk_every_event_once<S: Store>(store: S) {
        listing_fixture(&store).await;
        let s = |v: &str| Some(v.to_owned());
        let queries = [
            q(),
            AuditQuery {
                method: s("CreateAccountLinkInvitation"),
                ..q()
            },
            AuditQuery {
                account_id: s(ACCT_A),
                ..q()
            },
            AuditQuery {
                link_id: s("link-1"),
                ..q()
            },
            AuditQuery {
                idempotency_outcome: Some(IdempotencyOutcome::None),
                ..q()
            },
            AuditQuery {
                start_time: Some(B + HOUR),
                end_time: Some(B + 3 * HOUR + 2 * MICRO),
                ..q()
            },
        ];
        for query in queries {
            let whole = seqs(&store, &query).await;
            assert!(!whole.is_empty(), "{query:?}");
            for limit in 1..=4 {
                let mut walked: Vec<i64> = Vec::new();
                let mut before_seq = None;
                loop {
                    let page = seqs(
                        &store,
                        &AuditQuery {
                            limit,
                            before_seq,
                            ..query.clone()
                        },
                    )
                    .await;
                    assert!(page.len() <= usize::try_from(limit).unwrap());
                    walked.extend(&page);
                    if page.len() < usize::try_from(limit).unwrap() {
                        break;
                    }
                    before_seq = page.last().copied();
                }
                assert_eq!(walked, whole, "limit {limit}: {query:?}");
            }
        }
    }

    // ----- concurrency -----

    pub(crate) async fn concurrent_claims_of_one_key_have_exactly_one_winner<S: Store>(store: S) {
        for (token, now) in [("race-clock", None), ("race-t0", Some(T0))] {
            let tasks: Vec<_> = (0..32)
                .map(|_| {
                    let store = store.clone();
                    tokio::spawn(async move { claim_at(&store, &claim(token, "f"), now).await })
                })
                .collect();
            let mut winners = 0;
            let mut waiting = 0;
            for task in tasks {
                match task.await.unwrap() {
                    ClaimOutcome::Acquired {
                        takeover: false,
                        upstream_client_token,
                        ..
                    } if upstream_client_token == upstream_token(0) => winners += 1,
                    ClaimOutcome::InProgress { retry_after } => {
                        waiting += 1;
                        match now {
                            // Every claim saw the same time: exactly the lease.
                            Some(_) => assert_eq!(retry_after, LEASE),
                            // A loser's transaction may have started a little
                            // before the winner's.
                            None => assert!(
                                retry_after > Duration::ZERO && retry_after <= LEASE + SEC,
                                "{retry_after:?}"
                            ),
                        }
                    }
                    other => panic!("{token}: unexpected {other:?}"),
                }
            }
            assert_eq!((winners, waiting), (1, 31), "{token}");
        }
    }

    pub(crate) async fn concurrent_appends_are_gapless_and_verify<S: Store>(store: S) {
        // More than one batch's worth at once: group commit must keep
        // one gapless seq, in the order it hashed, and tell each waiter its
        // own.
        const N: i64 = 256 + 44;
        let tasks: Vec<_> = (0..N)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let e = event("GetAccountLink", "alice", now_micros());
                    let seq = store.append_audit_event(&e).await.unwrap();
                    (seq, e.event_id)
                })
            })
            .collect();
        let mut appended = Vec::new();
        for task in tasks {
            appended.push(task.await.unwrap());
        }
        appended.sort_unstable();
        assert_eq!(
            appended.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
            (1..=N).collect::<Vec<_>>()
        );
        // Each seq holds the event that was told it.
        let stored = rows(&store).await;
        assert_eq!(
            stored
                .iter()
                .map(|r| (r.seq, r.event.event_id))
                .collect::<Vec<_>>(),
            appended
        );
        let report = verified(&store).await;
        assert_eq!((report.count, report.last_seq), (N as u64, N));
    }

    /// A write the database refuses (here: an event id that is already
    /// stored) fails its whole batch: no waiter of that batch is answered
    /// OK, none of their rows exists, and the writers around it go on with
    /// a gapless, verifying chain.
    pub(crate) async fn a_failed_batch_answers_none_of_its_waiters_ok<S: Store>(store: S) {
        let first = event("GetAccountLink", "alice", now_micros());
        assert_eq!(store.append_audit_event(&first).await.unwrap(), 1);
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = store.clone();
                let mut e = event("GetAccountLink", "bob", now_micros());
                if i == 100 {
                    e.event_id = first.event_id;
                }
                tokio::spawn(async move { (e.event_id, store.append_audit_event(&e).await) })
            })
            .collect();
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for task in tasks {
            match task.await.unwrap() {
                (id, Ok(seq)) => ok.push((seq, id)),
                (id, Err(_)) => failed.push(id),
            }
        }
        assert!(failed.contains(&first.event_id), "the duplicate is refused");
        ok.sort_unstable();
        let stored = rows(&store).await;
        let stored_ids: std::collections::HashSet<Uuid> =
            stored.iter().map(|r| r.event.event_id).collect();
        for id in &failed {
            assert!(
                *id == first.event_id || !stored_ids.contains(id),
                "a write of a failed batch was stored"
            );
        }
        // Everything answered OK is there, at the seq it was told, and
        // nothing else is.
        let mut expected = vec![(1, first.event_id)];
        expected.extend(ok.iter().copied());
        assert_eq!(
            stored
                .iter()
                .map(|r| (r.seq, r.event.event_id))
                .collect::<Vec<_>>(),
            expected
        );
        let report = verified(&store).await;
        assert_eq!(report.count, 1 + ok.len() as u64);
        // The writer goes on after a failed batch.
        let next = store
            .append_audit_event(&event("GetAccountLink", "carol", now_micros()))
            .await
            .unwrap();
        assert_eq!(next, 2 + ok.len() as i64);
    }

    /// Completions of one key by the old (taken over) lease and the new one,
    /// submitted together amid other writes so that they share batches:
    /// the lease rule holds inside a batch as across them.
    pub(crate) async fn completions_of_one_key_in_one_batch_keep_the_lease_rule<S: Store>(
        store: S,
    ) {
        const KEYS: usize = 16;
        let mut leases = Vec::new();
        for k in 0..KEYS {
            let c = claim(&format!("k-batch-{k}"), "f");
            let old = lease(&claim_at(&store, &c, Some(T0)).await);
            let new = lease(&claim_at(&store, &c, Some(T0 + LEASE)).await);
            leases.push((c, old, new));
        }
        let noise: Vec<_> = (0..64)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .append_audit_event(&event("GetAccountLink", "bob", now_micros()))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let completions: Vec<_> = leases
            .iter()
            .flat_map(|(c, old, new)| {
                [
                    (c.clone(), *old, &b"old"[..]),
                    (c.clone(), *new, &b"new"[..]),
                ]
            })
            .map(|(c, lease_id, body)| {
                let store = store.clone();
                tokio::spawn(async move {
                    let outcome = RecordOutcome::Completed(success(body));
                    (body, complete(&store, &c, lease_id, outcome).await)
                })
            })
            .collect();
        for task in noise {
            task.await.unwrap();
        }
        for task in completions {
            let (body, held) = task.await.unwrap();
            assert_eq!(held, body == b"new", "only the live lease completes");
        }
        for (c, _, _) in &leases {
            assert_eq!(
                claim_at(&store, c, Some(T0 + LEASE + SEC)).await,
                ClaimOutcome::Replay(success(b"new"))
            );
        }
        let report = verified(&store).await;
        assert_eq!(report.count, (64 + 2 * KEYS) as u64);
    }

    /// Two stores on one database (two replicas' writers): their batches
    /// interleave into one gapless, verifying chain.
    /// The keys of the records `take_over_stale` took at `now`.
    async fn take_over<S: Store>(store: &S, now: OffsetDateTime, limit: u32) -> Vec<String> {
        store
            .take_over_stale(Some(now), LEASE, LEASE, limit)
            .await
            .expect("take over")
            .into_iter()
            .map(|r| {
                assert_eq!(
                    r.request_body,
                    r#"{"v":1,"target_account_id":"222222222222"}"#
                );
                assert_eq!(r.upstream_client_token, upstream_token(0));
                assert_eq!(r.acting_account_id, "111111111111");
                r.client_token_sha256
            })
            .collect()
    }

    pub(crate) async fn the_completer_takes_over_only_stale_records_that_hold_their_request<
        S: Store,
    >(
        store: S,
    ) {
        // On the real clock: a completion's `updated_at` is its event's time.
        let base = now_micros();
        let at = base + LEASE + SEC;
        let dead = claim("k-dead", "f");
        claim_at(&store, &dead, Some(base)).await;
        let retry = claim("k-retry", "f");
        let first = lease(&claim_at(&store, &retry, Some(base)).await);
        assert!(complete(&store, &retry, first, RecordOutcome::Retryable).await);
        claim_at(&store, &claim("k-live", "f"), Some(base + LEASE)).await;
        let done = claim("k-done", "f");
        let l = lease(&claim_at(&store, &done, Some(base)).await);
        assert!(complete(&store, &done, l, RecordOutcome::Completed(success(b"ok"))).await);
        let old = NewClaim {
            request_body: None,
            ..claim("k-old", "f")
        };
        claim_at(&store, &old, Some(base)).await;
        let expired = NewClaim {
            ttl: LEASE,
            ..claim("k-expired", "f")
        };
        claim_at(&store, &expired, Some(base)).await;

        assert_eq!(
            store.stale_backlog(Some(at), LEASE).await.unwrap(),
            StaleBacklog {
                stale: 3,
                without_request: 1
            }
        );
        // Oldest first, at most `limit`.
        assert_eq!(take_over(&store, at, 1).await, ["k-dead"]);
        assert_eq!(take_over(&store, at, 10).await, ["k-retry"]);
        assert!(take_over(&store, at, 10).await.is_empty(), "taken once");
        // A taken record is under a live lease: a caller is told to wait.
        assert_eq!(
            claim_at(&store, &dead, Some(at + SEC)).await,
            in_progress(LEASE - SEC)
        );
        // A retryable record is its caller's for `retryable_for`.
        let fresh = claim("k-fresh-retry", "f");
        let l = lease(&claim_at(&store, &fresh, Some(base)).await);
        assert!(complete(&store, &fresh, l, RecordOutcome::Retryable).await);
        assert!(take_over(&store, now_micros(), 10).await.is_empty());
        assert_eq!(
            store.stale_backlog(Some(at), LEASE).await.unwrap(),
            StaleBacklog {
                stale: 2,
                without_request: 1
            },
            "k-old and k-fresh-retry"
        );
    }

    pub(crate) async fn two_stores_completers_take_disjoint_records<S: Store>(store: S, second: S) {
        const RECORDS: usize = 40;
        let base = now_micros();
        for i in 0..RECORDS {
            claim_at(&store, &claim(&format!("k-{i:02}"), "f"), Some(base)).await;
        }
        let at = base + LEASE + SEC;
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = if i % 2 == 0 {
                    store.clone()
                } else {
                    second.clone()
                };
                tokio::spawn(async move { take_over(&store, at, 7).await })
            })
            .collect();
        let mut taken = Vec::new();
        for task in tasks {
            taken.extend(task.await.unwrap());
        }
        taken.sort();
        let expected: Vec<String> = (0..RECORDS).map(|i| format!("k-{i:02}")).collect();
        let mut unique = taken.clone();
        unique.dedup();
        assert_eq!(unique.len(), taken.len(), "a record taken twice: {taken:?}");
        // 8 takers of 7 cover the 40, each once.
        assert_eq!(taken, expected);
    }

    pub(crate) async fn batches_of_two_stores_interleave_without_a_gap<S: Store>(
        store: S,
        second: S,
    ) {
        const EACH: usize = 150;
        let tasks: Vec<_> = (0..2 * EACH)
            .map(|i| {
                let store = if i % 2 == 0 {
                    store.clone()
                } else {
                    second.clone()
                };
                tokio::spawn(async move {
                    let e = event("GetAccountLink", "alice", now_micros());
                    (store.append_audit_event(&e).await.unwrap(), e.event_id)
                })
            })
            .collect();
        let mut appended = Vec::new();
        for task in tasks {
            appended.push(task.await.unwrap());
        }
        appended.sort_unstable();
        let n = i64::try_from(2 * EACH).unwrap();
        assert_eq!(
            appended.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
            (1..=n).collect::<Vec<_>>()
        );
        for reader in [&store, &second] {
            let stored = rows(reader).await;
            assert_eq!(
                stored
                    .iter()
                    .map(|r| (r.seq, r.event.event_id))
                    .collect::<Vec<_>>(),
                appended
            );
            let report = verified(reader).await;
            assert_eq!((report.count, report.last_seq), (2 * EACH as u64, n));
        }
    }
}

/// A fresh PostgreSQL database (`test_database`), migrated.
async fn open_postgres() -> PgStore {
    let url = format!(
        "{}/{}",
        test_database::database_server_url(),
        test_database::fresh_database_name()
    );
    PgStore::connect(&url, 40)
        .await
        .expect("connect to the PostgreSQL server of TEST_DATABASE_URL")
}

/// A fresh SQLite file in a fresh temporary directory, migrated.
async fn open_sqlite() -> SqliteStore {
    let dir = std::env::temp_dir().join(format!("als-store-{}", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite://{}/store.db", dir.display());
    SqliteStore::connect(&url, 4)
        .await
        .expect("open a SQLite file")
}

async fn raw_postgres(store: &PgStore, sql: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(store.pool())
        .await
        .map(|done| done.rows_affected())
}

async fn raw_sqlite(store: &SqliteStore, sql: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(store.writer())
        .await
        .map(|done| done.rows_affected())
}

/// A second store on the database of `store`, with its own pool and
/// group-commit writer (as a second replica would have).
async fn second_postgres(store: &PgStore) -> PgStore {
    let options = (*store.pool().connect_options()).clone();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect_with(options)
        .await
        .expect("a second pool");
    PgStore::from_pool(pool)
}

/// A second store on the file of `store` (as `audit` tools or a second
/// process would open it).
async fn second_sqlite(store: &SqliteStore) -> SqliteStore {
    let path = store
        .writer()
        .connect_options()
        .get_filename()
        .to_path_buf();
    SqliteStore::open_path(&path, 4, false)
        .await
        .expect("a second store on the file")
}

store_conformance_suite!(postgres, open_postgres, raw_postgres, second_postgres);
store_conformance_suite!(sqlite, open_sqlite, raw_sqlite, second_sqlite);

/// What only PostgreSQL needs checking: the group-commit writers keep a
/// connection of their own between batches.
mod postgres_only {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use account_link_service::audit::now_micros;
    use account_link_service::store::{ClaimOutcome, PgStore, Store, StoreError, UpstreamToken};
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::Notify;

    use super::suite::{event, verified};
    use super::{open_postgres, raw_postgres};

    /// Ends every other session on the store's database: the writers'
    /// kept connections and the pool's idle ones, as a database restart
    /// would. Returns how many it ended.
    async fn end_other_sessions(store: &account_link_service::store::PgStore) -> u64 {
        raw_postgres(
            store,
            "select pg_terminate_backend(pid) from pg_stat_activity \
             where datname = current_database() and pid <> pg_backend_pid()",
        )
        .await
        .unwrap()
    }

    /// Appends an event by `principal` on a task of its own.
    fn spawn_append(
        store: &PgStore,
        principal: &'static str,
    ) -> tokio::task::JoinHandle<Result<i64, StoreError>> {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append_audit_event(&event("GetAccountLink", principal, now_micros()))
                .await
        })
    }

    /// A group-commit writer's connection counts as open while a batch holds
    /// it (`accountlink_db_pool_connections{state="open"}`), not only while
    /// it is kept idle between batches.
    #[tokio::test]
    async fn pool_status_counts_a_writers_connection_while_a_batch_holds_it() {
        let store = open_postgres().await;
        store
            .append_audit_event(&event("GetAccountLink", "alice", now_micros()))
            .await
            .unwrap();
        // Hold the chain head, so the next batch waits inside its statement.
        let mut head = store.pool().begin().await.unwrap();
        sqlx::query("select 1 from audit_chain for update")
            .execute(&mut *head)
            .await
            .unwrap();
        let append = spawn_append(&store, "bob");
        // A real database's lock wait: poll until the batch is waiting, for
        // less than the writer's batch timeout (10 s), after which the batch
        // gives up its connection and would never be seen waiting.
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let waiting: i64 = sqlx::query_scalar(
                    "select count(*) from pg_stat_activity \
                     where datname = current_database() and wait_event_type = 'Lock'",
                )
                .fetch_one(store.pool())
                .await
                .unwrap();
                if waiting > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the batch is seen waiting on the chain head's lock within 5 s");
        let in_use = |store: &PgStore| {
            let pool = store.pool();
            pool.size() - u32::try_from(pool.num_idle()).unwrap()
        };
        let during = store.pool_status();
        assert_eq!(
            during.open - during.idle,
            in_use(&store) + 1,
            "the pool's connection in use (the head's lock) and the busy writer's: {during:?}"
        );
        head.rollback().await.unwrap();
        assert_eq!(append.await.unwrap().unwrap(), 2);
        let after = store.pool_status();
        assert_eq!(after.open - after.idle, in_use(&store), "{after:?}");
    }

    /// Left-over test databases are dropped once they are stale and nobody
    /// uses them; fresh ones, databases in use and other names stay.
    #[tokio::test]
    async fn stale_test_databases_are_reaped_and_the_others_stay() {
        use super::test_database::{STALE_AFTER_SECS, database_server_url, reap_stale};
        use sqlx::Connection as _;
        let server = database_server_url();
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        // A prefix of this test's own, so that the reapers of the tests
        // running beside it leave these databases to this one.
        const PREFIX: &str = "reaptest_";
        let name = |secs: u64| format!("{PREFIX}{secs}_{}", uuid::Uuid::new_v4().simple());
        let stale = name(now - STALE_AFTER_SECS - 60);
        let stale_in_use = name(now - STALE_AFTER_SECS - 60);
        let fresh = name(now - 60);
        let other = format!("reaptest_{}", uuid::Uuid::new_v4().simple());
        for db in [&stale, &stale_in_use, &fresh, &other] {
            sqlx::query(sqlx::AssertSqlSafe(format!("create database \"{db}\"")))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        let user = sqlx::PgConnection::connect(&format!("{server}/{stale_in_use}"))
            .await
            .unwrap();

        let reap_from = server.clone();
        tokio::task::spawn_blocking(move || reap_stale(&reap_from, PREFIX).join())
            .await
            .unwrap()
            .unwrap();

        let exists = async |admin: &mut sqlx::PgConnection, db: &str| -> bool {
            sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
                .bind(db)
                .fetch_one(admin)
                .await
                .unwrap()
        };
        assert!(!exists(&mut admin, &stale).await, "{stale} is reaped");
        assert!(exists(&mut admin, &stale_in_use).await, "in use: kept");
        assert!(exists(&mut admin, &fresh).await, "fresh: kept");
        assert!(
            exists(&mut admin, &other).await,
            "not a test database: kept"
        );
        user.close().await.unwrap();
        for db in [&stale_in_use, &fresh, &other] {
            sqlx::query(sqlx::AssertSqlSafe(format!("drop database \"{db}\"")))
                .execute(&mut admin)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_writer_connection_that_died_while_idle_is_replaced_without_failing_a_batch() {
        let store = open_postgres().await;
        let claim = super::suite::claim("t-1", "f-1");
        store
            .claim(&claim, None, std::sync::Arc::new(|_| "u".into()))
            .await
            .unwrap();
        store
            .append_audit_event(&event("GetAccountLink", "alice", now_micros()))
            .await
            .unwrap();
        assert!(
            end_other_sessions(&store).await >= 2,
            "both writers kept their connection"
        );
        // Idle past the writers' ping threshold (tokio's clock).
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(2)).await;
        tokio::time::resume();
        let seq = store
            .append_audit_event(&event("GetAccountLink", "alice", now_micros()))
            .await
            .expect("the writer pings its idle connection and opens a new one");
        assert_eq!(seq, 2);
        let other = super::suite::claim("t-2", "f-2");
        store
            .claim(&other, None, std::sync::Arc::new(|_| "u".into()))
            .await
            .expect("so does the claim writer");
        assert_eq!(verified(&store).await.count, 2);
    }

    /// A loopback TCP proxy to PostgreSQL that can freeze the connections
    /// it carries, as if they had gone half-open: from then on it reads and
    /// drops what the client sends and answers nothing. Connections opened
    /// after a freeze are carried normally.
    struct FreezingProxy {
        addr: SocketAddr,
        /// How many connections it has accepted (each is numbered).
        opened: Arc<AtomicU64>,
        /// Connections numbered below this are frozen.
        frozen_below: Arc<AtomicU64>,
        /// Frozen connections that have swallowed a write since the freeze.
        swallowing: Arc<(AtomicU64, Notify)>,
    }

    impl FreezingProxy {
        async fn start(upstream: SocketAddr) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let opened = Arc::new(AtomicU64::new(0));
            let frozen_below = Arc::new(AtomicU64::new(0));
            let swallowing = Arc::new((AtomicU64::new(0), Notify::new()));
            let (count, frozen, swallowed) =
                (opened.clone(), frozen_below.clone(), swallowing.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    let id = count.fetch_add(1, Ordering::SeqCst);
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let is_frozen = {
                        let frozen = frozen.clone();
                        move || id < frozen.load(Ordering::SeqCst)
                    };
                    tokio::spawn(carry(client_read, server_write, is_frozen.clone(), {
                        let swallowed = swallowed.clone();
                        let mut counted = false;
                        move || {
                            if !std::mem::replace(&mut counted, true) {
                                swallowed.0.fetch_add(1, Ordering::SeqCst);
                                swallowed.1.notify_waiters();
                            }
                        }
                    }));
                    tokio::spawn(carry(server_read, client_write, is_frozen, || {}));
                }
            });
            Self {
                addr,
                opened,
                frozen_below,
                swallowing,
            }
        }

        /// Freezes every connection opened so far.
        fn freeze(&self) {
            self.frozen_below
                .store(self.opened.load(Ordering::SeqCst), Ordering::SeqCst);
        }

        /// Waits until `n` frozen connections have swallowed a write.
        async fn swallowed_by(&self, n: u64) {
            loop {
                let notified = self.swallowing.1.notified();
                if self.swallowing.0.load(Ordering::SeqCst) >= n {
                    return;
                }
                notified.await;
            }
        }
    }

    /// Copies `from` to `to` until either end closes; while `frozen`, reads
    /// and drops instead, calling `swallowed` for each read.
    async fn carry(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        frozen: impl Fn() -> bool,
        mut swallowed: impl FnMut(),
    ) {
        let mut buf = vec![0_u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if frozen() {
                swallowed();
            } else if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }

    #[tokio::test]
    async fn a_batch_on_a_connection_gone_half_open_times_out_and_the_writers_go_on() {
        let direct = open_postgres().await;
        let db: String = sqlx::query_scalar("select current_database()")
            .fetch_one(direct.pool())
            .await
            .unwrap();
        let server: PgConnectOptions = super::test_database::database_server_url().parse().unwrap();
        let upstream = tokio::net::lookup_host((server.get_host(), server.get_port()))
            .await
            .unwrap()
            .next()
            .unwrap();
        let proxy = FreezingProxy::start(upstream).await;
        // No pool connection is kept open: the writers' are the only two.
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .connect_lazy_with(
                server
                    .host("127.0.0.1")
                    .port(proxy.addr.port())
                    .database(&db),
            );
        let store = PgStore::from_pool(pool);
        let token = || -> UpstreamToken { Arc::new(|_| "u".to_owned()) };
        store
            .append_audit_event(&event("GetAccountLink", "alice", now_micros()))
            .await
            .unwrap();
        store
            .claim(&super::suite::claim("t-1", "f-1"), None, token())
            .await
            .unwrap();
        proxy.freeze();

        let append = spawn_append(&store, "bob");
        let claim = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .claim(&super::suite::claim("t-2", "f-2"), None, token())
                    .await
            }
        });
        // Both batches are on the wire, and their timeouts running, before
        // tokio's clock moves past the batch timeout.
        proxy.swallowed_by(2).await;
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(11)).await;
        tokio::time::resume();
        let timed_out = |e: &StoreError| match e {
            StoreError::Batch(inner) => matches!(**inner, StoreError::BatchTimedOut(_)),
            _ => false,
        };
        let err = append
            .await
            .unwrap()
            .expect_err("the append is not answered as written");
        assert!(timed_out(&err), "{err:?}");
        let err = claim.await.unwrap().expect_err("nor is the claim");
        assert!(timed_out(&err), "{err:?}");

        // Both writers go on, on new connections; the statements that never
        // reached the database wrote nothing, and the chain is whole.
        let seq = store
            .append_audit_event(&event("GetAccountLink", "carol", now_micros()))
            .await
            .expect("the audit writer opens a new connection");
        assert_eq!(seq, 2);
        let outcome = store
            .claim(&super::suite::claim("t-2", "f-2"), None, token())
            .await
            .expect("so does the claim writer");
        assert!(
            matches!(
                outcome,
                ClaimOutcome::Acquired {
                    takeover: false,
                    ..
                }
            ),
            "the timed-out claim wrote nothing: {outcome:?}"
        );
        assert_eq!(verified(&direct).await.count, 2);
    }
}

/// What only SQLite needs checking: its connection settings, a REPLACE
/// (which would delete a row without firing the delete trigger), and
/// retention in batches.
mod sqlite_only {
    use account_link_service::audit::{self, now_micros};
    use account_link_service::store::{ChainPoint, DEFAULT_CHAIN, Store};

    use super::suite::{event, rows, verified};
    use super::{open_sqlite, raw_sqlite};

    /// The value of `pragma <name>` on a connection of `pool`.
    async fn pragma<T>(pool: &sqlx::SqlitePool, name: &str) -> T
    where
        T: sqlx::Type<sqlx::Sqlite> + for<'r> sqlx::Decode<'r, sqlx::Sqlite> + Send + Unpin,
    {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("pragma {name}")))
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_writer_runs_wal_with_synchronous_full() {
        let store = open_sqlite().await;
        let writer = store.writer();
        let mode: String = pragma(writer, "journal_mode").await;
        let synchronous: i64 = pragma(writer, "synchronous").await;
        let busy: i64 = pragma(writer, "busy_timeout").await;
        assert_eq!((mode.as_str(), synchronous, busy), ("wal", 2, 5000));
    }

    #[tokio::test]
    async fn the_writer_checkpoints_every_10_000_pages_and_keeps_temp_data_in_memory() {
        use account_link_service::store::sqlite::WAL_SIZE_LIMIT;
        let store = open_sqlite().await;
        let writer = store.writer();
        assert_eq!(pragma::<i64>(writer, "wal_autocheckpoint").await, 10_000);
        assert_eq!(
            pragma::<i64>(writer, "journal_size_limit").await,
            i64::try_from(WAL_SIZE_LIMIT).unwrap()
        );
        // 2 = MEMORY: statement journals and sorts never spill to files.
        assert_eq!(pragma::<i64>(writer, "temp_store").await, 2);
        assert_eq!(pragma::<i64>(store.reader(), "temp_store").await, 2);
    }

    #[tokio::test]
    async fn insert_or_replace_cannot_swap_an_audit_row() {
        let store = open_sqlite().await;
        for _ in 0..2 {
            store
                .append_audit_event(&event("GetAccountLink", "alice", now_micros()))
                .await
                .unwrap();
        }
        let before = verified(&store).await;
        for sql in [
            "insert or replace into audit_event \
             select * from audit_event where seq = 1",
            "replace into audit_event select * from audit_event where seq = 2",
        ] {
            let err = raw_sqlite(&store, sql).await.expect_err(sql);
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
        assert_eq!(verified(&store).await, before);
    }

    #[tokio::test]
    async fn retention_deletes_in_batches_and_the_chain_verifies_throughout() {
        let store = open_sqlite().await.with_retention_batch(4);
        let signing = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        for _ in 0..10 {
            store
                .append_audit_event(&event("GetAccountLink", "alice", now_micros()))
                .await
                .unwrap();
        }
        let cp = audit::create_checkpoint(&store, DEFAULT_CHAIN, &signing, None)
            .await
            .unwrap()
            .unwrap();
        let hash10 = store.row_hash_at(DEFAULT_CHAIN, 10).await.unwrap().unwrap();
        let future = time::OffsetDateTime::now_utc() + time::Duration::days(1);
        let outcome = audit::retain(&store, DEFAULT_CHAIN, &signing.verifying_key(), future)
            .await
            .unwrap()
            .unwrap()
            .expect("the prefix goes");
        // Three batches (4 + 4 + 2), one retention event.
        assert_eq!((outcome.to_seq, outcome.deleted), (10, 10));
        let left = rows(&store).await;
        assert_eq!(left.iter().map(|r| r.seq).collect::<Vec<_>>(), [11]);
        assert_eq!(
            left[0].event.response_elements.as_ref().unwrap()["deleted_events"],
            10
        );
        assert_eq!(
            store.chain_anchor(DEFAULT_CHAIN).await.unwrap(),
            Some(ChainPoint {
                seq: 10,
                row_hash: hash10
            })
        );
        assert_eq!(verified(&store).await.first_seq, 11);
        let _ = cp;
    }

    #[tokio::test]
    async fn audit_tools_never_create_a_store() {
        let dir = std::env::temp_dir().join(format!("als-store-{}", uuid::Uuid::new_v4().simple()));
        let database = account_link_service::config::DatabaseArgs {
            database_url: None,
            data_dir: dir.clone(),
        };
        let err = account_link_service::store::AnyStore::open(&database, 1, false)
            .await
            .expect_err("nothing there");
        assert!(err.to_string().contains("no store at"), "{err}");
        assert!(!dir.exists(), "nothing was created");
        let store = account_link_service::store::AnyStore::open(&database, 1, true)
            .await
            .expect("serve creates it");
        assert_eq!(store.backend(), "sqlite");
        assert!(database.sqlite_path().exists());
    }
}
