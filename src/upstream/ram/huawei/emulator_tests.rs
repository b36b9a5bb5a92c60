//! [`HuaweiRam`] against the spawned emulator: the three operations, paging, every error
//! classification the emulator can produce, wrong secrets and temporary credentials.

use std::time::Duration;

use super::*;
use crate::emulator::{Emulator, Fault, FaultKind, RunningEmulator};

const SENDER: &str = "0123456789abcdef0123456789abcdef";
const RECEIVER: &str = "fedcba9876543210fedcba9876543210";
const OTHER: &str = "00000000000000000000000000000001";

fn account(domain_id: &str, ak: &str, sk: &str, token: Option<&str>) -> HuaweiAccount {
    HuaweiAccount {
        domain_id: domain_id.to_owned(),
        access_key_id: ak.to_owned(),
        secret_access_key: sk.to_owned(),
        security_token: token.map(str::to_owned),
    }
}

fn client(running: &RunningEmulator, accounts: Vec<HuaweiAccount>, dev: bool) -> HuaweiRam {
    HuaweiRam::new(&HuaweiRamSettings {
        endpoint: running.endpoint_url(),
        timeout: Duration::from_secs(5),
        accounts,
        dev,
    })
    .expect("valid settings")
}

fn accept(id: &str) -> InvitationMutation {
    InvitationMutation::Accept {
        invitation_id: id.to_owned(),
    }
}

fn reject(id: &str) -> InvitationMutation {
    InvitationMutation::Reject {
        invitation_id: id.to_owned(),
    }
}

const TOKEN: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[tokio::test]
async fn search_get_accept_reject_with_registered_keys() {
    let running = Emulator::new().spawn().await.expect("emulator starts");
    let emulator = running.emulator();
    emulator.huawei_register_credentials("AK-RECEIVER", "SK-RECEIVER", RECEIVER);
    let ids: Vec<String> = (0..3)
        .map(|n| {
            emulator
                .huawei_create_invitation(SENDER, RECEIVER, &format!("share-{n}"))
                .invitation_id
        })
        .collect();
    emulator.huawei_create_invitation(SENDER, OTHER, "not-ours");
    let ram = client(
        &running,
        vec![account(RECEIVER, "AK-RECEIVER", "SK-RECEIVER", None)],
        false,
    );

    // Paging: two pages of two and one, in creation order.
    let mut input = ListInvitationsInput {
        page_size: Some(2),
        ..ListInvitationsInput::default()
    };
    let first = ram.list(RECEIVER, &input).await.expect("first page");
    assert_eq!(first.attempts, 1);
    assert!(first.aws_request_id.is_some());
    assert_eq!(first.value.invitations.len(), 2);
    input.page_token = first.value.next_page_token.clone();
    assert!(input.page_token.is_some());
    let second = ram.list(RECEIVER, &input).await.expect("second page");
    assert_eq!(second.value.next_page_token, None);
    let listed: Vec<String> = first
        .value
        .invitations
        .iter()
        .chain(&second.value.invitations)
        .map(|i| i.invitation_id.clone())
        .collect();
    assert_eq!(listed, ids);
    let one = &first.value.invitations[0];
    assert_eq!(one.provider, Provider::HuaweiRam);
    assert_eq!(one.status, InvitationStatus::Pending);
    assert_eq!(one.sender_account_id.as_deref(), Some(SENDER));
    assert_eq!(one.receiver_account_id.as_deref(), Some(RECEIVER));
    assert_eq!(one.resource_share_name.as_deref(), Some("share-0"));
    assert_eq!(
        one.create_time,
        Some(emulator.huawei_invitations()[0].created_at)
    );

    // Get, and get of an id the caller cannot see.
    let got = ram.get(RECEIVER, &ids[1]).await.expect("get");
    assert_eq!(got.value.invitation_id, ids[1]);
    let missing = ram
        .get(RECEIVER, "no-such-invitation")
        .await
        .expect_err("unknown id");
    assert_eq!(missing.kind, UpstreamErrorKind::ResourceNotFound);
    assert!(missing.aws_request_id.is_some());

    // Accept and reject, with the request id the emulator logged.
    let accepted = ram
        .respond(RECEIVER, &accept(&ids[0]), TOKEN)
        .await
        .expect("accept");
    assert_eq!(accepted.value.status, InvitationStatus::Accepted);
    assert!(accepted.value.update_time >= accepted.value.create_time);
    let logged = emulator.calls().pop().expect("logged");
    assert_eq!(logged.operation, "AcceptResourceShareInvitation");
    assert_eq!(logged.account_id.as_deref(), Some(RECEIVER));
    assert_eq!(
        accepted.aws_request_id.as_deref(),
        Some(logged.request_id.as_str())
    );
    let rejected = ram
        .respond(RECEIVER, &reject(&ids[1]), TOKEN)
        .await
        .expect("reject");
    assert_eq!(rejected.value.status, InvitationStatus::Rejected);

    // Status filter.
    let pending = ram
        .list(
            RECEIVER,
            &ListInvitationsInput {
                status: Some(InvitationStatus::Pending),
                ..ListInvitationsInput::default()
            },
        )
        .await
        .expect("filtered list");
    let pending: Vec<_> = pending
        .value
        .invitations
        .iter()
        .map(|i| &i.invitation_id)
        .collect();
    assert_eq!(pending, [&ids[2]]);

    // Final states: answering again is a conflict; unknown ids are not found.
    for mutation in [accept(&ids[0]), reject(&ids[0]), accept(&ids[1])] {
        let error = ram
            .respond(RECEIVER, &mutation, TOKEN)
            .await
            .expect_err("already answered");
        assert_eq!(error.kind, UpstreamErrorKind::Conflict, "{error}");
        assert_eq!(
            error.aws_error_code.as_deref(),
            Some(codes::INVITATION_NOT_PENDING)
        );
        assert!(error.aws_request_id.is_some());
        assert_eq!(error.attempts, 1);
    }
    let error = ram
        .respond(RECEIVER, &accept("no-such-invitation"), TOKEN)
        .await
        .expect_err("unknown");
    assert_eq!(error.kind, UpstreamErrorKind::ResourceNotFound);
    assert_eq!(
        error.aws_error_code.as_deref(),
        Some(codes::INVITATION_NOT_FOUND)
    );
    let statuses: Vec<_> = emulator
        .huawei_invitations()
        .into_iter()
        .map(|i| i.status)
        .collect();
    assert_eq!(statuses, ["accepted", "rejected", "pending", "pending"]);
}

