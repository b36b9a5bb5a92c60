//! [`AwsRam`]: AWS Resource Access Manager invitations through `aws-sdk-ram`.
//!
//! The clients share everything with [`SdkUpstream`]'s WorkSpaces clients but the service
//! model: region, endpoint override (the local emulator in `--dev` and tests), retry and
//! timeout settings, the one pooled HTTP client, and each account's credentials provider
//! ([`SdkUpstream::account_sdk_config`]). One client per acting account, built once; `--dev`
//! accounts' clients in a bounded cache, as for WorkSpaces.
//!
//! Operations (AWS RAM API reference,
//! <https://docs.aws.amazon.com/ram/latest/APIReference/API_Operations.html>):
//! `list` and `get` are `GetResourceShareInvitations`, `respond` is
//! `AcceptResourceShareInvitation` / `RejectResourceShareInvitation` with `clientToken`.
//! Errors are classified by code in [`kind_of_ram_error_code`].
//!
//! Not shared with WorkSpaces: this service's local per-account rate limit (DESIGN §12),
//! which budgets WorkSpaces calls; RAM calls are only limited by the SDK's retry policy.

use std::collections::HashMap;
use std::time::Instant;

use aws_config::SdkConfig;
use aws_sdk_ram::Client;
use aws_sdk_ram::operation::RequestId;
use time::OffsetDateTime;

use super::InvitationProvider;
use crate::domain::{
    AccountId, InvitationMutation, InvitationStatus, ListInvitationsInput, ListInvitationsPage,
    Provider, ResourceShareInvitation,
};
use crate::upstream::client_cache::ClientCache;
use crate::upstream::sdk::{AttemptCounter, classify_with, dev_credentials, observe};
use crate::upstream::{SdkUpstream, UpstreamError, UpstreamErrorKind, UpstreamOutput};

/// Classifies an AWS RAM error code (the `x-amzn-ErrorType` name; the exceptions each
/// operation declares in the RAM service model).
///
/// - `ResourceShareInvitationArnNotFoundException`, `UnknownResourceException`:
///   `ResourceNotFound`.
/// - `ResourceShareInvitationAlreadyAcceptedException`, `…AlreadyRejectedException`,
///   `…ExpiredException`: `Conflict` (the invitation's state forbids the answer).
/// - `MalformedArnException`, `InvalidParameterException`, `InvalidMaxResultsException`,
///   `InvalidNextTokenException`, `MissingRequiredParameterException`,
///   `InvalidClientTokenException`: `Validation`.
/// - `IdempotentParameterMismatchException`: `IdempotentParameterMismatch`.
/// - `OperationNotPermittedException`: `AccessDenied`.
/// - `ThrottlingException`: `Throttling`; `ServerInternalException`,
///   `ServiceUnavailableException`: `Unavailable`.
/// - Anything else as [`UpstreamErrorKind::from_aws_error_code`] (credential failures,
///   unknown codes as `Unavailable`).
pub fn kind_of_ram_error_code(code: &str) -> UpstreamErrorKind {
    match code {
        "ResourceShareInvitationArnNotFoundException" | "UnknownResourceException" => {
            UpstreamErrorKind::ResourceNotFound
        }
        "ResourceShareInvitationAlreadyAcceptedException"
        | "ResourceShareInvitationAlreadyRejectedException"
        | "ResourceShareInvitationExpiredException" => UpstreamErrorKind::Conflict,
        "MalformedArnException"
        | "InvalidParameterException"
        | "InvalidMaxResultsException"
        | "InvalidNextTokenException"
        | "MissingRequiredParameterException"
        | "InvalidClientTokenException" => UpstreamErrorKind::Validation,
        "IdempotentParameterMismatchException" => UpstreamErrorKind::IdempotentParameterMismatch,
        "OperationNotPermittedException" => UpstreamErrorKind::AccessDenied,
        "ThrottlingException" => UpstreamErrorKind::Throttling,
        "ServerInternalException" | "ServiceUnavailableException" => UpstreamErrorKind::Unavailable,
        other => UpstreamErrorKind::from_aws_error_code(other),
    }
}

