//! The store's client-token rules with explicit times: leases, takeover,
//! expiry and purge, and concurrent claims (no waiting: the caller passes
//! the clock).

use std::time::Duration;

use account_link_service::audit::now_micros;
use account_link_service::store::{
    ClaimOutcome, NewClaim, PgStore, RecordKey, RecordOutcome, StoredOutcome,
};
use time::OffsetDateTime;

use crate::helpers::database_server_url;

async fn store() -> PgStore {
    let url = format!(
        "{}/test_{}",
        database_server_url(),
        uuid::Uuid::new_v4().simple()
    );
    PgStore::connect(&url, 40).await.expect("store")
}

fn claim(token: &str, fingerprint: &str) -> NewClaim {
    NewClaim {
        key: RecordKey {
            principal: "alice".into(),
            method: "CreateAccountLinkInvitation",
            client_token_sha256: token.into(),
        },
        acting_account_id: "111111111111".into(),
        request_fingerprint: fingerprint.into(),
        lease: Duration::from_secs(60),
        ttl: Duration::from_secs(24 * 3600),
    }
}

/// The upstream token of each generation, as the service derives one.
fn derive(generation: i32) -> String {
    format!("up-{generation}")
}

fn ok_outcome() -> RecordOutcome {
    RecordOutcome::Completed(StoredOutcome {
        grpc_code: 0,
        error_reason: None,
        message: None,
        details: None,
        body: Some(vec![1, 2, 3]),
    })
}

fn event(at: OffsetDateTime) -> account_link_service::store::AuditEvent {
    account_link_service::store::AuditEvent {
        event_id: uuid::Uuid::new_v4(),
        event_time: at,
        method: "CreateAccountLinkInvitation".into(),
        read_only: false,
        principal: "alice".into(),
        source_ip: None,
        user_agent: None,
        request_id: "r".into(),
        account_id: None,
        request_parameters: serde_json::json!({}),
        response_elements: None,
        grpc_code: "OK".into(),
        error_reason: None,
        error_message: None,
        upstream_request_id: None,
        upstream_attempts: 1,
        idempotency_outcome: account_link_service::store::IdempotencyOutcome::New,
        client_token_sha256: None,
        duration_us: 1,
    }
}

fn lease_of(outcome: &ClaimOutcome) -> uuid::Uuid {
    match outcome {
        ClaimOutcome::Acquired { lease_id, .. } => *lease_id,
        other => panic!("expected Acquired, got {other:?}"),
    }
}

#[tokio::test]
async fn a_live_lease_blocks_and_an_expired_one_is_taken_over() {
    let store = store().await;
    let t0 = now_micros();
    let first = store
        .claim(&claim("k1", "f"), Some(t0), &derive)
        .await
        .unwrap();
    let first_lease = lease_of(&first);

    let during = store
        .claim(
            &claim("k1", "f"),
            Some(t0 + Duration::from_secs(10)),
            &derive,
        )
        .await
        .unwrap();
    assert_eq!(
        during,
        ClaimOutcome::InProgress {
            retry_after: Duration::from_secs(50)
        }
    );

    let after = store
        .claim(
            &claim("k1", "f"),
            Some(t0 + Duration::from_secs(61)),
            &derive,
        )
        .await
        .unwrap();
    let ClaimOutcome::Acquired {
        lease_id,
        takeover,
        upstream_client_token,
    } = after
    else {
        panic!("{after:?}")
    };
    assert!(takeover);
    assert_eq!(
        upstream_client_token, "up-0",
        "the stored upstream token is reused"
    );

    // The first driver's late completion is refused; the new driver's lands.
    let key = claim("k1", "f").key;
    assert!(
        !store
            .complete(&key, first_lease, &ok_outcome(), &event(t0))
            .await
            .unwrap()
    );
    assert!(
        store
            .complete(&key, lease_id, &ok_outcome(), &event(t0))
            .await
            .unwrap()
    );
    let replay = store
        .claim(
            &claim("k1", "f"),
            Some(t0 + Duration::from_secs(62)),
            &derive,
        )
        .await
        .unwrap();
    assert!(
        matches!(replay, ClaimOutcome::Replay(StoredOutcome { body: Some(ref b), .. }) if b == &[1, 2, 3])
    );
}

#[tokio::test]
async fn a_retryable_record_is_taken_over_at_once_and_a_mismatch_is_detected() {
    let store = store().await;
    let t0 = now_micros();
    let lease = lease_of(
        &store
            .claim(&claim("k2", "f"), Some(t0), &derive)
            .await
            .unwrap(),
    );
    assert!(
        store
            .complete(
                &claim("k2", "f").key,
                lease,
                &RecordOutcome::Retryable,
                &event(t0)
            )
            .await
            .unwrap()
    );
    let again = store
        .claim(
            &claim("k2", "f"),
            Some(t0 + Duration::from_secs(1)),
            &derive,
        )
        .await
        .unwrap();
    assert!(matches!(
        again,
        ClaimOutcome::Acquired { takeover: true, .. }
    ));
    assert_eq!(
        store
            .claim(&claim("k2", "other"), Some(t0), &derive)
            .await
            .unwrap(),
        ClaimOutcome::Mismatch
    );
}

