//! Client-token dedup end to end (DESIGN §5).

use std::collections::HashSet;

use account_link_service::config::DEFAULT_UPSTREAM_TOKEN_KEY;
use account_link_service::domain::ClientToken;
use account_link_service::emulator::{Fault, FaultKind};
use account_link_service::grpc::upstream_client_token;
use account_link_service::proto::pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{OTHER, SOURCE, TARGET, details, operations, reason, spawn_app};

fn create_request(
    account: &str,
    target: &str,
    token: &str,
) -> pb::CreateAccountLinkInvitationRequest {
    pb::CreateAccountLinkInvitationRequest {
        account_id: account.into(),
        target_account_id: target.into(),
        client_token: token.into(),
    }
}

#[tokio::test]
async fn a_replay_returns_the_identical_response_without_an_upstream_call() {
    let app = spawn_app().await;
    let first = app
        .client
        .clone()
        .create_account_link_invitation(create_request(SOURCE, TARGET, "replay-1"))
        .await
        .unwrap();
    assert!(first.metadata().get("idempotent-replayed").is_none());
    let second = app
        .client
        .clone()
        .create_account_link_invitation(create_request(SOURCE, TARGET, "replay-1"))
        .await
        .unwrap();
    assert_eq!(
        second.metadata().get("idempotent-replayed").unwrap(),
        "true"
    );
    assert_eq!(first.get_ref(), second.get_ref());
    assert_eq!(second.get_ref().client_token, "replay-1");
    assert_eq!(operations(&app.calls()), ["CreateAccountLinkInvitation"]);
    let outcomes: Vec<String> = app
        .audit_events()
        .await
        .into_iter()
        .map(|e| e.idempotency_outcome)
        .collect();
    assert_eq!(outcomes, ["new", "replayed"]);
}

#[tokio::test]
async fn the_upstream_client_token_is_derived_from_the_key() {
    let app = spawn_app().await;
    app.create(SOURCE, TARGET, "derive-1").await.unwrap();
    let expected = upstream_client_token(
        DEFAULT_UPSTREAM_TOKEN_KEY.as_bytes(),
        "anonymous",
        "CreateAccountLinkInvitation",
        &ClientToken::parse("derive-1").unwrap(),
        0,
    );
    assert_eq!(expected.len(), 64);
    assert_eq!(
        app.calls()[0].client_token.as_deref(),
        Some(expected.as_str())
    );
}

#[tokio::test]
async fn a_token_reused_with_other_parameters_is_a_mismatch() {
    let app = spawn_app().await;
    app.create(SOURCE, TARGET, "mm-1").await.unwrap();
    for (account, target) in [(SOURCE, OTHER), (OTHER, TARGET)] {
        let err = app.create(account, target, "mm-1").await.unwrap_err();
        let d = details(&err, Code::InvalidArgument);
        assert_eq!(reason(&err), "IDEMPOTENCY_PARAMETER_MISMATCH");
        assert_eq!(
            d.bad_request().unwrap().field_violations[0].field,
            "client_token"
        );
    }
    assert_eq!(app.calls().len(), 1);
    let outcomes: Vec<String> = app
        .audit_events()
        .await
        .into_iter()
        .map(|e| e.idempotency_outcome)
        .collect();
    assert_eq!(outcomes, ["new", "mismatch", "mismatch"]);
}

#[tokio::test]
async fn the_same_token_on_another_method_is_another_request() {
    let app = spawn_app().await;
    let id = app
        .create(SOURCE, TARGET, "shared")
        .await
        .unwrap()
        .account_link
        .unwrap()
        .account_link_id;
    let accepted = app.accept(TARGET, &id, "shared").await.unwrap();
    assert_eq!(accepted.client_token, "shared");
    assert_eq!(app.calls().len(), 2);
}

#[tokio::test]
async fn concurrent_identical_creates_make_exactly_one_upstream_call() {
    let app = spawn_app().await;
    // Hold the first call upstream so the others arrive while it is in progress.
    app.emu().inject_fault(
        Fault::new(FaultKind::Latency { millis: 500 }, 1).only_for("CreateAccountLinkInvitation"),
    );
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let mut client = app.client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .create_account_link_invitation(create_request(SOURCE, TARGET, "concurrent-1"))
                .await
        }));
    }
    let mut link_ids = HashSet::new();
    let (mut ok, mut aborted) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(response) => {
                ok += 1;
                link_ids.insert(response.into_inner().account_link.unwrap().account_link_id);
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Aborted, "{status:?}");
                assert_eq!(reason(&status), "IDEMPOTENCY_KEY_IN_USE");
                let d = status.check_error_details().unwrap();
                assert!(d.retry_info().and_then(|r| r.retry_delay).is_some());
                aborted += 1;
            }
        }
    }
    assert_eq!(ok + aborted, 32);
    assert!(ok >= 1);
    assert_eq!(link_ids.len(), 1, "one link id for every success");
    assert_eq!(
        operations(&app.calls()),
        ["CreateAccountLinkInvitation"],
        "exactly one upstream call"
    );
    let events = app.audit_events().await;
    assert_eq!(events.len(), 32, "every rpc audited");
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=32).collect::<Vec<i64>>(),
        "gapless seq under concurrency"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.idempotency_outcome == "new")
            .count(),
        1
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.idempotency_outcome == "in_progress")
            .count(),
        aborted
    );
}

