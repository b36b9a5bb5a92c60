//! `ResourceShareInvitationService` end to end (issue 12): the real server,
//! the real `aws-sdk-ram` and Huawei adapters over HTTP to the emulator, a
//! real tonic client. Validation refuses with no upstream call; every RPC is
//! audited with its provider and invitation id.

use account_link_service::proto::pb;
use account_link_service::proto::pb::resource_share_invitation_service_client::ResourceShareInvitationServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::helpers::{TestApp, reason, spawn_app, violated_fields};

/// An AWS receiving account.
pub(crate) const AWS_RECEIVER: &str = "222222222222";
/// A Huawei receiving account (domain id).
pub(crate) const HUAWEI_RECEIVER: &str = "0b7f9a3c5d2e4f6081a2b3c4d5e6f701";

const AWS: i32 = pb::ResourceShareProvider::AwsRam as i32;
const HUAWEI: i32 = pb::ResourceShareProvider::HuaweiRam as i32;

pub(crate) async fn ram_client(app: &TestApp) -> ResourceShareInvitationServiceClient<Channel> {
    ResourceShareInvitationServiceClient::connect(format!("http://{}", app.addr))
        .await
        .expect("client connects")
}

/// An invitation ARN of the right shape that no emulator holds.
fn unknown_arn() -> String {
    "arn:aws:ram:us-east-1:111111111111:resource-share-invitation/5b7c1f2e-0000-4000-8000-000000000000"
        .to_owned()
}

