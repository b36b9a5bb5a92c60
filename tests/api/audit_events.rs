//! `AuditService.ListAuditEvents`: filters, newest-first order, AIP-158
//! paging with filter-bound tokens, page-size rules, validation, the policy,
//! and the call's own audit event. Expected answers are computed from the
//! `audit_event` table read directly, just before each call.

use account_link_service::grpc::frame;
use account_link_service::proto::pb;
use account_link_service::proto::pb::audit_service_client::AuditServiceClient;
use account_link_service::store::{AnyStore, AuditEvent, IdempotencyOutcome, Store};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{
    AuditRow, OTHER, SOURCE, TARGET, TestApp, bearer, raw_grpc_call, reason, sha256_hex,
    spawn_app_with, violated_fields, write_temp,
};

const ALICE: &str = "alice-token-s3cret";
const BOB: &str = "bob-token-s3cret";
const READER: &str = "reader-token-s3cret";
const AUDITOR: &str = "auditor-token-s3cret";

/// Tokens for alice and bob; `--dev` without a policy allows everything.
fn dev_config() -> String {
    format!(
        r#"
[[auth.tokens]]
principal = "alice"
sha256 = "{alice}"

[[auth.tokens]]
principal = "bob"
sha256 = "{bob}"
"#,
        alice = sha256_hex(ALICE),
        bob = sha256_hex(BOB),
    )
}

async fn dev_app() -> TestApp {
    let path = write_temp("config.toml", dev_config().as_bytes());
    spawn_app_with(|args| args.config = Some(path)).await
}

async fn audit_client(app: &TestApp) -> AuditServiceClient<Channel> {
    AuditServiceClient::connect(format!("http://{}", app.addr))
        .await
        .expect("audit client connects")
}

async fn list(
    app: &TestApp,
    request: pb::ListAuditEventsRequest,
) -> Result<pb::ListAuditEventsResponse, Status> {
    audit_client(app)
        .await
        .list_audit_events(request)
        .await
        .map(tonic::Response::into_inner)
}

fn seqs(events: &[pb::AuditEvent]) -> Vec<i64> {
    events.iter().map(|e| e.seq).collect()
}

/// The seqs of the stored events matching `keep`, newest first.
async fn expected(app: &TestApp, keep: impl Fn(&AuditRow) -> bool) -> Vec<i64> {
    let mut rows: Vec<i64> = app
        .audit_events()
        .await
        .iter()
        .filter(|r| keep(r))
        .map(|r| r.seq)
        .collect();
    rows.reverse();
    rows
}

fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap(),
    }
}

fn link_of(row: &AuditRow) -> Option<String> {
    let request = row.request_parameters["link_id"]
        .as_str()
        .map(str::to_owned);
    let response = row.response_elements.as_ref().and_then(|r| {
        r["AccountLink"]["AccountLinkId"]
            .as_str()
            .map(str::to_owned)
    });
    request.filter(|l| !l.is_empty()).or(response)
}

/// A varied trail: three principals, successes, AWS errors, validation
/// errors, a replay and a client-token mismatch. Returns the two link ids.
async fn varied_trail(app: &TestApp) -> (String, String) {
    let mut client = app.client.clone();
    let create =
        |account: &str, target: &str, token: &str| pb::CreateAccountLinkInvitationRequest {
            account_id: account.into(),
            target_account_id: target.into(),
            client_token: token.into(),
        };
    let first = client
        .create_account_link_invitation(bearer(create(SOURCE, TARGET, "tok-1"), ALICE))
        .await
        .unwrap()
        .into_inner()
        .account_link
        .unwrap()
        .account_link_id;
    let second = client
        .create_account_link_invitation(bearer(create(SOURCE, OTHER, "tok-2"), BOB))
        .await
        .unwrap()
        .into_inner()
        .account_link
        .unwrap()
        .account_link_id;
    // A replay and a mismatch of alice's token.
    client
        .create_account_link_invitation(bearer(create(SOURCE, TARGET, "tok-1"), ALICE))
        .await
        .unwrap();
    let err = client
        .create_account_link_invitation(bearer(create(SOURCE, OTHER, "tok-1"), ALICE))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // Anonymous calls: accept, get, a NOT_FOUND and a validation error.
    app.accept(TARGET, &first, "").await.unwrap();
    app.get(TARGET, &first).await.unwrap();
    let err = app.get(TARGET, "link-0000000000000000").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = app.get(TARGET, "bad").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    app.list(OTHER, &[], 0, "").await.unwrap();
    (first, second)
}

