//! Every field's validation failure (DESIGN §4): INVALID_ARGUMENT with one
//! BadRequest violation per bad field, ErrorInfo, an audit event, and no
//! upstream call.

use account_link_service::proto::pb;
use tonic::{Code, Status};

use crate::helpers::{SOURCE, TARGET, TestApp, reason, spawn_app, violated_fields};

const TOO_LONG_TOKEN: &str =
    "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt";

async fn assert_refused(app: &TestApp, result: Result<(), Status>, fields: &[&str]) {
    let status = result.expect_err("validation fails");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), fields, "{status:?}");
    assert_eq!(reason(&status), "INVALID_ARGUMENT");
    assert!(status.metadata().get("x-request-id").is_some());
    assert!(
        app.calls().is_empty(),
        "no upstream call: {:?}",
        app.calls()
    );
}

#[tokio::test]
async fn create_fields_are_validated() {
    let app = spawn_app().await;
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (SOURCE, "", "", &["target_account_id"]),
        (SOURCE, "12345", "", &["target_account_id"]),
        (SOURCE, "22222222222a", "", &["target_account_id"]),
        (
            SOURCE,
            "２２２２２２２２２２２２",
            "",
            &["target_account_id"],
        ),
        ("1111", TARGET, "", &["account_id"]),
        (SOURCE, TARGET, TOO_LONG_TOKEN, &["client_token"]),
        (SOURCE, TARGET, "tab\there", &["client_token"]),
        (SOURCE, TARGET, "naïve", &["client_token"]),
        (
            "x",
            "y",
            TOO_LONG_TOKEN,
            &["account_id", "client_token", "target_account_id"],
        ),
    ];
    for (account, target, token, fields) in cases {
        assert_refused(
            &app,
            app.create(account, target, token).await.map(drop),
            fields,
        )
        .await;
    }
    assert_eq!(app.audit_events().await.len(), cases.len());
}

#[tokio::test]
async fn link_id_is_validated_for_accept_reject_delete() {
    let app = spawn_app().await;
    let bad_ids = [
        "",
        "link-1234567",
        "lnk-12345678",
        "link-1234567890123456789012345",
        "link-1234\u{0}5678",
        "link-12345678\u{0430}",
        &"x".repeat(10_000),
    ];
    for id in bad_ids {
        assert_refused(
            &app,
            app.accept(TARGET, id, "").await.map(drop),
            &["link_id"],
        )
        .await;
        assert_refused(
            &app,
            app.reject(TARGET, id, "").await.map(drop),
            &["link_id"],
        )
        .await;
        assert_refused(
            &app,
            app.delete(SOURCE, id, "").await.map(drop),
            &["link_id"],
        )
        .await;
    }
    assert_refused(
        &app,
        app.accept("abc", "link-12345678", "\u{7f}").await.map(drop),
        &["account_id", "client_token"],
    )
    .await;
    let events = app.audit_events().await;
    assert_eq!(events.len(), bad_ids.len() * 3 + 1);
    assert!(
        events
            .iter()
            .all(|e| e.grpc_code == "INVALID_ARGUMENT" && e.idempotency_outcome == "none")
    );
    // A 10 000-character field is kept in the audit trail only truncated.
    let long = events
        .iter()
        .map(|e| {
            e.request_parameters["link_id"]
                .as_str()
                .unwrap()
                .chars()
                .count()
        })
        .max();
    assert_eq!(long, Some(257));
}

#[tokio::test]
async fn get_and_list_fields_are_validated() {
    let app = spawn_app().await;
    let get = |link_id: &str, linked: &str| pb::GetAccountLinkRequest {
        account_id: SOURCE.into(),
        link_id: link_id.into(),
        linked_account_id: linked.into(),
    };
    for (req, fields) in [
        (get("", ""), vec!["link_id"]),
        (get("nope", ""), vec!["link_id"]),
        (get("", "12"), vec!["linked_account_id"]),
        (get("bad", "bad"), vec!["link_id", "linked_account_id"]),
    ] {
        let result = app.client.clone().get_account_link(req).await.map(drop);
        assert_refused(&app, result, &fields).await;
    }
    let list = |filter: Vec<i32>, page_size: i32, page_token: &str| pb::ListAccountLinksRequest {
        account_id: SOURCE.into(),
        link_status_filter: filter,
        page_size,
        page_token: page_token.into(),
    };
    for (req, fields) in [
        (list(vec![0], 0, ""), vec!["link_status_filter[0]"]),
        (list(vec![1, 42], 0, ""), vec!["link_status_filter[1]"]),
        (list(vec![], -1, ""), vec!["page_size"]),
        (list(vec![], 0, &"p".repeat(2049)), vec!["page_token"]),
        (list(vec![], 0, "with space"), vec!["page_token"]),
    ] {
        let result = app.client.clone().list_account_links(req).await.map(drop);
        assert_refused(&app, result, &fields).await;
    }
}

#[tokio::test]
async fn a_missing_account_id_is_refused_when_several_accounts_are_possible() {
    // --dev accepts any account, so it cannot pick one for the caller.
    let app = spawn_app().await;
    assert_refused(
        &app,
        app.create("", TARGET, "").await.map(drop),
        &["account_id"],
    )
    .await;
}

#[tokio::test]
async fn oversized_messages_are_refused_by_the_transport() {
    let app = spawn_app().await;
    let err = app
        .create(SOURCE, &"9".repeat(64 * 1024), "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(app.calls().is_empty());
    // The service is still up.
    app.create(SOURCE, TARGET, "").await.expect("still serving");
}
