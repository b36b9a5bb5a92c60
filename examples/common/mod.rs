//! What the benchmark examples share (each includes this file with
//! `#[path = "common/mod.rs"] mod common;`).

use account_link_service::audit::now_micros;
use account_link_service::store::{AuditEvent, IdempotencyOutcome};

/// An audit event like the service writes for a read (GetAccountLink by
/// `svc-bench`), numbered `i` in its request id, sent by `user_agent`.
pub(crate) fn read_event(i: usize, user_agent: &str) -> AuditEvent {
    AuditEvent {
        event_id: uuid::Uuid::new_v4(),
        event_time: now_micros(),
        method: "GetAccountLink".into(),
        read_only: true,
        principal: "svc-bench".into(),
        source_ip: Some("127.0.0.1".into()),
        user_agent: Some(user_agent.into()),
        request_id: format!("bench-append-{i}"),
        account_id: Some("100000000007".into()),
        request_parameters: serde_json::json!({
            "account_id": "100000000007",
            "link_id": "link-0000beef",
            "linked_account_id": "",
        }),
        response_elements: None,
        grpc_code: "OK".into(),
        error_reason: None,
        error_message: None,
        upstream_request_id: Some(uuid::Uuid::new_v4().to_string()),
        upstream_attempts: 1,
        idempotency_outcome: IdempotencyOutcome::None,
        client_token_sha256: None,
        duration_us: 1234,
    }
}