/// The `--dev` clients: built on first use from the base config and the emulator
/// credentials of the account.
#[derive(Debug)]
struct DevClients {
    base: SdkConfig,
    cache: ClientCache<AccountId, Client>,
}

/// AWS RAM as an [`InvitationProvider`]: one `aws_sdk_ram::Client` per acting account.
#[derive(Debug)]
pub struct AwsRam {
    /// The configured accounts' clients; never changes after `new`.
    configured: HashMap<AccountId, Client>,
    /// `--dev` with emulator credentials: the clients of other accounts.
    dev: Option<DevClients>,
}

impl AwsRam {
    /// Builds a RAM client for every account `upstream` is configured with, from the same
    /// config and credentials as its WorkSpaces clients; in `--dev` with emulator
    /// credentials, other accounts' clients are built on first use (at most as many as
    /// `upstream` keeps for WorkSpaces, least recently used out first).
    pub fn new(upstream: &SdkUpstream) -> Self {
        let mut configured = HashMap::new();
        for account in upstream.configured_accounts() {
            if let Ok(config) = upstream.account_sdk_config(&account) {
                configured.insert(account, Client::new(&config));
            }
        }
        let dev = upstream.dev_client_capacity().and_then(|capacity| {
            let any = AccountId::parse("000000000000").ok()?;
            let base = upstream.account_sdk_config(&any).ok()?;
            Some(DevClients {
                base,
                cache: ClientCache::new(capacity),
            })
        });
        Self { configured, dev }
    }

    /// The client of `acting` (12 digits).
    ///
    /// # Errors
    /// `Internal` when `acting` is not an account id, or is not configured and this is not
    /// `--dev` with emulator credentials.
    fn client(&self, acting: &str) -> Result<Client, UpstreamError> {
        let account = AccountId::parse(acting).map_err(|e| {
            UpstreamError::internal(format!("acting account {acting:?} is not valid: {e}"))
        })?;
        if let Some(client) = self.configured.get(&account) {
            return Ok(client.clone());
        }
        let dev = self.dev.as_ref().ok_or_else(|| {
            UpstreamError::internal(format!("no AWS RAM client for account {acting}"))
        })?;
        Ok(dev.cache.get_or_build(&account, || {
            let config = aws_sdk_ram::config::Builder::from(&dev.base)
                .credentials_provider(dev_credentials(acting))
                .build();
            Client::from_conf(config)
        }))
    }
}

/// An error for a 200 answer this service cannot read (a member it needs is missing or has a
/// value it does not know). `Unavailable`: as for an unknown error code, AWS answered and
/// nothing suggests retrying changes anything but the service version.
fn unreadable(message: String, aws_request_id: Option<String>, attempts: u32) -> UpstreamError {
    UpstreamError {
        kind: UpstreamErrorKind::Unavailable,
        aws_error_code: None,
        message,
        aws_request_id,
        attempts,
    }
}

