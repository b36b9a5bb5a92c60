//! `ResourceShareInvitationService` end to end (issue 12): the real server,
//! the real `aws-sdk-ram` and Huawei adapters over HTTP to the emulator, a
//! real tonic client. Validation refuses with no upstream call; every RPC is
//! audited with its provider and invitation id.

use account_link_service::proto::pb;
use account_link_service::proto::pb::resource_share_invitation_service_client::ResourceShareInvitationServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

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