#[tokio::test]
async fn a_transient_failure_leaves_the_record_retryable_and_the_retry_reaches_aws_again() {
    let app = spawn_app().await;
    let faults = [
        FaultKind::Throttling,
        FaultKind::InternalServerError,
        FaultKind::DropConnection,
    ];
    for (i, fault) in faults.into_iter().enumerate() {
        let token = format!("transient-{i}");
        let target = format!("55555555555{i}");
        app.emu().clear_calls();
        app.fault(fault.clone(), 1);
        let err = app.create(SOURCE, &target, &token).await.unwrap_err();
        assert!(
            matches!(err.code(), Code::ResourceExhausted | Code::Unavailable),
            "{fault:?}: {err:?}"
        );
        let state = crate::helpers::fetch_text(
            &app.store,
            "select state from client_token_record where client_token_sha256 = $1",
            Some(&crate::helpers::sha256_hex(&token)),
        )
        .await;
        assert_eq!(state, "retryable", "{fault:?}");

        let retried = app
            .create(SOURCE, &target, &token)
            .await
            .expect("the retry succeeds");
        assert_eq!(retried.client_token, token);
        let calls = app.calls();
        assert_eq!(calls.len(), 2, "{fault:?}: the retry reached AWS");
        assert_eq!(
            calls[0].client_token, calls[1].client_token,
            "same upstream token"
        );
        // A third request is a replay.
        app.create(SOURCE, &target, &token).await.unwrap();
        assert_eq!(app.calls().len(), 2);
    }
}

#[tokio::test]
async fn a_request_without_a_token_gets_a_generated_one_that_replays() {
    let app = spawn_app().await;
    let created = app.create(SOURCE, TARGET, "").await.unwrap();
    assert!(
        uuid::Uuid::parse_str(&created.client_token).is_ok(),
        "{}",
        created.client_token
    );
    let replay = app
        .create(SOURCE, TARGET, &created.client_token)
        .await
        .unwrap();
    assert_eq!(replay, created);
    let second = app.create(SOURCE, OTHER, "").await.unwrap();
    assert_ne!(second.client_token, created.client_token);
    assert_eq!(app.calls().len(), 2);
}

#[tokio::test]
async fn a_final_aws_error_is_replayed_too() {
    let app = spawn_app().await;
    let first = app
        .accept(TARGET, "link-0000000000000000", "final-1")
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::NotFound);
    let second = app
        .accept(TARGET, "link-0000000000000000", "final-1")
        .await
        .unwrap_err();
    assert_eq!(second.code(), Code::NotFound);
    assert_eq!(second.message(), first.message());
    assert_eq!(second.details(), first.details());
    assert_eq!(
        second.metadata().get("idempotent-replayed").unwrap(),
        "true"
    );
    assert_eq!(app.calls().len(), 1);
    let events = app.audit_events().await;
    assert_eq!(events[1].idempotency_outcome, "replayed");
    assert_eq!(events[1].grpc_code, "NOT_FOUND");
    assert_eq!(
        events[1].error_reason.as_deref(),
        Some("RESOURCE_NOT_FOUND")
    );
}

#[tokio::test]
async fn a_caller_that_goes_away_mid_call_still_leaves_a_record_and_an_audit_event() {
    let mut app = spawn_app().await;
    app.emu().inject_fault(
        Fault::new(FaultKind::Latency { millis: 400 }, 1).only_for("CreateAccountLinkInvitation"),
    );
    let mut client = app.client.clone();
    let call = tokio::spawn(async move {
        client
            .create_account_link_invitation(create_request(SOURCE, TARGET, "gone"))
            .await
    });
    while app.calls().is_empty() {
        tokio::task::yield_now().await;
    }
    call.abort(); // the caller disappears (its stream is reset)
    assert!(call.await.unwrap_err().is_cancelled());
    // A graceful stop waits for the detached RPC task to finish.
    app.stop().await.expect("clean stop");
    let events = app.audit_events().await;
    assert_eq!(events.len(), 1, "the abandoned rpc is audited");
    assert_eq!(events[0].grpc_code, "OK");
    assert_eq!(events[0].idempotency_outcome, "new");
    let state =
        crate::helpers::fetch_text(&app.store, "select state from client_token_record", None).await;
    assert_eq!(
        state, "completed",
        "a retry with the token will replay, not re-apply"
    );
    assert_eq!(app.calls().len(), 1);
}