async fn accept(
    app: &TestApp,
    provider: i32,
    account: &str,
    invitation: &str,
    token: &str,
) -> Result<pb::AcceptResourceShareInvitationResponse, Status> {
    ram_client(app)
        .await
        .accept_resource_share_invitation(pb::AcceptResourceShareInvitationRequest {
            provider,
            account_id: account.into(),
            invitation_id: invitation.into(),
            client_token: token.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn assert_invalid(status: &Status, fields: &[&str]) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(status), fields, "{status:?}");
    assert_eq!(reason(status), "INVALID_ARGUMENT");
}

#[tokio::test]
async fn every_bad_field_is_refused_with_no_upstream_call_and_audited() {
    let app = spawn_app().await;
    let long_token = "t".repeat(65);
    let cases: Vec<(i32, &str, String, &str, Vec<&str>)> = vec![
        (0, AWS_RECEIVER, unknown_arn(), "", vec!["provider"]),
        (42, AWS_RECEIVER, unknown_arn(), "", vec!["provider"]),
        (AWS, "1234", unknown_arn(), "", vec!["account_id"]),
        (AWS, HUAWEI_RECEIVER, unknown_arn(), "", vec!["account_id"]),
        (HUAWEI, AWS_RECEIVER, "abc".into(), "", vec!["account_id"]),
        (AWS, AWS_RECEIVER, String::new(), "", vec!["invitation_id"]),
        (
            AWS,
            AWS_RECEIVER,
            "not-an-arn".into(),
            "",
            vec!["invitation_id"],
        ),
        (
            AWS,
            AWS_RECEIVER,
            "arn:aws:ram:us-east-1:111111111111:resource-share/abc".into(),
            "",
            vec!["invitation_id"],
        ),
        (
            HUAWEI,
            HUAWEI_RECEIVER,
            "a b".into(),
            "",
            vec!["invitation_id"],
        ),
        (
            AWS,
            AWS_RECEIVER,
            unknown_arn(),
            &long_token,
            vec!["client_token"],
        ),
        (
            0,
            "x",
            String::new(),
            &long_token,
            vec!["provider", "account_id", "invitation_id", "client_token"],
        ),
    ];
    for (provider, account, invitation, token, fields) in &cases {
        let status = accept(&app, *provider, account, invitation, token)
            .await
            .expect_err("refused");
        assert_invalid(&status, fields);
    }
    let mut client = ram_client(&app).await;
    let status = client
        .list_resource_share_invitations(pb::ListResourceShareInvitationsRequest {
            provider: AWS,
            account_id: AWS_RECEIVER.into(),
            resource_share_ids: vec!["x".into(); 21],
            invitation_ids: vec![String::new()],
            status: 17,
            page_size: -1,
            page_token: "a b".into(),
        })
        .await
        .expect_err("refused");
    assert_invalid(
        &status,
        &[
            "resource_share_ids",
            "invitation_ids[0]",
            "status",
            "page_size",
            "page_token",
        ],
    );
    let status = client
        .get_resource_share_invitation(pb::GetResourceShareInvitationRequest {
            provider: HUAWEI,
            account_id: HUAWEI_RECEIVER.into(),
            invitation_id: String::new(),
        })
        .await
        .expect_err("refused");
    assert_invalid(&status, &["invitation_id"]);

    assert!(
        app.calls().is_empty(),
        "no upstream call: {:?}",
        app.calls()
    );
    let events = app.audit_events().await;
    assert_eq!(events.len(), cases.len() + 2, "one audit event per RPC");
    assert!(events.iter().all(|e| e.grpc_code == "INVALID_ARGUMENT"));
    let first = events
        .iter()
        .find(|e| e.method == "AcceptResourceShareInvitation")
        .unwrap();
    assert_eq!(first.request_parameters["provider"], "0");
    let huawei = events
        .iter()
        .find(|e| e.method == "GetResourceShareInvitation")
        .unwrap();
    assert_eq!(huawei.request_parameters["provider"], "HUAWEI_RAM");
    assert_eq!(huawei.request_parameters["account_id"], HUAWEI_RECEIVER);
}

/// An AWS RAM client of `account` against the test's emulator (the
/// emulator takes the access key id as the account).
fn ram_sdk(app: &TestApp, account: &str) -> aws_sdk_ram::Client {
    let credentials = aws_sdk_ram::config::Credentials::new(
        account,
        account_link_service::upstream::DEV_SECRET_ACCESS_KEY,
        None,
        None,
        "test",
    );
    let config = aws_sdk_ram::Config::builder()
        .behavior_version(aws_sdk_ram::config::BehaviorVersion::latest())
        .region(aws_sdk_ram::config::Region::new("us-east-1"))
        .endpoint_url(app.emulator.endpoint_url())
        .credentials_provider(credentials)
        .build();
    aws_sdk_ram::Client::from_conf(config)
}

/// `sender` shares with `receiver` (an account outside its organization):
/// returns the share ARN and the receiver's pending invitation ARN.
async fn share(app: &TestApp, sender: &str, receiver: &str, name: &str) -> (String, String) {
    let out = ram_sdk(app, sender)
        .create_resource_share()
        .name(name)
        .principals(receiver)
        .send()
        .await
        .expect("share created");
    let share_arn = out
        .resource_share()
        .and_then(|s| s.resource_share_arn())
        .expect("share arn")
        .to_owned();
    let invitation = app
        .emu()
        .ram_invitations()
        .into_iter()
        .rev()
        .find(|i| i.resource_share_arn == share_arn && i.receiver_account_id == receiver)
        .expect("the emulator sent an invitation");
    (share_arn, invitation.resource_share_invitation_arn)
}

async fn reject(
    app: &TestApp,
    provider: i32,
    account: &str,
    invitation: &str,
    token: &str,
) -> Result<pb::RejectResourceShareInvitationResponse, Status> {
    ram_client(app)
        .await
        .reject_resource_share_invitation(pb::RejectResourceShareInvitationRequest {
            provider,
            account_id: account.into(),
            invitation_id: invitation.into(),
            client_token: token.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn get(
    app: &TestApp,
    provider: i32,
    account: &str,
    invitation: &str,
) -> Result<pb::ResourceShareInvitation, Status> {
    ram_client(app)
        .await
        .get_resource_share_invitation(pb::GetResourceShareInvitationRequest {
            provider,
            account_id: account.into(),
            invitation_id: invitation.into(),
        })
        .await
        .map(|r| {
            r.into_inner()
                .resource_share_invitation
                .expect("invitation")
        })
}

fn status_of(i: &pb::ResourceShareInvitation) -> pb::ResourceShareInvitationStatus {
    pb::ResourceShareInvitationStatus::try_from(i.status).expect("known status")
}

const SENDER: &str = "111111111111";

#[tokio::test]
async fn aws_ram_lifecycle_through_the_api_is_audited_with_provider_and_invitation() {
    use pb::ResourceShareInvitationStatus as S;
    let app = spawn_app().await;
    let (share_arn, first) = share(&app, SENDER, AWS_RECEIVER, "subnets").await;
    let (_, second) = share(&app, SENDER, AWS_RECEIVER, "tgw").await;

    // The receiver sees both, pending; a filter by share narrows to one.
    let mut client = ram_client(&app).await;
    let page = client
        .list_resource_share_invitations(pb::ListResourceShareInvitationsRequest {
            provider: AWS,
            account_id: AWS_RECEIVER.into(),
            status: S::Pending as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids: Vec<_> = page
        .resource_share_invitations
        .iter()
        .map(|i| i.invitation_id.clone())
        .collect();
    ids.sort();
    let mut want = vec![first.clone(), second.clone()];
    want.sort();
    assert_eq!(ids, want);
    let by_share = client
        .list_resource_share_invitations(pb::ListResourceShareInvitationsRequest {
            provider: AWS,
            account_id: AWS_RECEIVER.into(),
            resource_share_ids: vec![share_arn.clone()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_share.resource_share_invitations.len(), 1);
    let got = &by_share.resource_share_invitations[0];
    assert_eq!(got.invitation_arn, first);
    assert_eq!(got.resource_share_arn, share_arn);
    assert_eq!(got.resource_share_name, "subnets");
    assert_eq!(got.sender_account_id, SENDER);
    assert_eq!(got.receiver_account_id, AWS_RECEIVER);
    assert!(got.create_time.is_some());

    // Accept one (replayed: same answer, no second AWS call), reject the other.
    let accepted = accept(&app, AWS, AWS_RECEIVER, &first, "acc-1")
        .await
        .unwrap();
    assert_eq!(
        status_of(accepted.resource_share_invitation.as_ref().unwrap()),
        S::Accepted
    );
    let before = app.calls().len();
    let replay = ram_client(&app)
        .await
        .accept_resource_share_invitation(pb::AcceptResourceShareInvitationRequest {
            provider: AWS,
            account_id: AWS_RECEIVER.into(),
            invitation_id: first.clone(),
            client_token: "acc-1".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        replay.metadata().get("idempotent-replayed").unwrap(),
        "true"
    );
    assert_eq!(replay.into_inner(), accepted);
    assert_eq!(app.calls().len(), before, "a replay makes no AWS call");
    let rejected = reject(&app, AWS, AWS_RECEIVER, &second, "rej-1")
        .await
        .unwrap();
    assert_eq!(
        status_of(rejected.resource_share_invitation.as_ref().unwrap()),
        S::Rejected
    );
    assert_eq!(
        status_of(&get(&app, AWS, AWS_RECEIVER, &first).await.unwrap()),
        S::Accepted
    );

    // Final states: a new token on an answered invitation is FAILED_PRECONDITION.
    let again = accept(&app, AWS, AWS_RECEIVER, &first, "acc-2")
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    let details = crate::helpers::details(&again, Code::FailedPrecondition);
    let violation = &details.precondition_failure().unwrap().violations[0];
    assert_eq!(violation.r#type, "RESOURCE_SHARE_INVITATION_STATUS");
    assert_eq!(violation.subject, first);
    let rejected_again = reject(&app, AWS, AWS_RECEIVER, &second, "rej-2")
        .await
        .unwrap_err();
    assert_eq!(rejected_again.code(), Code::FailedPrecondition);

    // The upstream clientToken is the derived one (64 hex), not the caller's.
    let accepts: Vec<_> = app
        .calls()
        .into_iter()
        .filter(|c| c.operation == "AcceptResourceShareInvitation")
        .collect();
    assert_eq!(accepts.len(), 2);
    for c in &accepts {
        let token = c.client_token.as_deref().expect("clientToken sent");
        assert_eq!(token.len(), 64);
        assert_ne!(token, "acc-1");
    }

    // One audit event per RPC, with the provider and the invitation; the
    // audit API filters by both.
    let events = app.audit_events().await;
    assert_eq!(events.len(), 8);
    let accepted_event = events
        .iter()
        .find(|e| e.method == "AcceptResourceShareInvitation" && e.grpc_code == "OK")
        .unwrap();
    assert_eq!(accepted_event.request_parameters["provider"], "AWS_RAM");
    assert_eq!(
        accepted_event.request_parameters["invitation_id"],
        first.as_str()
    );
    assert_eq!(
        accepted_event.response_elements.as_ref().unwrap()["ResourceShareInvitation"]["status"],
        "RESOURCE_SHARE_INVITATION_STATUS_ACCEPTED"
    );
    let mut audit =
        account_link_service::proto::pb::audit_service_client::AuditServiceClient::connect(
            format!("http://{}", app.addr),
        )
        .await
        .unwrap();
    let about_first = audit
        .list_audit_events(pb::ListAuditEventsRequest {
            provider: AWS,
            invitation_id: first.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    let methods: Vec<_> = about_first.iter().map(|e| e.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "AcceptResourceShareInvitation",
            "GetResourceShareInvitation",
            "AcceptResourceShareInvitation",
            "AcceptResourceShareInvitation",
        ]
    );
    let huawei_only = audit
        .list_audit_events(pb::ListAuditEventsRequest {
            provider: HUAWEI,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    assert!(huawei_only.is_empty());
}

#[tokio::test]
async fn aws_ram_errors_map_by_code() {
    let app = spawn_app().await;
    let (_, invitation) = share(&app, SENDER, AWS_RECEIVER, "errors").await;

    // Not found: a well-formed ARN no one sent; ResourceInfo names it.
    let missing = get(&app, AWS, AWS_RECEIVER, &unknown_arn())
        .await
        .unwrap_err();
    let details = crate::helpers::details(&missing, Code::NotFound);
    let info = details.resource_info().unwrap();
    assert_eq!(
        info.resource_type,
        "ram.amazonaws.com/ResourceShareInvitation"
    );
    assert_eq!(info.resource_name, unknown_arn());
    let missing = accept(&app, AWS, AWS_RECEIVER, &unknown_arn(), "")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");

    // Only the receiver answers: the sender is refused.
    let sender = accept(&app, AWS, SENDER, &invitation, "")
        .await
        .unwrap_err();
    assert_eq!(sender.code(), Code::PermissionDenied, "{sender:?}");

    // Expired after 7 days on the emulator clock: FAILED_PRECONDITION.
    app.emu()
        .advance_ram_clock(std::time::Duration::from_secs(7 * 24 * 3600 + 1));
    assert_eq!(
        status_of(&get(&app, AWS, AWS_RECEIVER, &invitation).await.unwrap()),
        pb::ResourceShareInvitationStatus::Expired
    );
    let expired = accept(&app, AWS, AWS_RECEIVER, &invitation, "")
        .await
        .unwrap_err();
    assert_eq!(expired.code(), Code::FailedPrecondition, "{expired:?}");
    let info = expired.check_error_details().unwrap();
    let info = info.error_info().unwrap();
    assert_eq!(
        info.metadata.get("aws_error_code").map(String::as_str),
        Some("ResourceShareInvitationExpiredException")
    );
}

#[tokio::test]
async fn thirty_two_concurrent_identical_accepts_make_one_aws_call() {
    let app = spawn_app().await;
    let (_, invitation) = share(&app, SENDER, AWS_RECEIVER, "concurrent").await;
    // Slow the one call down so the others arrive while it runs.
    app.emu().inject_fault(
        account_link_service::emulator::Fault::new(
            account_link_service::emulator::FaultKind::Latency { millis: 300 },
            1,
        )
        .only_for("AcceptResourceShareInvitation"),
    );
    let client = ram_client(&app).await;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let mut client = client.clone();
            let invitation_id = invitation.clone();
            tokio::spawn(async move {
                client
                    .accept_resource_share_invitation(pb::AcceptResourceShareInvitationRequest {
                        provider: AWS,
                        account_id: AWS_RECEIVER.into(),
                        invitation_id,
                        client_token: "same-token".into(),
                    })
                    .await
                    .map(tonic::Response::into_inner)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let in_use = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::Aborted))
        .count();
    assert!(ok >= 1, "{results:?}");
    assert_eq!(
        ok + in_use,
        32,
        "only OK or IDEMPOTENCY_KEY_IN_USE: {results:?}"
    );
    let accepts = app
        .calls()
        .iter()
        .filter(|c| c.operation == "AcceptResourceShareInvitation")
        .count();
    assert_eq!(accepts, 1, "exactly one upstream call");
    assert_eq!(
        app.audit_events().await.len(),
        32,
        "one audit event per RPC"
    );
}

#[tokio::test]
async fn throttling_and_5xx_leave_the_token_retryable_and_the_retry_sends_the_same_client_token() {
    let app = spawn_app().await;
    let (_, invitation) = share(&app, SENDER, AWS_RECEIVER, "retry").await;
    for (kind, code) in [
        (
            account_link_service::emulator::FaultKind::Throttling,
            Code::ResourceExhausted,
        ),
        (
            account_link_service::emulator::FaultKind::InternalServerError,
            Code::Unavailable,
        ),
    ] {
        app.emu().inject_fault(
            account_link_service::emulator::Fault::new(kind, 1)
                .only_for("AcceptResourceShareInvitation"),
        );
        let status = accept(&app, AWS, AWS_RECEIVER, &invitation, "retry-token")
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
        let details = status.check_error_details().unwrap();
        assert!(details.retry_info().is_some(), "retryable: {status:?}");
    }
    let done = accept(&app, AWS, AWS_RECEIVER, &invitation, "retry-token")
        .await
        .expect("the retry succeeds");
    assert_eq!(
        status_of(done.resource_share_invitation.as_ref().unwrap()),
        pb::ResourceShareInvitationStatus::Accepted
    );
    let tokens: Vec<_> = app
        .calls()
        .into_iter()
        .filter(|c| c.operation == "AcceptResourceShareInvitation")
        .map(|c| c.client_token.expect("clientToken sent"))
        .collect();
    assert_eq!(tokens.len(), 3, "two faults, then the call that succeeded");
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    let outcomes: Vec<_> = app
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.method == "AcceptResourceShareInvitation")
        .map(|e| e.idempotency_outcome)
        .collect();
    assert_eq!(outcomes, ["new", "takeover", "takeover"]);
}

/// A Huawei sending account (domain id).
const HUAWEI_SENDER: &str = "5c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f";

#[tokio::test]
async fn huawei_ram_lifecycle_replays_the_stored_outcome_never_already_accepted() {
    use pb::ResourceShareInvitationStatus as S;
    let app = spawn_app().await;
    let first = app
        .emu()
        .huawei_create_invitation(HUAWEI_SENDER, HUAWEI_RECEIVER, "vpc-subnets");
    let second = app
        .emu()
        .huawei_create_invitation(HUAWEI_SENDER, HUAWEI_RECEIVER, "images");

    let page = ram_client(&app)
        .await
        .list_resource_share_invitations(pb::ListResourceShareInvitationsRequest {
            provider: HUAWEI,
            account_id: HUAWEI_RECEIVER.into(),
            status: S::Pending as i32,
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.resource_share_invitations.len(),
        1,
        "page_size is Huawei's limit"
    );
    assert!(
        !page.next_page_token.is_empty(),
        "Huawei's marker becomes the page token"
    );
    let listed = &page.resource_share_invitations[0];
    assert_eq!(listed.provider, HUAWEI);
    assert_eq!(listed.receiver_account_id, HUAWEI_RECEIVER);
    assert_eq!(listed.sender_account_id, HUAWEI_SENDER);
    assert!(listed.invitation_arn.is_empty());
    assert!(listed.update_time.is_some());

    // Accept; the replay answers the stored outcome with no Huawei call,
    // though Huawei itself would now refuse a second accept.
    let accepted = accept(&app, HUAWEI, HUAWEI_RECEIVER, &first.invitation_id, "hw-1")
        .await
        .unwrap();
    let invitation = accepted.resource_share_invitation.clone().unwrap();
    assert_eq!(status_of(&invitation), S::Accepted);
    assert_eq!(invitation.invitation_id, first.invitation_id);
    assert_eq!(invitation.resource_share_name, "vpc-subnets");
    let before = app.calls().len();
    let replay = accept(&app, HUAWEI, HUAWEI_RECEIVER, &first.invitation_id, "hw-1")
        .await
        .expect("a replay answers the first outcome, not an error");
    assert_eq!(replay, accepted);
    assert_eq!(app.calls().len(), before, "no second Huawei call");
    // A new token reaches Huawei, which refuses: FAILED_PRECONDITION.
    let again = accept(&app, HUAWEI, HUAWEI_RECEIVER, &first.invitation_id, "hw-2")
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");

    let rejected = reject(&app, HUAWEI, HUAWEI_RECEIVER, &second.invitation_id, "hw-3")
        .await
        .unwrap();
    assert_eq!(
        status_of(rejected.resource_share_invitation.as_ref().unwrap()),
        S::Rejected
    );
    assert_eq!(
        status_of(
            &get(&app, HUAWEI, HUAWEI_RECEIVER, &second.invitation_id)
                .await
                .unwrap()
        ),
        S::Rejected
    );

    // Errors: unknown id; the sender cannot see the receiver's invitation.
    let missing = get(
        &app,
        HUAWEI,
        HUAWEI_RECEIVER,
        "0000000000000000000000000000dead",
    )
    .await
    .unwrap_err();
    let details = crate::helpers::details(&missing, Code::NotFound);
    assert_eq!(
        details.resource_info().unwrap().resource_type,
        "ram.myhuaweicloud.com/ResourceShareInvitation"
    );
    let sender = accept(&app, HUAWEI, HUAWEI_SENDER, &second.invitation_id, "")
        .await
        .unwrap_err();
    assert!(
        matches!(sender.code(), Code::NotFound | Code::PermissionDenied),
        "{sender:?}"
    );

    // Throttling stays retryable; the retry reaches Huawei.
    let third = app
        .emu()
        .huawei_create_invitation(HUAWEI_SENDER, HUAWEI_RECEIVER, "later");
    app.emu().inject_fault(
        account_link_service::emulator::Fault::new(
            account_link_service::emulator::FaultKind::Throttling,
            1,
        )
        .only_for("AcceptResourceShareInvitation"),
    );
    let throttled = accept(&app, HUAWEI, HUAWEI_RECEIVER, &third.invitation_id, "hw-4")
        .await
        .unwrap_err();
    assert_eq!(throttled.code(), Code::ResourceExhausted, "{throttled:?}");
    accept(&app, HUAWEI, HUAWEI_RECEIVER, &third.invitation_id, "hw-4")
        .await
        .expect("the retry is accepted");

    let events = app.audit_events().await;
    assert!(
        events
            .iter()
            .filter(|e| e.method.ends_with("ResourceShareInvitation")
                || e.method == "ListResourceShareInvitations")
            .all(|e| e.request_parameters["provider"] == "HUAWEI_RAM")
    );
    assert_eq!(events.len(), 10, "one audit event per RPC");
    let replayed = events
        .iter()
        .filter(|e| e.idempotency_outcome == "replayed")
        .count();
    assert_eq!(replayed, 1);
}

#[tokio::test]
async fn a_configured_huawei_account_signs_with_its_own_keys_from_a_credentials_csv() {
    let csv = crate::helpers::write_temp(
        "huawei-credentials.csv",
        b"User Name,Access Key Id,Secret Access Key\nplatform,HWTESTAK0001,the-right-secret\n",
    );
    let config = crate::helpers::write_temp(
        "huawei-accounts.toml",
        format!(
            "[[accounts]]\naccount_id = \"111111111111\"\n\
             [[accounts]]\nprovider = \"huawei\"\naccount_id = \"{HUAWEI_RECEIVER}\"\n\
             credentials_file = \"{}\"\n",
            csv.display()
        )
        .as_bytes(),
    );
    let app = crate::helpers::spawn_app_with(|a| a.config = Some(config.clone())).await;
    app.emu()
        .huawei_register_credentials("HWTESTAK0001", "the-right-secret", HUAWEI_RECEIVER);
    let invitation =
        app.emu()
            .huawei_create_invitation(HUAWEI_SENDER, HUAWEI_RECEIVER, "configured");
    // The account may be left out: it is the only Huawei account.
    let accepted = accept(&app, HUAWEI, "", &invitation.invitation_id, "")
        .await
        .expect("signed with the configured keys");
    assert_eq!(
        accepted
            .resource_share_invitation
            .unwrap()
            .receiver_account_id,
        HUAWEI_RECEIVER
    );

    // The emulator no longer knows that key: Huawei's gateway refuses it
    // (APIGW.0301), which is the operators' problem, not the caller's.
    app.emu()
        .huawei_register_credentials("HWTESTAK0001", "rotated-secret", HUAWEI_RECEIVER);
    let refused = get(&app, HUAWEI, HUAWEI_RECEIVER, &invitation.invitation_id)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(reason(&refused), "UPSTREAM_CREDENTIALS_REJECTED");
    let info = refused.check_error_details().unwrap();
    assert_eq!(
        info.error_info()
            .unwrap()
            .metadata
            .get("aws_error_code")
            .map(String::as_str),
        Some("APIGW.0301")
    );
}