#[tokio::test]
async fn each_filter_narrows_the_trail_and_answers_newest_first() {
    let app = dev_app().await;
    let (first, second) = varied_trail(&app).await;
    let total = app.audit_events().await.len();

    // Each case: the request, and which stored rows it must return.
    type Keep = Box<dyn Fn(&AuditRow) -> bool>;
    let rows = app.audit_events().await;
    let (t_start, t_end) = (rows[2].event_time, rows[6].event_time);
    let (first_link, second_link) = (first.clone(), second.clone());
    let cases: Vec<(&str, pb::ListAuditEventsRequest, Keep)> = vec![
        (
            "method",
            pb::ListAuditEventsRequest {
                method: "CreateAccountLinkInvitation".into(),
                ..Default::default()
            },
            Box::new(|r| r.method == "CreateAccountLinkInvitation"),
        ),
        (
            "principal",
            pb::ListAuditEventsRequest {
                principal: "alice".into(),
                ..Default::default()
            },
            Box::new(|r| r.principal == "alice"),
        ),
        (
            "account_id",
            pb::ListAuditEventsRequest {
                account_id: TARGET.into(),
                ..Default::default()
            },
            Box::new(|r| r.account_id.as_deref() == Some(TARGET)),
        ),
        (
            "link_id (request or response)",
            pb::ListAuditEventsRequest {
                link_id: first.clone(),
                ..Default::default()
            },
            Box::new(move |r| link_of(r).as_deref() == Some(first_link.as_str())),
        ),
        (
            "link_id of a link only created",
            pb::ListAuditEventsRequest {
                link_id: second.clone(),
                ..Default::default()
            },
            Box::new(move |r| link_of(r).as_deref() == Some(second_link.as_str())),
        ),
        (
            "grpc_code",
            pb::ListAuditEventsRequest {
                grpc_code: "NOT_FOUND".into(),
                ..Default::default()
            },
            Box::new(|r| r.grpc_code == "NOT_FOUND"),
        ),
        (
            "idempotency_outcome",
            pb::ListAuditEventsRequest {
                idempotency_outcome: "mismatch".into(),
                ..Default::default()
            },
            Box::new(|r| r.idempotency_outcome == "mismatch"),
        ),
        (
            "time range [start, end)",
            pb::ListAuditEventsRequest {
                start_time: Some(timestamp(t_start)),
                end_time: Some(timestamp(t_end)),
                ..Default::default()
            },
            Box::new(move |r| r.event_time >= t_start && r.event_time < t_end),
        ),
        (
            "combined",
            pb::ListAuditEventsRequest {
                principal: "alice".into(),
                method: "CreateAccountLinkInvitation".into(),
                grpc_code: "OK".into(),
                idempotency_outcome: "replayed".into(),
                account_id: SOURCE.into(),
                ..Default::default()
            },
            Box::new(|r| {
                r.principal == "alice"
                    && r.method == "CreateAccountLinkInvitation"
                    && r.grpc_code == "OK"
                    && r.idempotency_outcome == "replayed"
                    && r.account_id.as_deref() == Some(SOURCE)
            }),
        ),
    ];
    for (name, request, keep) in cases {
        let want = expected(&app, keep).await;
        assert!(!want.is_empty(), "{name}: the trail has matching events");
        assert!(want.len() < total, "{name}: the filter narrows");
        let page = list(&app, request).await.expect(name);
        assert_eq!(seqs(&page.audit_events), want, "{name}");
        assert!(page.next_page_token.is_empty(), "{name}: one page");
    }

    // No filter: everything, strictly newest first.
    let want = expected(&app, |_| true).await;
    let page = list(&app, pb::ListAuditEventsRequest::default())
        .await
        .unwrap();
    assert_eq!(seqs(&page.audit_events), want);
    assert!(want.windows(2).all(|w| w[0] > w[1]));
    // A filter nothing matches.
    let page = list(
        &app,
        pb::ListAuditEventsRequest {
            principal: "nobody".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(page.audit_events.is_empty() && page.next_page_token.is_empty());
}

#[tokio::test]
async fn pages_follow_tokens_that_are_bound_to_their_filters() {
    let app = dev_app().await;
    for _ in 0..20 {
        app.get(SOURCE, "bad").await.unwrap_err();
    }
    let filter = || pb::ListAuditEventsRequest {
        method: "GetAccountLink".into(),
        page_size: 6,
        ..Default::default()
    };
    let want = expected(&app, |r| r.method == "GetAccountLink").await;
    assert_eq!(want.len(), 20);

    let mut got = Vec::new();
    let mut sizes = Vec::new();
    let mut token = String::new();
    let mut second_token = String::new();
    loop {
        let page = list(
            &app,
            pb::ListAuditEventsRequest {
                page_token: token.clone(),
                ..filter()
            },
        )
        .await
        .unwrap();
        sizes.push(page.audit_events.len());
        got.extend(seqs(&page.audit_events));
        if page.next_page_token.is_empty() {
            break;
        }
        if second_token.is_empty() {
            second_token = page.next_page_token.clone();
        }
        token = page.next_page_token;
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(sizes, [6, 6, 6, 2]);
    assert_eq!(got, want, "every event once, newest first");

    // Unfiltered paging is stable although every call appends an event.
    let first = list(
        &app,
        pb::ListAuditEventsRequest {
            page_size: 5,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let next = list(
        &app,
        pb::ListAuditEventsRequest {
            page_size: 5,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        seqs(&next.audit_events)[0],
        seqs(&first.audit_events)[4] - 1,
        "page 2 continues where page 1 ended"
    );

    // AIP-158: the page size may change between pages ...
    let resized = list(
        &app,
        pb::ListAuditEventsRequest {
            page_size: 100,
            page_token: second_token.clone(),
            ..filter()
        },
    )
    .await
    .unwrap();
    assert_eq!(seqs(&resized.audit_events), want[6..]);
    // ... the filters may not.
    for changed in [
        pb::ListAuditEventsRequest {
            method: "ListAccountLinks".into(),
            ..filter()
        },
        pb::ListAuditEventsRequest {
            principal: "anonymous".into(),
            ..filter()
        },
        pb::ListAuditEventsRequest {
            method: String::new(),
            ..filter()
        },
    ] {
        let err = list(
            &app,
            pb::ListAuditEventsRequest {
                page_token: second_token.clone(),
                ..changed
            },
        )
        .await
        .unwrap_err();
        assert_eq!(violated_fields(&err), ["page_token"]);
        assert!(err.message().contains("different filters"), "{err:?}");
    }
    // Tokens are opaque: anything else is refused before any SQL.
    for forged in [
        "1",
        "' or 1=1 --",
        "0100000000000000050000000000000000000000000000000000",
        &second_token[..second_token.len() - 1],
    ] {
        let err = list(
            &app,
            pb::ListAuditEventsRequest {
                page_token: forged.into(),
                ..filter()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(violated_fields(&err), ["page_token"], "{forged}");
    }
}

fn synthetic_event(i: usize) -> AuditEvent {
    AuditEvent {
        event_id: uuid::Uuid::new_v4(),
        event_time: account_link_service::audit::now_micros(),
        method: "GetAccountLink".into(),
        read_only: true,
        principal: "loader".into(),
        source_ip: None,
        user_agent: None,
        request_id: format!("synthetic-{i}"),
        account_id: Some(SOURCE.into()),
        request_parameters: serde_json::json!({ "account_id": SOURCE }),
        response_elements: None,
        grpc_code: "OK".into(),
        error_reason: None,
        error_message: None,
        upstream_request_id: None,
        upstream_attempts: 1,
        idempotency_outcome: IdempotencyOutcome::None,
        client_token_sha256: None,
        duration_us: 1,
    }
}

#[tokio::test]
async fn page_size_defaults_to_50_and_is_capped_at_1000() {
    let app = dev_app().await;
    let store = app.store.clone();
    for i in 0..1010 {
        store.append_audit_event(&synthetic_event(i)).await.unwrap();
    }
    let page = list(&app, pb::ListAuditEventsRequest::default())
        .await
        .unwrap();
    assert_eq!(page.audit_events.len(), 50);
    assert!(!page.next_page_token.is_empty());
    let page = list(
        &app,
        pb::ListAuditEventsRequest {
            page_size: 5000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.audit_events.len(), 1000);
    assert!(!page.next_page_token.is_empty());
    let rest = list(
        &app,
        pb::ListAuditEventsRequest {
            page_size: 5000,
            page_token: page.next_page_token,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // 1010 synthetic events and the first list call's event.
    assert_eq!(rest.audit_events.len(), 11);
    assert!(rest.next_page_token.is_empty());
    assert_eq!(rest.audit_events.last().unwrap().seq, 1);
}

#[tokio::test]
async fn bad_requests_are_invalid_argument_per_field_and_audited() {
    let app = dev_app().await;
    let ts = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let err = list(
        &app,
        pb::ListAuditEventsRequest {
            start_time: ts(2_000_000_000),
            end_time: ts(1_000_000_000),
            method: "DropEverything".into(),
            principal: "bad\u{7}principal".into(),
            account_id: "1234".into(),
            link_id: "not-a-link".into(),
            grpc_code: "not_found".into(),
            idempotency_outcome: "sometimes".into(),
            page_size: -5,
            page_token: "%%%".into(),
            provider: 9,
            invitation_id: "x\u{1}y".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&err), "INVALID_ARGUMENT");
    assert_eq!(
        violated_fields(&err),
        [
            "end_time",
            "method",
            "principal",
            "provider",
            "invitation_id",
            "account_id",
            "link_id",
            "grpc_code",
            "idempotency_outcome",
            "page_size",
            "page_token"
        ]
    );
    let err = list(
        &app,
        pb::ListAuditEventsRequest {
            start_time: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: -1,
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&err), ["start_time"]);

    let events = app.audit_events().await;
    assert_eq!(events.len(), 2, "each refusal is audited");
    let refused = &events[0];
    assert_eq!(refused.method, "ListAuditEvents");
    assert!(refused.read_only);
    assert_eq!(refused.grpc_code, "INVALID_ARGUMENT");
    assert_eq!(refused.error_reason.as_deref(), Some("INVALID_ARGUMENT"));
    assert_eq!(
        refused.account_id, None,
        "a filter is not an acting account"
    );
    assert_eq!(refused.request_parameters["account_id"], "1234");
    assert_eq!(refused.request_parameters["page_size"], -5);
    assert_eq!(
        refused.request_parameters["start_time"],
        "2033-05-18T03:33:20Z"
    );
    assert_eq!(refused.idempotency_outcome, "none");
    assert_eq!(
        events[1].request_parameters["start_time"],
        serde_json::json!({"seconds": 0, "nanos": -1})
    );
}

#[tokio::test]
async fn undecodable_requests_are_invalid_argument_and_audited() {
    let app = dev_app().await;
    // Field 4 (principal) holding invalid UTF-8.
    let (code, _) = raw_grpc_call(
        &app,
        "/accountlink.v1.AuditService/ListAuditEvents",
        frame(&[0x22, 0x02, 0xc3, 0x28]),
    )
    .await;
    assert_eq!(code, Code::InvalidArgument);
    let events = app.audit_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].method, "ListAuditEvents");
    assert_eq!(events[0].error_reason.as_deref(), Some("MALFORMED_REQUEST"));
    assert_eq!(
        events[0].request_parameters,
        serde_json::json!({"malformed": true})
    );
}

fn secured_config() -> String {
    format!(
        r#"
[[accounts]]
account_id = "111111111111"

[[auth.tokens]]
principal = "reader"
sha256 = "{reader}"

[[auth.tokens]]
principal = "auditor"
sha256 = "{auditor}"

[[auth.tokens]]
principal = "alice"
sha256 = "{alice}"

[[policy]]
principal = "reader"
methods = ["GetAccountLink", "ListAccountLinks"]
accounts = ["*"]

[[policy]]
principal = "auditor"
methods = ["ListAuditEvents"]
accounts = []

[[policy]]
principal = "alice"
methods = ["*"]
accounts = ["111111111111"]
"#,
        reader = sha256_hex(READER),
        auditor = sha256_hex(AUDITOR),
        alice = sha256_hex(ALICE),
    )
}

#[tokio::test]
async fn the_policy_decides_who_may_list_audit_events() {
    let path = write_temp("config.toml", secured_config().as_bytes());
    let app = spawn_app_with(|args| {
        args.dev = false;
        args.emulator_credentials = true;
        args.config = Some(path);
    })
    .await;
    let mut client = audit_client(&app).await;
    let request = || pb::ListAuditEventsRequest {
        account_id: SOURCE.into(),
        ..Default::default()
    };

    let err = client.list_audit_events(request()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(reason(&err), "CREDENTIALS_MISSING");

    let err = client
        .list_audit_events(bearer(request(), READER))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "CALLER_NOT_ALLOWED");

    let page = client
        .list_audit_events(bearer(pb::ListAuditEventsRequest::default(), AUDITOR))
        .await
        .expect("the auditor may list")
        .into_inner();
    assert_eq!(
        page.audit_events
            .iter()
            .map(|e| (e.principal.as_str(), e.grpc_code.as_str()))
            .collect::<Vec<_>>(),
        [
            ("reader", "PERMISSION_DENIED"),
            ("anonymous", "UNAUTHENTICATED")
        ]
    );
    // `*` covers ListAuditEvents; the account list does not apply to it.
    client
        .list_audit_events(bearer(request(), ALICE))
        .await
        .expect("methods = [\"*\"] may list");

    let events = app.audit_events().await;
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e.method == "ListAuditEvents"));
    assert_eq!(events[1].principal, "reader");
    assert_eq!(
        events[1].error_reason.as_deref(),
        Some("CALLER_NOT_ALLOWED")
    );
    assert_eq!(events[1].account_id, None);
    assert_eq!(events[2].principal, "auditor");
    assert_eq!(events[2].grpc_code, "OK");
}

#[tokio::test]
async fn the_call_is_itself_audited_and_events_carry_every_column() {
    let app = dev_app().await;
    let (link, _) = varied_trail(&app).await;
    let filter = pb::ListAuditEventsRequest {
        account_id: SOURCE.into(),
        link_id: link.clone(),
        ..Default::default()
    };
    let mut request = tonic::Request::new(filter.clone());
    request
        .metadata_mut()
        .insert("x-request-id", "audit-list-1".parse().unwrap());
    let response = audit_client(&app)
        .await
        .list_audit_events(request)
        .await
        .unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "audit-list-1"
    );

    let page = list(&app, pb::ListAuditEventsRequest::default())
        .await
        .unwrap();
    let newest = &page.audit_events[0];
    assert_eq!(newest.method, "ListAuditEvents");
    assert_eq!(newest.request_id, "audit-list-1");
    assert!(newest.read_only);
    assert_eq!(newest.grpc_code, "OK");
    assert_eq!(newest.account_id, None);
    assert_eq!(newest.idempotency_outcome, "none");
    assert_eq!(newest.upstream_attempts, 0);
    assert!(newest.response_elements.is_none());
    let params = newest.request_parameters.as_ref().unwrap();
    let field = |name: &str| match &params.fields[name].kind {
        Some(prost_types::value::Kind::StringValue(s)) => s.clone(),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(field("account_id"), SOURCE);
    assert_eq!(field("link_id"), link);

    // Every column, as stored.
    let rows = app.audit_events().await;
    for event in &page.audit_events {
        let row = rows.iter().find(|r| r.seq == event.seq).unwrap();
        let (prev, hash) = (&row.prev_hash, &row.row_hash);
        assert_eq!(event.event_id, row.event_id.to_string());
        assert_eq!(event.chain_id, "default");
        let t = event.event_time.as_ref().unwrap();
        assert_eq!(
            i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos),
            row.event_time.unix_timestamp_nanos()
        );
        assert_eq!(event.principal, row.principal);
        assert_eq!(event.source_ip, row.source_ip);
        assert_eq!(event.user_agent, row.user_agent);
        assert_eq!(event.request_id, row.request_id);
        assert_eq!(event.account_id, row.account_id);
        assert_eq!(event.read_only, row.read_only);
        assert_eq!(event.grpc_code, row.grpc_code);
        assert_eq!(event.error_reason, row.error_reason);
        assert_eq!(event.error_message, row.error_message);
        assert_eq!(event.upstream_request_id, row.upstream_request_id);
        assert_eq!(event.upstream_attempts, row.upstream_attempts);
        assert_eq!(event.idempotency_outcome, row.idempotency_outcome);
        assert_eq!(event.client_token_sha256, row.client_token_sha256);
        assert_eq!(event.duration_us, row.duration_us);
        assert_eq!(event.prev_hash, hex::encode(prev));
        assert_eq!(event.row_hash, hex::encode(hash));
        assert_eq!(
            event.response_elements.is_some(),
            row.response_elements.is_some()
        );
    }
    // The hashes chain from one event to the next, as `audit verify` checks.
    for pair in page.audit_events.windows(2) {
        assert_eq!(pair[0].prev_hash, pair[1].row_hash);
    }
    let create = page
        .audit_events
        .iter()
        .find(|e| e.method == "CreateAccountLinkInvitation" && e.grpc_code == "OK")
        .unwrap();
    let elements = create.response_elements.as_ref().unwrap();
    let Some(prost_types::value::Kind::StructValue(link_struct)) =
        &elements.fields["AccountLink"].kind
    else {
        panic!("AccountLink is an object: {elements:?}")
    };
    assert!(link_struct.fields.contains_key("AccountLinkId"));
}

#[tokio::test]
async fn health_and_reflection_know_the_audit_service() {
    let app = dev_app().await;
    let channel = Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "accountlink.v1.AuditService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};
    let ask = |request: MessageRequest| {
        let mut client = ServerReflectionClient::new(channel.clone());
        async move {
            let mut stream = client
                .server_reflection_info(tokio_stream::iter([ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(request),
                }]))
                .await
                .unwrap()
                .into_inner();
            let answer: ServerReflectionResponse = stream.next().await.unwrap().unwrap();
            answer.message_response.unwrap()
        }
    };
    let MessageResponse::ListServicesResponse(list) =
        ask(MessageRequest::ListServices(String::new())).await
    else {
        panic!("unexpected answer")
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "accountlink.v1.AuditService"),
        "{list:?}"
    );
    // The file and its imports (Struct, Timestamp) resolve, as grpcurl needs.
    for symbol in [
        "accountlink.v1.AuditService",
        "google.protobuf.Struct",
        "google.protobuf.Timestamp",
    ] {
        let answer = ask(MessageRequest::FileContainingSymbol(symbol.into())).await;
        assert!(
            matches!(answer, MessageResponse::FileDescriptorResponse(ref f) if !f.file_descriptor_proto.is_empty()),
            "{symbol}: {answer:?}"
        );
    }
}

/// PostgreSQL's `audit_event_hour` as stored and as recomputed from
/// `audit_event`: (hour, min_seq, max_seq, min_seq_from, max_seq_upto).
async fn hour_summary(pool: &sqlx::PgPool) -> (Vec<[i64; 5]>, Vec<[i64; 5]>) {
    let stored: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "select hour, min_seq, max_seq, min_seq_from, max_seq_upto \
         from audit_event_hour order by hour",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let recomputed: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "select hour, min_seq, max_seq, \
                min(min_seq) over (order by hour desc), max(max_seq) over (order by hour) \
         from (select floor(extract(epoch from event_time) / 3600)::bigint as hour, \
                      min(seq) as min_seq, max(seq) as max_seq \
               from audit_event group by 1) as h \
         order by hour",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let arrays = |rows: Vec<(i64, i64, i64, i64, i64)>| {
        rows.into_iter()
            .map(|(a, b, c, d, e)| [a, b, c, d, e])
            .collect()
    };
    (arrays(stored), arrays(recomputed))
}

#[tokio::test]
async fn time_ranges_are_exact_across_hours_and_late_events() {
    use time::Duration;
    let app = dev_app().await;
    let store = app.store.clone();
    let base = time::macros::datetime!(2020-01-01 00:00:00 UTC);
    // Six hours of events, 3 minutes apart, some on the hour exactly, and
    // every seventh one appended late: its time is one to three hours
    // before the events appended just before it.
    for i in 0..120_i64 {
        let mut at = base + Duration::minutes(3 * i);
        if i % 7 == 3 {
            at -= Duration::hours(1 + i % 3);
        }
        let mut event = synthetic_event(usize::try_from(i).unwrap());
        event.event_time = at;
        store.append_audit_event(&event).await.unwrap();
    }
    if let AnyStore::Postgres(pg) = &app.store {
        // PostgreSQL turns time ranges into seq ranges with this summary.
        let (stored, recomputed) = hour_summary(pg.pool()).await;
        assert!(stored.len() >= 6, "{stored:?}");
        assert_eq!(stored, recomputed, "the trigger keeps the summary exact");
    }

    let at = |minutes: i64| Some(base + Duration::minutes(minutes));
    let mut windows = vec![
        (at(-600), at(-300)),
        (at(-600), at(0)),
        (at(0), at(1)),
        (at(59), at(61)),
        (at(60), at(120)),
        (at(61), at(179)),
        (at(119), at(241)),
        (at(200), at(205)),
        (at(300), at(1000)),
        (at(400), at(500)),
        (at(0), at(0)),
        (None, at(60)),
        (None, at(181)),
        (at(180), None),
        (at(359), None),
    ];
    for k in 0..12 {
        windows.push((at(k * 25 - 7), at(k * 25 + 31)));
    }
    for (start, end) in windows {
        let want = expected(&app, |r| {
            start.is_none_or(|s| r.event_time >= s) && end.is_none_or(|e| r.event_time < e)
        })
        .await;
        let page = list(
            &app,
            pb::ListAuditEventsRequest {
                start_time: start.map(timestamp),
                end_time: end.map(timestamp),
                page_size: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(seqs(&page.audit_events), want, "[{start:?}, {end:?})");
    }
    // The calls above were appended at the current time: still exact. So
    // are concurrent appends, which share batches (one insert statement,
    // one trigger run, of several rows): some in the latest hour, some late
    // (two hours back).
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..48_usize {
        let store = store.clone();
        burst.spawn(async move {
            let mut event = synthetic_event(1000 + i);
            if i % 5 == 4 {
                event.event_time -= Duration::hours(2);
            }
            store.append_audit_event(&event).await.unwrap()
        });
    }
    while let Some(appended) = burst.join_next().await {
        appended.unwrap();
    }
    if let AnyStore::Postgres(pg) = &app.store {
        let (stored, recomputed) = hour_summary(pg.pool()).await;
        assert_eq!(stored, recomputed);
    }
}
