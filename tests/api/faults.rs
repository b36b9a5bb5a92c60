//! The gaps fault runs found (issue 11), on every backend: a caller's
//! `grpc-timeout` is answered with the audited DEADLINE_EXCEEDED (not
//! tonic's CANCELLED), compressed messages are refused and audited, and a
//! takeover is audited as `takeover`. The database outage cases (fail
//! fast, the completer) need the TCP proxy of `health_db`.

use std::time::Duration;

use account_link_service::emulator::{Fault, FaultKind};
use account_link_service::grpc::frame;
use account_link_service::proto::pb;
use prost::Message;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{SOURCE, TARGET, TestApp, raw_grpc_status, reason, spawn_app};

const CREATE_PATH: &str = "/accountlink.v1.AccountLinkService/CreateAccountLinkInvitation";

fn create_request(token: &str) -> pb::CreateAccountLinkInvitationRequest {
    pb::CreateAccountLinkInvitationRequest {
        account_id: SOURCE.into(),
        target_account_id: TARGET.into(),
        client_token: token.into(),
    }
}

/// The answer's `x-request-id`, which must be the audited one.
fn request_id(status: &tonic::Status) -> String {
    status
        .metadata()
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id on {status:?}"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Asserts that `status` is DEADLINE_EXCEEDED with RetryInfo and the
/// request id of the one audit event, which says the same.
async fn assert_audited_deadline(app: &TestApp, status: &tonic::Status) {
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(status), "DEADLINE_EXCEEDED");
    let details = status.check_error_details().unwrap();
    assert!(details.retry_info().is_some(), "RetryInfo: {details:?}");
    let events = app.audit_events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].grpc_code, "DEADLINE_EXCEEDED");
    assert_eq!(events[0].request_id, request_id(status));
}

#[tokio::test]
async fn a_caller_grpc_timeout_is_answered_deadline_exceeded_as_audited_over_raw_http2() {
    let app = spawn_app().await;
    app.fault(FaultKind::Latency { millis: 2_500 }, 1);
    let status = raw_grpc_status(
        &app,
        CREATE_PATH,
        &[("grpc-timeout", "500m")],
        frame(&create_request("raw-timeout").encode_to_vec()),
    )
    .await;
    assert_audited_deadline(&app, &status).await;
}

#[tokio::test]
async fn a_caller_grpc_timeout_is_answered_deadline_exceeded_as_audited_through_tonic() {
    let app = spawn_app().await;
    app.fault(FaultKind::Latency { millis: 2_500 }, 1);
    let mut request = tonic::Request::new(create_request("tonic-timeout"));
    request.set_timeout(Duration::from_millis(500));
    let status = app
        .client
        .clone()
        .create_account_link_invitation(request)
        .await
        .unwrap_err();
    assert_audited_deadline(&app, &status).await;
}

#[tokio::test]
async fn compressed_messages_are_refused_with_error_info_and_audited() {
    let app = spawn_app().await;
    let mut compressed = frame(&create_request("").encode_to_vec()).to_vec();
    compressed[0] = 1;
    let cases = [
        (
            &[("grpc-encoding", "gzip")][..],
            Code::Unimplemented,
            "COMPRESSION_UNSUPPORTED",
        ),
        (&[][..], Code::InvalidArgument, "MALFORMED_REQUEST"),
        (
            &[("grpc-encoding", "identity")][..],
            Code::InvalidArgument,
            "MALFORMED_REQUEST",
        ),
    ];
    for (i, (headers, code, why)) in cases.iter().enumerate() {
        let status = raw_grpc_status(&app, CREATE_PATH, headers, compressed.clone().into()).await;
        assert_eq!(status.code(), *code, "{headers:?}: {status:?}");
        assert_eq!(reason(&status), *why, "{headers:?}");
        let events = app.audit_events().await;
        assert_eq!(events.len(), i + 1, "one audit event each: {events:?}");
        let event = events.last().unwrap();
        assert_eq!(event.request_id, request_id(&status));
        assert_eq!(event.error_reason.as_deref(), Some(*why));
        assert_eq!(
            event.request_parameters,
            serde_json::json!({ "malformed": true })
        );
    }
    assert!(app.calls().is_empty(), "no AWS call");
    // The flag is per message: an uncompressed one under `grpc-encoding:
    // gzip` is served.
    let status = raw_grpc_status(
        &app,
        CREATE_PATH,
        &[("grpc-encoding", "gzip")],
        frame(&create_request("plain-under-gzip").encode_to_vec()),
    )
    .await;
    assert_eq!(status.code(), Code::Ok, "{status:?}");
    assert_eq!(app.emu().links().len(), 1);
}

