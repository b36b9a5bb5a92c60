//! The audit trail: exactly one event per RPC with DESIGN §6's fields.

use account_link_service::proto::pb;
use sha2::{Digest, Sha256};
use tonic::Request;
use tonic::metadata::MetadataValue;

use crate::helpers::{SOURCE, TARGET, spawn_app};

#[tokio::test]
async fn every_rpc_writes_exactly_one_event_with_the_right_fields() {
    let app = spawn_app().await;
    let token = "audit-token-secret-1";

    // 1. A successful mutation with a caller-supplied request id.
    let mut request = Request::new(pb::CreateAccountLinkInvitationRequest {
        account_id: SOURCE.into(),
        target_account_id: TARGET.into(),
        client_token: token.into(),
    });
    request
        .metadata_mut()
        .insert("x-request-id", MetadataValue::from_static("req-audit-1"));
    let response = app
        .client
        .clone()
        .create_account_link_invitation(request)
        .await
        .unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "req-audit-1"
    );
    let link_id = response.into_inner().account_link.unwrap().account_link_id;
    // 2. A read.
    app.get(TARGET, &link_id).await.unwrap();
    // 3. A validation failure.
    app.accept(TARGET, "bad", "").await.unwrap_err();
    // 4. An AWS error.
    app.accept(SOURCE, &link_id, "").await.unwrap_err();
    // 5. A replay.
    app.create(SOURCE, TARGET, token).await.unwrap();

    let events = app.audit_events().await;
    assert_eq!(events.len(), 5, "one event per rpc: {events:#?}");
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5],
        "gapless seq"
    );
    let calls = app.calls();
    assert_eq!(calls.len(), 3, "create, get, accept reached the emulator");

    let create = &events[0];
    assert_eq!(create.method, "CreateAccountLinkInvitation");
    assert!(!create.read_only);
    assert_eq!(create.principal, "anonymous");
    assert_eq!(create.source_ip.as_deref(), Some("127.0.0.1"));
    assert!(
        create
            .user_agent
            .as_deref()
            .is_some_and(|ua| ua.contains("tonic")),
        "{:?}",
        create.user_agent
    );
    assert_eq!(create.request_id, "req-audit-1");
    assert_eq!(create.account_id.as_deref(), Some(SOURCE));
    assert_eq!(
        create.request_parameters,
        serde_json::json!({"account_id": SOURCE, "target_account_id": TARGET})
    );
    let elements = create
        .response_elements
        .as_ref()
        .expect("mutation response recorded");
    assert_eq!(elements["AccountLink"]["AccountLinkId"], link_id.as_str());
    assert_eq!(
        elements["AccountLink"]["AccountLinkStatus"],
        "PENDING_ACCEPTANCE_BY_TARGET_ACCOUNT"
    );
    assert_eq!(create.grpc_code, "OK");
    assert_eq!(create.error_reason, None);
    assert_eq!(
        create.upstream_request_id.as_deref(),
        Some(calls[0].request_id.as_str())
    );
    assert_eq!(create.upstream_attempts, 1);
    assert_eq!(create.idempotency_outcome, "new");
    assert_eq!(
        create.client_token_sha256.as_deref(),
        Some(hex::encode(Sha256::digest(token)).as_str())
    );
    assert!(create.duration_us > 0);

    let get = &events[1];
    assert_eq!(get.method, "GetAccountLink");
    assert!(get.read_only);
    assert_eq!(get.account_id.as_deref(), Some(TARGET));
    assert_eq!(get.response_elements, None, "reads record no response");
    assert_eq!(
        get.upstream_request_id.as_deref(),
        Some(calls[1].request_id.as_str())
    );
    assert_eq!(get.idempotency_outcome, "none");
    assert_eq!(get.client_token_sha256, None);

    let invalid = &events[2];
    assert_eq!(invalid.grpc_code, "INVALID_ARGUMENT");
    assert_eq!(invalid.error_reason.as_deref(), Some("INVALID_ARGUMENT"));
    assert!(
        invalid
            .error_message
            .as_deref()
            .unwrap()
            .contains("link_id")
    );
    assert_eq!(
        invalid.account_id, None,
        "not resolved before validation failed"
    );
    assert_eq!(invalid.upstream_attempts, 0);
    assert_eq!(invalid.upstream_request_id, None);
    assert_eq!(invalid.idempotency_outcome, "none");

    let denied = &events[3];
    assert_eq!(denied.grpc_code, "PERMISSION_DENIED");
    assert_eq!(denied.error_reason.as_deref(), Some("AWS_ACCESS_DENIED"));
    assert_eq!(
        denied.upstream_request_id.as_deref(),
        Some(calls[2].request_id.as_str())
    );
    assert_eq!(denied.response_elements, None);
    assert_eq!(denied.idempotency_outcome, "new");

    let replay = &events[4];
    assert_eq!(replay.idempotency_outcome, "replayed");
    assert_eq!(replay.grpc_code, "OK");
    assert_eq!(replay.upstream_attempts, 0);
    assert_eq!(replay.response_elements, create.response_elements);
    assert_ne!(
        replay.request_id, create.request_id,
        "a generated request id per rpc"
    );

    // The client token itself is stored nowhere.
    for table in ["audit_event", "client_token_record"] {
        let rows = crate::helpers::rows_as_text(&app.store, table).await;
        assert!(!rows.is_empty());
        assert!(
            !rows.iter().any(|row| row.contains(token)),
            "{table} holds the raw client token"
        );
    }
}

#[tokio::test]
async fn audit_rows_cannot_be_changed_or_deleted() {
    let app = spawn_app().await;
    app.create(SOURCE, TARGET, "").await.unwrap();
    let mut statements = vec![
        "update audit_event set principal = 'mallory'",
        "delete from audit_event",
    ];
    if crate::BACKEND == crate::helpers::Backend::Postgres {
        // SQLite has no TRUNCATE (its truncate optimization is off while a
        // delete trigger exists).
        statements.push("truncate audit_event");
    }
    for sql in statements {
        let err = crate::helpers::execute(&app.store, sql)
            .await
            .expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(app.audit_events().await.len(), 1);
}