#[tokio::test]
async fn only_the_receiver_answers_and_ids_cannot_escape_the_path() {
    let running = Emulator::new().spawn().await.expect("emulator starts");
    let emulator = running.emulator();
    let invitation = emulator.huawei_create_invitation(SENDER, RECEIVER, "share");
    let ram = client(&running, Vec::new(), true);
    let error = ram
        .respond(SENDER, &accept(&invitation.invitation_id), TOKEN)
        .await
        .expect_err("the sender cannot accept");
    assert_eq!(error.kind, UpstreamErrorKind::ResourceNotFound);
    let error = ram
        .respond(RECEIVER, &accept("../search"), TOKEN)
        .await
        .expect_err("not an id");
    assert_eq!(error.kind, UpstreamErrorKind::ResourceNotFound, "{error}");
    assert_eq!(emulator.huawei_invitations()[0].status, "pending");
}

#[tokio::test]
async fn wrong_secret_and_wrong_domain_are_credential_errors() {
    let running = Emulator::new().spawn().await.expect("emulator starts");
    let emulator = running.emulator();
    emulator.huawei_register_credentials("AK", "right-secret", RECEIVER);
    let ram = client(
        &running,
        vec![
            account(RECEIVER, "AK", "wrong-secret", None),
            // AK is RECEIVER's, so X-Domain-Id: OTHER does not match the signer.
            account(OTHER, "AK", "right-secret", None),
        ],
        false,
    );
    let error = ram
        .list(RECEIVER, &ListInvitationsInput::default())
        .await
        .expect_err("wrong sk");
    assert_eq!(error.kind, UpstreamErrorKind::Credentials);
    assert_eq!(error.aws_error_code.as_deref(), Some(codes::APIGW_AUTH));
    assert!(
        error
            .message
            .starts_with("Incorrect IAM authentication information"),
        "{}",
        error.message
    );
    assert!(error.aws_request_id.is_some());
    let error = ram
        .list(OTHER, &ListInvitationsInput::default())
        .await
        .expect_err("wrong domain");
    assert_eq!(error.kind, UpstreamErrorKind::Credentials);
    assert_eq!(
        error.aws_error_code.as_deref(),
        Some(codes::INVALID_DOMAIN_HEADER)
    );

    // Not configured and not --dev: nothing is sent.
    let before = emulator.calls().len();
    let error = ram
        .list(SENDER, &ListInvitationsInput::default())
        .await
        .expect_err("unconfigured");
    assert_eq!(error.kind, UpstreamErrorKind::Internal);
    assert_eq!(error.attempts, 0);
    assert_eq!(emulator.calls().len(), before);
}

#[tokio::test]
async fn temporary_credentials_send_a_signed_security_token() {
    let running = Emulator::new().spawn().await.expect("emulator starts");
    let emulator = running.emulator();
    emulator.huawei_register_temporary_credentials("STS-AK", "STS-SK", "session-1", RECEIVER);
    let invitation = emulator.huawei_create_invitation(SENDER, RECEIVER, "share");
    let good = client(
        &running,
        vec![account(RECEIVER, "STS-AK", "STS-SK", Some("session-1"))],
        false,
    );
    let accepted = good
        .respond(RECEIVER, &accept(&invitation.invitation_id), TOKEN)
        .await
        .expect("token accepted");
    assert_eq!(accepted.value.status, InvitationStatus::Accepted);

    for token in [Some("session-2"), None] {
        let bad = client(
            &running,
            vec![account(RECEIVER, "STS-AK", "STS-SK", token)],
            false,
        );
        let error = bad
            .list(RECEIVER, &ListInvitationsInput::default())
            .await
            .expect_err("wrong or missing token");
        assert_eq!(error.kind, UpstreamErrorKind::Credentials, "{token:?}");
        assert_eq!(error.aws_error_code.as_deref(), Some(codes::APIGW_AUTH));
    }
}