#[tokio::test]
async fn a_takeover_is_audited_as_takeover_not_new() {
    let app = spawn_app().await;
    app.emu().inject_fault(
        Fault::new(FaultKind::InternalServerError, 1).only_for("CreateAccountLinkInvitation"),
    );
    let err = app
        .create(SOURCE, TARGET, "take-me-over")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    app.create(SOURCE, TARGET, "take-me-over")
        .await
        .expect("the retry re-drives the retryable record");
    let outcomes: Vec<String> = app
        .audit_events()
        .await
        .into_iter()
        .map(|e| e.idempotency_outcome)
        .collect();
    assert_eq!(outcomes, ["new", "takeover"]);
    // ListAuditEvents filters on it.
    let page = account_link_service::proto::pb::audit_service_client::AuditServiceClient::connect(
        format!("http://{}", app.addr),
    )
    .await
    .unwrap()
    .list_audit_events(pb::ListAuditEventsRequest {
        idempotency_outcome: "takeover".into(),
        ..Default::default()
    })
    .await
    .expect("takeover is a known outcome")
    .into_inner();
    assert_eq!(page.audit_events.len(), 1);
    assert_eq!(page.audit_events[0].idempotency_outcome, "takeover");
}

#[tokio::test]
async fn a_retryable_record_its_caller_abandons_is_completed_by_the_completer() {
    let app = crate::helpers::spawn_app_with(|args| {
        args.upstream_timeout_secs = 1;
        args.client_token_lease_secs = 2;
        args.completer_interval_ms = 100;
        args.completer_rate_per_sec = 100;
    })
    .await;
    app.emu().inject_fault(
        Fault::new(FaultKind::InternalServerError, 1).only_for("CreateAccountLinkInvitation"),
    );
    let err = app.create(SOURCE, TARGET, "abandoned").await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(app.emu().links().is_empty(), "the 5xx applied nothing");
    // No retry from the caller: the completer takes the record once it has
    // been left alone for a lease (2 s).
    let recovered = crate::helpers::wait_for_audit(&app, Duration::from_secs(15), |e| {
        e.principal == "system:completer"
    })
    .await;
    assert_eq!(recovered.idempotency_outcome, "recovered");
    assert_eq!(recovered.grpc_code, "OK");
    assert_eq!(recovered.method, "CreateAccountLinkInvitation");
    assert_eq!(recovered.account_id.as_deref(), Some(SOURCE));
    assert_eq!(recovered.request_parameters["on_behalf_of"], "anonymous");
    let links = app.emu().links();
    assert_eq!(links.len(), 1);
    assert_eq!(
        recovered.response_elements.as_ref().unwrap()["AccountLink"]["AccountLinkId"],
        links[0].account_link_id.as_str()
    );
    // Both drives sent the same upstream ClientToken.
    let tokens: Vec<_> = app.calls().into_iter().map(|c| c.client_token).collect();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0], tokens[1]);
    // The caller who comes back later gets the recovered outcome replayed.
    let replayed = app.create(SOURCE, TARGET, "abandoned").await.unwrap();
    assert_eq!(
        replayed.account_link.unwrap().account_link_id,
        links[0].account_link_id
    );
    assert_eq!(app.calls().len(), 2, "the replay made no AWS call");
}
