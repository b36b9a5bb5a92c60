//! Acting as several accounts through assumed roles: `aws_config::sts::AssumeRoleProvider`
//! calls the emulator's STS `AssumeRole`, and WorkSpaces clients signed with the assumed
//! credentials act as the roles' accounts (DESIGN.md §8). No gRPC server or database.

use account_link_service::emulator::{AccountLinkStatus, CallRecord, Emulator, RunningEmulator};
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_workspaces::Client;
use aws_sdk_workspaces::types::AccountLinkStatusEnum;

use crate::helpers::{SOURCE, TARGET};

const SOURCE_ROLE: &str = "arn:aws:iam::111111111111:role/account-link";
const TARGET_ROLE: &str = "arn:aws:iam::222222222222:role/account-link";
const TARGET_EXTERNAL_ID: &str = "link-partner-7";

/// Static base credentials for account `000000000000`, every client aimed at the emulator.
async fn base_config(emulator: &RunningEmulator) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::from_static("us-east-1"))
        .endpoint_url(emulator.endpoint_url())
        .credentials_provider(Credentials::new(
            "000000000000",
            "base-secret",
            None,
            None,
            "static",
        ))
        .load()
        .await
}

/// A WorkSpaces client whose credentials come from assuming `role` (with `external_id`).
async fn client_as(base: &SdkConfig, role: &str, external_id: Option<&str>) -> Client {
    let mut provider = AssumeRoleProvider::builder(role)
        .session_name("account-link-test")
        .configure(base);
    if let Some(external_id) = external_id {
        provider = provider.external_id(external_id);
    }
    let config = aws_sdk_workspaces::config::Builder::from(base)
        .credentials_provider(provider.build().await)
        .build();
    Client::from_conf(config)
}

/// The operation and account of each logged call, in order.
fn summary(calls: &[CallRecord]) -> Vec<(&str, Option<&str>, Option<&str>)> {
    calls
        .iter()
        .map(|c| {
            (
                c.operation.as_str(),
                c.account_id.as_deref(),
                c.error_code.as_deref(),
            )
        })
        .collect()
}

#[tokio::test]
async fn assumed_roles_act_as_their_accounts_against_the_emulator() {
    let emulator = Emulator::new().spawn().await.expect("emulator starts");
    emulator
        .emulator()
        .require_external_id(TARGET_ROLE, TARGET_EXTERNAL_ID);
    let base = base_config(&emulator).await;
    let source = client_as(&base, SOURCE_ROLE, None).await;
    let target = client_as(&base, TARGET_ROLE, Some(TARGET_EXTERNAL_ID)).await;

    let created = source
        .create_account_link_invitation()
        .target_account_id(TARGET)
        .send()
        .await
        .expect("source invites the target");
    let link = created.account_link().expect("link returned");
    assert_eq!(link.source_account_id(), Some(SOURCE));
    assert_eq!(link.target_account_id(), Some(TARGET));
    let link_id = link.account_link_id().expect("link id").to_owned();

    let accepted = target
        .accept_account_link_invitation()
        .link_id(&link_id)
        .send()
        .await
        .expect("target accepts");
    assert_eq!(
        accepted
            .account_link()
            .and_then(|l| l.account_link_status()),
        Some(&AccountLinkStatusEnum::Linked)
    );
    // The cached assumed credentials are reused: no second AssumeRole.
    source
        .get_account_link()
        .link_id(&link_id)
        .send()
        .await
        .expect("source reads the link");

    let links = emulator.emulator().links();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].account_link_status, AccountLinkStatus::Linked);
    let calls = emulator.emulator().calls();
    assert_eq!(
        summary(&calls),
        [
            ("AssumeRole", Some(SOURCE), None),
            ("CreateAccountLinkInvitation", Some(SOURCE), None),
            ("AssumeRole", Some(TARGET), None),
            ("AcceptAccountLinkInvitation", Some(TARGET), None),
            ("GetAccountLink", Some(SOURCE), None),
        ]
    );
    assert_eq!(calls[0].request["RoleArn"], SOURCE_ROLE);
    assert_eq!(calls[0].request["RoleSessionName"], "account-link-test");
    assert!(calls[0].request.get("ExternalId").is_none());
    assert_eq!(calls[2].request["RoleArn"], TARGET_ROLE);
    assert_eq!(calls[2].request["ExternalId"], "<redacted>");
}

#[tokio::test]
async fn a_role_requiring_an_external_id_cannot_be_assumed_without_it() {
    let emulator = Emulator::new().spawn().await.expect("emulator starts");
    emulator
        .emulator()
        .require_external_id(TARGET_ROLE, TARGET_EXTERNAL_ID);
    let base = base_config(&emulator).await;

    for external_id in [None, Some("someone-else")] {
        let target = client_as(&base, TARGET_ROLE, external_id).await;
        let error = target
            .list_account_links()
            .send()
            .await
            .expect_err("no credentials for the target role");
        let text = format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(&error)
        );
        assert!(text.contains("AccessDenied"), "{text}");
    }
    // Only the refused AssumeRole calls reached the emulator.
    assert_eq!(
        summary(&emulator.emulator().calls()),
        [
            ("AssumeRole", Some(TARGET), Some("AccessDenied")),
            ("AssumeRole", Some(TARGET), Some("AccessDenied")),
        ]
    );
}