#[tokio::test]
async fn injected_faults_classify() {
    let running = Emulator::new().spawn().await.expect("emulator starts");
    let emulator = running.emulator();
    let ram = client(&running, Vec::new(), true);
    let list = ListInvitationsInput::default();
    let error_fault = |code: &str| {
        Fault::new(
            FaultKind::AwsError {
                code: code.to_owned(),
                message: "injected".to_owned(),
            },
            1,
        )
        .only_for(model::SEARCH_OPERATION)
    };
    let cases = [
        (
            Fault::new(FaultKind::Throttling, 1),
            UpstreamErrorKind::Throttling,
            codes::APIGW_THROTTLED,
        ),
        (
            Fault::new(FaultKind::InternalServerError, 1),
            UpstreamErrorKind::Unavailable,
            codes::INTERNAL_ERROR,
        ),
        (
            error_fault(codes::APIGW_NOT_AUTHORIZED),
            UpstreamErrorKind::AccessDenied,
            codes::APIGW_NOT_AUTHORIZED,
        ),
        (
            error_fault(codes::INVALID_PARAMETER),
            UpstreamErrorKind::Validation,
            codes::INVALID_PARAMETER,
        ),
        (
            error_fault(codes::APIGW_AUTH),
            UpstreamErrorKind::Credentials,
            codes::APIGW_AUTH,
        ),
    ];
    for (fault, kind, code) in cases {
        emulator.try_inject_fault(fault).expect("valid fault");
        let error = ram.list(RECEIVER, &list).await.expect_err("injected");
        assert_eq!(error.kind, kind, "{code}");
        assert_eq!(error.aws_error_code.as_deref(), Some(code));
        assert!(error.aws_request_id.is_some());
    }
    assert!(ram.list(RECEIVER, &list).await.is_ok());
}

#[tokio::test]
async fn lost_answers_are_outcome_unknown_for_mutations_only() {
    let running = Emulator::new().spawn().await.expect("emulator starts");
    let emulator = running.emulator();
    let invitation = emulator.huawei_create_invitation(SENDER, RECEIVER, "share");
    let ram = client(&running, Vec::new(), true);

    emulator
        .inject_fault(Fault::new(FaultKind::DropConnection, 1).only_for(model::ACCEPT_OPERATION));
    let error = ram
        .respond(RECEIVER, &accept(&invitation.invitation_id), TOKEN)
        .await
        .expect_err("dropped");
    assert_eq!(error.kind, UpstreamErrorKind::OutcomeUnknown, "{error}");
    assert_eq!(error.attempts, 1);
    // The emulator applied it: the outcome really was unknown to the client only.
    assert_eq!(emulator.huawei_invitations()[0].status, "accepted");

    emulator
        .inject_fault(Fault::new(FaultKind::DropConnection, 1).only_for(model::SEARCH_OPERATION));
    let error = ram
        .list(RECEIVER, &ListInvitationsInput::default())
        .await
        .expect_err("dropped");
    assert_eq!(error.kind, UpstreamErrorKind::Unavailable, "{error}");

    let slow = HuaweiRam::new(&HuaweiRamSettings {
        endpoint: running.endpoint_url(),
        timeout: Duration::from_millis(200),
        accounts: Vec::new(),
        dev: true,
    })
    .expect("valid settings");
    let second = emulator.huawei_create_invitation(SENDER, RECEIVER, "share-2");
    emulator.inject_fault(Fault::new(FaultKind::Latency { millis: 2_000 }, 1));
    let error = slow
        .respond(RECEIVER, &reject(&second.invitation_id), TOKEN)
        .await
        .expect_err("timed out");
    assert_eq!(error.kind, UpstreamErrorKind::OutcomeUnknown, "{error}");
    assert!(error.message.contains("timed out"), "{}", error.message);
}

#[tokio::test]
async fn a_refused_connection_is_unavailable_even_for_mutations() {
    // A port nothing listens on: bind, read the address, close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let ram = HuaweiRam::new(&HuaweiRamSettings {
        endpoint: format!("http://{addr}"),
        timeout: Duration::from_secs(5),
        accounts: Vec::new(),
        dev: true,
    })
    .expect("valid settings");
    let error = ram
        .respond(RECEIVER, &accept("x"), TOKEN)
        .await
        .expect_err("refused");
    assert_eq!(error.kind, UpstreamErrorKind::Unavailable, "{error}");
}
