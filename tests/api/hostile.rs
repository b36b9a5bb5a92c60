//! Hostile input sent raw over HTTP/2, not through the generated client:
//! malformed protobuf, invalid UTF-8, huge fields, control characters and
//! look-alikes. Each gets INVALID_ARGUMENT (or RESOURCE_EXHAUSTED) and an
//! audit event, never a panic; the service stays up.

use account_link_service::grpc::frame;
use account_link_service::proto::pb;
use bytes::Bytes;
use prost::Message;
use tonic::Code;

use crate::helpers::{SOURCE, TARGET, TestApp, raw_grpc_call, spawn_app};

async fn raw_call(app: &TestApp, method: &str, body: Bytes) -> (Code, String) {
    raw_grpc_call(
        app,
        &format!("/accountlink.v1.AccountLinkService/{method}"),
        body,
    )
    .await
}

#[tokio::test]
async fn malformed_bytes_are_invalid_argument_and_audited() {
    let app = spawn_app().await;
    let valid = pb::CreateAccountLinkInvitationRequest {
        account_id: SOURCE.into(),
        target_account_id: TARGET.into(),
        client_token: String::new(),
    }
    .encode_to_vec();
    let mut truncated = valid.clone();
    truncated.pop();
    let cases: Vec<(&str, Bytes)> = vec![
        ("garbage", frame(&[0xff, 0xff, 0xff, 0xff])),
        ("truncated", frame(&truncated)),
        ("wrong wire type", frame(&[0x10, 0x01])), // field 2 as a varint
        ("invalid utf-8", frame(&[0x12, 0x02, 0xc3, 0x28])),
        ("short frame", Bytes::from_static(&[0, 0, 0])),
        ("length lies", Bytes::from_static(&[0, 0, 0, 0, 9, 1])),
        ("two frames", [frame(&valid), frame(&valid)].concat().into()),
    ];
    for (name, body) in &cases {
        let (code, message) = raw_call(&app, "CreateAccountLinkInvitation", body.clone()).await;
        assert_eq!(code, Code::InvalidArgument, "{name}: {message}");
    }
    let (code, _) = raw_call(&app, "GetAccountLink", frame(&[0x12, 0x02, 0xc3, 0x28])).await;
    assert_eq!(code, Code::InvalidArgument);
    let (code, _) = raw_call(&app, "ListAccountLinks", frame(&vec![0x22; 100_000])).await;
    assert_eq!(code, Code::ResourceExhausted, "oversized");

    assert!(app.calls().is_empty(), "no upstream call");
    let events = app.audit_events().await;
    assert_eq!(events.len(), cases.len() + 2, "every refusal audited");
    assert!(
        events
            .iter()
            .take(cases.len() + 1)
            .all(|e| e.error_reason.as_deref() == Some("MALFORMED_REQUEST"))
    );
    assert_eq!(
        events.last().unwrap().error_reason.as_deref(),
        Some("MESSAGE_TOO_LARGE")
    );
    assert!(
        events
            .iter()
            .all(|e| e.request_parameters == serde_json::json!({"malformed": true}))
    );

    // Still serving, through a raw call and the generated client.
    let (code, _) = raw_call(&app, "CreateAccountLinkInvitation", frame(&valid)).await;
    assert_eq!(code, Code::Ok);
}

#[tokio::test]
async fn hostile_strings_are_refused_field_by_field() {
    let app = spawn_app().await;
    let hostile_link_ids = [
        "x".repeat(10_000),
        "link-1234\u{0007}5678".to_owned(),
        "link-12345678\u{202e}".to_owned(),
        "link-1234567\u{0455}".to_owned(), // Cyrillic dze looks like s
        "lіnk-12345678".to_owned(),        // Cyrillic i
        "link-12345678\r\n".to_owned(),
    ];
    for link_id in &hostile_link_ids {
        let err = app.accept(TARGET, link_id, "").await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{link_id:?}");
    }
    let hostile_tokens = [
        "t".repeat(10_000),
        "tok\u{0000}en".to_owned(),
        "tok\u{ff10}".to_owned(),
        "\u{feff}token".to_owned(),
    ];
    for token in &hostile_tokens {
        let err = app.create(SOURCE, TARGET, token).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{token:?}");
        assert_eq!(crate::helpers::violated_fields(&err), ["client_token"]);
    }
    assert!(app.calls().is_empty());
    assert_eq!(
        app.audit_events().await.len(),
        hostile_link_ids.len() + hostile_tokens.len()
    );
}