/// The domain invitation of an AWS `ResourceShareInvitation`: `invitation_id` is the
/// invitation ARN, `resource_share_id` the share ARN's last path segment
/// (`arn:aws:ram:<region>:<owner>:resource-share/<id>`), `create_time` the
/// `invitationTimestamp`.
///
/// # Errors
/// The message for [`unreadable`] when the ARN or the status is missing or the status is
/// not one of `PENDING | ACCEPTED | REJECTED | EXPIRED`.
fn to_domain(
    invitation: &aws_sdk_ram::types::ResourceShareInvitation,
) -> Result<ResourceShareInvitation, String> {
    let arn = invitation
        .resource_share_invitation_arn()
        .ok_or("AWS returned an invitation without resourceShareInvitationArn")?;
    let status = invitation
        .status()
        .and_then(|s| InvitationStatus::parse(s.as_str()))
        .ok_or_else(|| format!("AWS returned invitation {arn} with an unknown status"))?;
    let share_arn = invitation.resource_share_arn().map(str::to_owned);
    Ok(ResourceShareInvitation {
        provider: Provider::AwsRam,
        invitation_id: arn.to_owned(),
        invitation_arn: Some(arn.to_owned()),
        resource_share_id: share_arn
            .as_deref()
            .and_then(|a| a.rsplit('/').next())
            .map(str::to_owned),
        resource_share_arn: share_arn,
        resource_share_name: invitation.resource_share_name().map(str::to_owned),
        sender_account_id: invitation.sender_account_id().map(str::to_owned),
        receiver_account_id: invitation.receiver_account_id().map(str::to_owned),
        status,
        create_time: invitation
            .invitation_timestamp()
            .and_then(|t| OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos()).ok()),
        update_time: None,
    })
}

/// `Some(values)` unless empty (AWS reads an empty list as a filter that matches nothing
/// only when sent; an absent one matches everything).
fn non_empty(values: &[String]) -> Option<Vec<String>> {
    (!values.is_empty()).then(|| values.to_vec())
}

impl AwsRam {
    /// One `GetResourceShareInvitations` call; returns the page as AWS sent it, the request
    /// id and the attempts.
    async fn get_invitations(
        &self,
        acting: &str,
        invitation_arns: Option<Vec<String>>,
        share_arns: Option<Vec<String>>,
        max_results: Option<u32>,
        next_token: Option<String>,
    ) -> Result<UpstreamOutput<ListInvitationsPage>, UpstreamError> {
        let client = self.client(acting)?;
        let counter = AttemptCounter::default();
        let started = Instant::now();
        let result = client
            .get_resource_share_invitations()
            .set_resource_share_invitation_arns(invitation_arns)
            .set_resource_share_arns(share_arns)
            .set_max_results(max_results.and_then(|n| i32::try_from(n).ok()))
            .set_next_token(next_token)
            .customize()
            .interceptor(counter.clone())
            .send()
            .await
            .map_err(|e| classify_with(e, counter.get(), kind_of_ram_error_code));
        observe("GetResourceShareInvitations", started, &result);
        let output = result?;
        let aws_request_id = output.request_id().map(str::to_owned);
        let invitations = output
            .resource_share_invitations()
            .iter()
            .map(to_domain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| unreadable(m, aws_request_id.clone(), counter.get()))?;
        Ok(UpstreamOutput {
            value: ListInvitationsPage {
                invitations,
                next_page_token: output.next_token().map(str::to_owned),
            },
            aws_request_id,
            attempts: counter.get(),
        })
    }
}

impl InvitationProvider for AwsRam {
    /// `GetResourceShareInvitations` with `resourceShareInvitationArns` = `invitation_ids`,
    /// `resourceShareArns` = `resource_share_ids` (AWS share ARNs), `maxResults` =
    /// `page_size`, `nextToken` = `page_token`. AWS has no status filter, so `status` is
    /// applied to the page AWS returns: a page may then hold fewer than `page_size`
    /// invitations, or none, while `next_page_token` is still set (AIP-158 allows short
    /// pages; only a missing token means the end).
    #[tracing::instrument(name = "upstream", skip_all, fields(operation = "GetResourceShareInvitations", account_id = %acting))]
    async fn list(
        &self,
        acting: &str,
        input: &ListInvitationsInput,
    ) -> Result<UpstreamOutput<ListInvitationsPage>, UpstreamError> {
        let mut output = self
            .get_invitations(
                acting,
                non_empty(&input.invitation_ids),
                non_empty(&input.resource_share_ids),
                input.page_size,
                input.page_token.clone(),
            )
            .await?;
        if let Some(status) = input.status {
            output.value.invitations.retain(|i| i.status == status);
        }
        Ok(output)
    }