#[tokio::test]
async fn expired_records_start_afresh_and_are_purged() {
    let store = store().await;
    let t0 = now_micros();
    let lease = lease_of(
        &store
            .claim(&claim("k3", "f"), Some(t0), &derive)
            .await
            .unwrap(),
    );
    store
        .complete(&claim("k3", "f").key, lease, &ok_outcome(), &event(t0))
        .await
        .unwrap();
    let day = Duration::from_secs(24 * 3600);
    // Before expiry: a replay; after: a new request, even with other parameters.
    assert!(matches!(
        store
            .claim(
                &claim("k3", "f"),
                Some(t0 + day - Duration::from_secs(1)),
                &derive
            )
            .await
            .unwrap(),
        ClaimOutcome::Replay(_)
    ));
    assert!(matches!(
        store
            .claim(&claim("k3", "g"), Some(t0 + day), &derive)
            .await
            .unwrap(),
        ClaimOutcome::Acquired {
            takeover: false,
            ..
        }
    ));

    let lease = lease_of(
        &store
            .claim(&claim("k4", "f"), Some(t0), &derive)
            .await
            .unwrap(),
    );
    store
        .complete(&claim("k4", "f").key, lease, &ok_outcome(), &event(t0))
        .await
        .unwrap();
    assert_eq!(
        store
            .purge_expired(Some(t0 + day - Duration::from_secs(1)))
            .await
            .unwrap(),
        0
    );
    // k3 was renewed at t0 + day and is in progress under a live lease: kept.
    assert_eq!(store.purge_expired(Some(t0 + day)).await.unwrap(), 1);
    let left: Vec<String> =
        sqlx::query_scalar("select client_token_sha256 from client_token_record")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(left, ["k3"]);
}

#[tokio::test]
async fn thirty_two_concurrent_claims_have_exactly_one_winner() {
    let store = store().await;
    let now = now_micros();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .claim(&claim("race", "f"), Some(now), &derive)
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        match t.await.unwrap() {
            ClaimOutcome::Acquired { .. } => winners += 1,
            ClaimOutcome::InProgress { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn a_live_lease_wins_over_expiry_and_a_restart_is_a_new_upstream_request() {
    let store = store().await;
    let t0 = now_micros();
    let day = Duration::from_secs(24 * 3600);
    // Retryable until just before expiry, then re-driven: the takeover
    // extends the record to the end of its lease.
    let lease = lease_of(
        &store
            .claim(&claim("k5", "f"), Some(t0), &derive)
            .await
            .unwrap(),
    );
    store
        .complete(
            &claim("k5", "f").key,
            lease,
            &RecordOutcome::Retryable,
            &event(t0),
        )
        .await
        .unwrap();
    let late = t0 + day - Duration::from_secs(5);
    let taken = store
        .claim(&claim("k5", "f"), Some(late), &derive)
        .await
        .unwrap();
    assert!(matches!(
        taken,
        ClaimOutcome::Acquired { takeover: true, .. }
    ));
    // Past the original expiry but inside the lease: still in progress, not a fresh start.
    let during = store
        .claim(
            &claim("k5", "f"),
            Some(t0 + day + Duration::from_secs(1)),
            &derive,
        )
        .await
        .unwrap();
    assert!(
        matches!(during, ClaimOutcome::InProgress { .. }),
        "{during:?}"
    );
    let expires: OffsetDateTime = sqlx::query_scalar(
        "select expires_at from client_token_record where client_token_sha256 = 'k5'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(expires, late + Duration::from_secs(60));

    // After the lease and the expiry: a new generation with a new upstream token.
    let fresh = store
        .claim(
            &claim("k5", "g"),
            Some(late + Duration::from_secs(61)),
            &derive,
        )
        .await
        .unwrap();
    let ClaimOutcome::Acquired {
        takeover,
        upstream_client_token,
        ..
    } = fresh
    else {
        panic!("{fresh:?}")
    };
    assert!(!takeover);
    assert_eq!(upstream_client_token, "up-1");
}

#[tokio::test]
async fn the_database_clock_decides_when_no_time_is_given() {
    let store = store().await;
    let lease = lease_of(&store.claim(&claim("k6", "f"), None, &derive).await.unwrap());
    // A caller whose own clock is far ahead cannot take over a live lease:
    // the decision uses the database's time.
    assert!(matches!(
        store.claim(&claim("k6", "f"), None, &derive).await.unwrap(),
        ClaimOutcome::InProgress { .. }
    ));
    assert!(
        store
            .complete(
                &claim("k6", "f").key,
                lease,
                &ok_outcome(),
                &event(now_micros())
            )
            .await
            .unwrap()
    );
    assert!(matches!(
        store.claim(&claim("k6", "f"), None, &derive).await.unwrap(),
        ClaimOutcome::Replay(_)
    ));
}