    /// `GetResourceShareInvitations` with `resourceShareInvitationArns = [invitation_id]`.
    ///
    /// # Errors
    /// `ResourceNotFound` when AWS answers `ResourceShareInvitationArnNotFoundException` or
    /// an empty list; `Validation` for a malformed ARN; else as classified.
    #[tracing::instrument(name = "upstream", skip_all, fields(operation = "GetResourceShareInvitations", account_id = %acting))]
    async fn get(
        &self,
        acting: &str,
        invitation_id: &str,
    ) -> Result<UpstreamOutput<ResourceShareInvitation>, UpstreamError> {
        let output = self
            .get_invitations(
                acting,
                Some(vec![invitation_id.to_owned()]),
                None,
                None,
                None,
            )
            .await?;
        let found = output
            .value
            .invitations
            .into_iter()
            .find(|i| i.invitation_id == invitation_id);
        match found {
            Some(value) => Ok(UpstreamOutput {
                value,
                aws_request_id: output.aws_request_id,
                attempts: output.attempts,
            }),
            None => Err(UpstreamError {
                kind: UpstreamErrorKind::ResourceNotFound,
                aws_error_code: None,
                message: format!("resource share invitation {invitation_id} was not found"),
                aws_request_id: output.aws_request_id,
                attempts: output.attempts,
            }),
        }
    }

    /// `AcceptResourceShareInvitation` / `RejectResourceShareInvitation` with
    /// `resourceShareInvitationArn` and `clientToken` = `client_token` (AWS replays a token
    /// sent again with the same ARN; with another ARN it is `IdempotentParameterMismatch`).
    #[tracing::instrument(name = "upstream", skip_all, fields(operation = mutation.method(), account_id = %acting))]
    async fn respond(
        &self,
        acting: &str,
        mutation: &InvitationMutation,
        client_token: &str,
    ) -> Result<UpstreamOutput<ResourceShareInvitation>, UpstreamError> {
        let client = self.client(acting)?;
        let counter = AttemptCounter::default();
        let started = Instant::now();
        let result = match mutation {
            InvitationMutation::Accept { invitation_id } => client
                .accept_resource_share_invitation()
                .resource_share_invitation_arn(invitation_id)
                .client_token(client_token)
                .customize()
                .interceptor(counter.clone())
                .send()
                .await
                .map(|o| {
                    (
                        o.request_id().map(str::to_owned),
                        o.resource_share_invitation().cloned(),
                    )
                })
                .map_err(|e| classify_with(e, counter.get(), kind_of_ram_error_code)),
            InvitationMutation::Reject { invitation_id } => client
                .reject_resource_share_invitation()
                .resource_share_invitation_arn(invitation_id)
                .client_token(client_token)
                .customize()
                .interceptor(counter.clone())
                .send()
                .await
                .map(|o| {
                    (
                        o.request_id().map(str::to_owned),
                        o.resource_share_invitation().cloned(),
                    )
                })
                .map_err(|e| classify_with(e, counter.get(), kind_of_ram_error_code)),
        };
        observe(mutation.method(), started, &result);
        let (aws_request_id, invitation) = result?;
        let value = invitation
            .ok_or_else(|| "AWS answered without resourceShareInvitation".to_owned())
            .and_then(|i| to_domain(&i))
            .map_err(|m| unreadable(m, aws_request_id.clone(), counter.get()))?;
        Ok(UpstreamOutput {
            value,
            aws_request_id,
            attempts: counter.get(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::emulator::{Emulator, Fault, FaultKind, RunningEmulator};
    use crate::upstream::{AccountCredentials, AccountSettings, UpstreamSettings};

    const OWNER: &str = "111111111111";
    const RECEIVER: &str = "222222222222";

    #[test]
    fn ram_error_codes_map_to_kinds() {
        use UpstreamErrorKind as K;
        for (code, kind) in [
            (
                "ResourceShareInvitationArnNotFoundException",
                K::ResourceNotFound,
            ),
            ("UnknownResourceException", K::ResourceNotFound),
            (
                "ResourceShareInvitationAlreadyAcceptedException",
                K::Conflict,
            ),
            (
                "ResourceShareInvitationAlreadyRejectedException",
                K::Conflict,
            ),
            ("ResourceShareInvitationExpiredException", K::Conflict),
            ("MalformedArnException", K::Validation),
            ("InvalidParameterException", K::Validation),
            ("InvalidMaxResultsException", K::Validation),
            ("InvalidNextTokenException", K::Validation),
            (
                "IdempotentParameterMismatchException",
                K::IdempotentParameterMismatch,
            ),
            ("OperationNotPermittedException", K::AccessDenied),
            ("ThrottlingException", K::Throttling),
            ("ServiceUnavailableException", K::Unavailable),
            ("ServerInternalException", K::Unavailable),
            ("UnrecognizedClientException", K::Credentials),
            ("SomethingNewException", K::Unavailable),
        ] {
            assert_eq!(kind_of_ram_error_code(code), kind, "{code}");
        }
    }

    /// The emulator, a `--dev` upstream against it (`OWNER` configured, any other account
    /// allowed), the adapter, and an SDK client acting as `OWNER` to set shares up.
    async fn setup() -> (RunningEmulator, AwsRam, Client) {
        let running = Emulator::new().spawn().await.expect("emulator starts");
        let owner = AccountId::parse(OWNER).expect("12 digits");
        let upstream = SdkUpstream::new(&UpstreamSettings {
            region: Some("eu-central-1".to_owned()),
            endpoint_url: Some(running.endpoint_url()),
            max_attempts: 1,
            adaptive_retry: false,
            operation_timeout: Duration::from_secs(10),
            accounts: vec![AccountSettings {
                account_id: owner.clone(),
                credentials: AccountCredentials::Ambient,
            }],
            any_account: true,
            emulator_credentials: true,
            rate_per_sec: 1_000,
            burst: 1_000,
        })
        .await;
        let sdk = Client::new(&upstream.account_sdk_config(&owner).expect("configured"));
        (running, AwsRam::new(&upstream), sdk)
    }

    /// Shares with `RECEIVER` `n` times; returns the invitation ARNs, oldest first.
    async fn invite(running: &RunningEmulator, sdk: &Client, n: usize) -> Vec<String> {
        let before = running.emulator().ram_invitations().len();
        for i in 0..n {
            sdk.create_resource_share()
                .name(format!("share-{i}"))
                .principals(RECEIVER)
                .send()
                .await
                .expect("share created");
        }
        running.emulator().ram_invitations()[before..]
            .iter()
            .map(|i| i.resource_share_invitation_arn.clone())
            .collect()
    }

    fn accept(arn: &str) -> InvitationMutation {
        InvitationMutation::Accept {
            invitation_id: arn.to_owned(),
        }
    }

    fn reject(arn: &str) -> InvitationMutation {
        InvitationMutation::Reject {
            invitation_id: arn.to_owned(),
        }
    }

    #[tokio::test]
    async fn list_get_accept_and_reject_through_the_sdk() {
        let (running, ram, sdk) = setup().await;
        let arns = invite(&running, &sdk, 3).await;

        let got = ram.get(RECEIVER, &arns[0]).await.expect("found");
        let invitation = &got.value;
        assert_eq!(invitation.invitation_id, arns[0]);
        assert_eq!(invitation.status, InvitationStatus::Pending);
        assert_eq!(invitation.sender_account_id.as_deref(), Some(OWNER));
        assert_eq!(invitation.receiver_account_id.as_deref(), Some(RECEIVER));
        let share_arn = invitation.resource_share_arn.clone().expect("share arn");
        assert!(share_arn.starts_with("arn:aws:ram:eu-central-1:111111111111:resource-share/"));
        assert_eq!(
            invitation.resource_share_id.as_deref(),
            share_arn.rsplit('/').next()
        );
        assert_eq!(invitation.resource_share_name.as_deref(), Some("share-0"));
        let sent = running.emulator().ram_invitations()[0].invitation_timestamp;
        let created = invitation.create_time.expect("timestamp");
        assert!((created - sent).abs() < time::Duration::milliseconds(1));
        assert!(got.aws_request_id.is_some());
        assert_eq!(got.attempts, 1);

        let token = "a".repeat(64);
        let accepted = ram
            .respond(RECEIVER, &accept(&arns[0]), &token)
            .await
            .expect("accepted");
        assert_eq!(accepted.value.status, InvitationStatus::Accepted);
        // The same token and invitation is the same request: AWS replays the result.
        let replay = ram
            .respond(RECEIVER, &accept(&arns[0]), &token)
            .await
            .expect("replayed");
        assert_eq!(replay.value, accepted.value);
        let rejected = ram
            .respond(RECEIVER, &reject(&arns[1]), &"b".repeat(64))
            .await
            .expect("rejected");
        assert_eq!(rejected.value.status, InvitationStatus::Rejected);

        // Paging over AWS pages, and the client-side status filter.
        let mut input = ListInvitationsInput {
            page_size: Some(2),
            ..ListInvitationsInput::default()
        };
        let first = ram.list(RECEIVER, &input).await.expect("page 1").value;
        assert_eq!(first.invitations.len(), 2);
        input.page_token = first.next_page_token.clone();
        assert!(input.page_token.is_some());
        let second = ram.list(RECEIVER, &input).await.expect("page 2").value;
        assert_eq!(second.invitations.len(), 1);
        assert_eq!(second.next_page_token, None);
        let statuses: Vec<_> = first
            .invitations
            .iter()
            .chain(&second.invitations)
            .map(|i| (i.invitation_id.clone(), i.status))
            .collect();
        assert_eq!(
            statuses,
            [
                (arns[0].clone(), InvitationStatus::Accepted),
                (arns[1].clone(), InvitationStatus::Rejected),
                (arns[2].clone(), InvitationStatus::Pending),
            ]
        );
        let pending = ram
            .list(
                RECEIVER,
                &ListInvitationsInput {
                    status: Some(InvitationStatus::Pending),
                    ..ListInvitationsInput::default()
                },
            )
            .await
            .expect("filtered")
            .value;
        let ids: Vec<_> = pending
            .invitations
            .iter()
            .map(|i| &i.invitation_id)
            .collect();
        assert_eq!(ids, [&arns[2]]);
        let by_share = ram
            .list(
                RECEIVER,
                &ListInvitationsInput {
                    resource_share_ids: vec![share_arn],
                    ..ListInvitationsInput::default()
                },
            )
            .await
            .expect("by share")
            .value;
        assert_eq!(by_share.invitations.len(), 1);
        assert_eq!(by_share.invitations[0].invitation_id, arns[0]);

        let operations: Vec<_> = running
            .emulator()
            .calls()
            .into_iter()
            .filter(|c| c.operation == "AcceptResourceShareInvitation")
            .map(|c| c.client_token)
            .collect();
        assert_eq!(operations, [Some(token.clone()), Some(token)]);
    }

    #[tokio::test]
    async fn aws_errors_map_to_their_kinds() {
        let (running, ram, sdk) = setup().await;
        let arns = invite(&running, &sdk, 3).await;
        let unknown = "arn:aws:ram:eu-central-1:111111111111:resource-share-invitation/nope";
        let kind_and_code = |e: UpstreamError| (e.kind, e.aws_error_code);
        use UpstreamErrorKind as K;

        let error = ram.get(RECEIVER, unknown).await.expect_err("unknown");
        assert_eq!(
            kind_and_code(error),
            (
                K::ResourceNotFound,
                Some("ResourceShareInvitationArnNotFoundException".to_owned())
            )
        );
        let error = ram
            .get(RECEIVER, "not-an-arn")
            .await
            .expect_err("malformed");
        assert_eq!(
            kind_and_code(error),
            (K::Validation, Some("MalformedArnException".to_owned()))
        );
        let error = ram
            .respond(RECEIVER, &accept("arn:aws:ram:x"), "t-malformed")
            .await
            .expect_err("malformed");
        assert_eq!(error.kind, K::Validation);

        ram.respond(RECEIVER, &accept(&arns[0]), "t-1")
            .await
            .expect("accepted");
        let error = ram
            .respond(RECEIVER, &reject(&arns[0]), "t-2")
            .await
            .expect_err("already accepted");
        assert_eq!(
            kind_and_code(error),
            (
                K::Conflict,
                Some("ResourceShareInvitationAlreadyAcceptedException".to_owned())
            )
        );
        let error = ram
            .respond(RECEIVER, &accept(&arns[1]), "t-1")
            .await
            .expect_err("token reused for another invitation");
        assert_eq!(
            kind_and_code(error),
            (
                K::IdempotentParameterMismatch,
                Some("IdempotentParameterMismatchException".to_owned())
            )
        );
        let error = ram
            .respond(OWNER, &accept(&arns[1]), "t-3")
            .await
            .expect_err("the sender cannot accept");
        assert_eq!(
            kind_and_code(error),
            (
                K::AccessDenied,
                Some("OperationNotPermittedException".to_owned())
            )
        );

        let emulator = running.emulator();
        emulator.inject_fault(
            Fault::new(FaultKind::Throttling, 1).only_for("GetResourceShareInvitations"),
        );
        let error = ram.get(RECEIVER, &arns[1]).await.expect_err("throttled");
        assert_eq!(error.kind, K::Throttling);
        emulator.inject_fault(
            Fault::new(
                FaultKind::AwsError {
                    code: "ServiceUnavailableException".to_owned(),
                    message: "down".to_owned(),
                },
                1,
            )
            .only_for("AcceptResourceShareInvitation"),
        );
        let error = ram
            .respond(RECEIVER, &accept(&arns[1]), "t-4")
            .await
            .expect_err("unavailable");
        assert_eq!(error.kind, K::Unavailable);
        emulator.inject_fault(
            Fault::new(FaultKind::DropConnection, 1).only_for("AcceptResourceShareInvitation"),
        );
        let error = ram
            .respond(RECEIVER, &accept(&arns[1]), "t-5")
            .await
            .expect_err("dropped");
        assert_eq!(error.kind, K::OutcomeUnknown);
        // The dropped call was applied; the re-drive with the same token replays it.
        let redriven = ram
            .respond(RECEIVER, &accept(&arns[1]), "t-5")
            .await
            .expect("replayed");
        assert_eq!(redriven.value.status, InvitationStatus::Accepted);

        emulator.advance_ram_clock(Duration::from_secs(7 * 24 * 3600));
        let error = ram
            .respond(RECEIVER, &reject(&arns[2]), "t-6")
            .await
            .expect_err("expired");
        assert_eq!(
            kind_and_code(error),
            (
                K::Conflict,
                Some("ResourceShareInvitationExpiredException".to_owned())
            )
        );
        let expired = ram.get(RECEIVER, &arns[2]).await.expect("still readable");
        assert_eq!(expired.value.status, InvitationStatus::Expired);
    }

    #[tokio::test]
    async fn unconfigured_accounts_have_no_client_outside_dev() {
        let ram = AwsRam {
            configured: HashMap::new(),
            dev: None,
        };
        let error = ram.get(RECEIVER, "arn").await.expect_err("no client");
        assert_eq!(error.kind, UpstreamErrorKind::Internal);
        let error = ram.get("12", "arn").await.expect_err("not an account");
        assert_eq!(error.kind, UpstreamErrorKind::Internal);
    }
}
