//! `accountlink.v1.ResourceShareInvitationService` (issue 12): validation
//! of its requests, the conversions to and from the domain model, and the
//! four handlers. Accept and Reject run the shared mutation pipeline
//! (`super::AccountLinkApi::mutation`); List and Get the shared read path.

use prost_types::Timestamp;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use super::context::AuditDraft;
use super::convert::{Checker, audit_str};
use super::operation::{Operation, Resource};
use super::{AccountLinkApi, Inner, OperationInput};
use crate::domain::{
    AccountId, ClientToken, FieldViolation, InvitationMutation, InvitationStatus,
    ListInvitationsInput, Provider, ResourceShareInvitation,
};
use crate::error::UpstreamResource;
use crate::proto::pb;
use crate::proto::pb::resource_share_invitation_service_server::ResourceShareInvitationService;
use crate::upstream::{AccountError, Upstream};

/// Most share or invitation ids one list request may filter by (Huawei's
/// limit for `resource_share_ids` and `resource_share_invitation_ids`; AWS
/// documents none).
pub(super) const MAX_FILTER_IDS: usize = 20;

/// AWS `maxResults` of `GetResourceShareInvitations`: 1..=500.
pub(super) const AWS_MAX_PAGE_SIZE: u32 = 500;

/// Huawei `limit` of `SearchResourceShareInvitation`: 1..=2000.
pub(super) const HUAWEI_MAX_PAGE_SIZE: u32 = 2000;

/// Longest `page_token` accepted (AWS `nextToken` has no documented limit;
/// the service's own, as for account links).
const MAX_PAGE_TOKEN: usize = 2048;

/// The provider of a request's `provider` field.
fn provider_of(c: &mut Checker, raw: i32) -> Option<Provider> {
    match pb::ResourceShareProvider::try_from(raw) {
        Ok(pb::ResourceShareProvider::AwsRam) => Some(Provider::AwsRam),
        Ok(pb::ResourceShareProvider::HuaweiRam) => Some(Provider::HuaweiRam),
        _ => {
            c.violations.push(FieldViolation::new(
                "provider",
                "is required: RESOURCE_SHARE_PROVIDER_AWS_RAM or RESOURCE_SHARE_PROVIDER_HUAWEI_RAM",
            ));
            None
        }
    }
}

/// The acting account as `provider` spells it.
fn account_of(c: &mut Checker, provider: Option<Provider>, raw: &str) -> Option<AccountId> {
    match provider {
        Some(Provider::AwsRam) => c.optional("account_id", raw, AccountId::parse),
        Some(Provider::HuaweiRam) => c.optional("account_id", raw, AccountId::parse_huawei),
        None => c.optional("account_id", raw, AccountId::parse_any),
    }
}

/// Whether `s` is `[A-Za-z0-9-]{1,64}`.
fn is_plain_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An AWS RAM ARN of `resource_type`:
/// `arn:<partition>:ram:<region>:<12 digits>:<resource_type>/<id>` (the
/// ARN format of the AWS General Reference; RAM's ids are UUIDs, checked
/// here only as `[A-Za-z0-9-]{1,64}`), at most 256 characters.
fn parse_aws_ram_arn(s: &str, resource_type: &str) -> Result<String, String> {
    let err = || {
        format!(
            "must be an AWS RAM ARN: arn:<partition>:ram:<region>:<account>:{resource_type}/<id>"
        )
    };
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else {
        return Err(err());
    };
    let ok = s.len() <= 256
        && arn == "arn"
        && partition.starts_with("aws")
        && service == "ram"
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && AccountId::parse(account).is_ok()
        && resource
            .strip_prefix(resource_type)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(is_plain_id);
    if ok { Ok(s.to_owned()) } else { Err(err()) }
}

/// A Huawei RAM id (invitation or share): `[A-Za-z0-9-]{1,64}` (Huawei
/// shows 32 hex characters or a UUID; the API reference gives no pattern).
fn parse_huawei_id(s: &str) -> Result<String, String> {
    if is_plain_id(s) {
        Ok(s.to_owned())
    } else {
        Err("must be a Huawei RAM id: 1..64 letters, digits or '-'".to_owned())
    }
}

/// An invitation id as `provider` spells it.
fn invitation_id_parser(provider: Option<Provider>) -> fn(&str) -> Result<String, String> {
    match provider {
        Some(Provider::HuaweiRam) => parse_huawei_id,
        _ => |s| parse_aws_ram_arn(s, "resource-share-invitation"),
    }
}

/// A share id as `provider` spells it.
fn share_id_parser(provider: Option<Provider>) -> fn(&str) -> Result<String, String> {
    match provider {
        Some(Provider::HuaweiRam) => parse_huawei_id,
        _ => |s| parse_aws_ram_arn(s, "resource-share"),
    }
}

/// A validated Accept or Reject.
fn answer(
    provider: i32,
    account_id: &str,
    invitation_id: &str,
    client_token: &str,
    accept: bool,
) -> Result<OperationInput, Vec<FieldViolation>> {
    let mut c = Checker::default();
    let provider = provider_of(&mut c, provider);
    let account = account_of(&mut c, provider, account_id);
    let invitation_id = c.required(
        "invitation_id",
        invitation_id,
        invitation_id_parser(provider),
    );
    let token = c.optional("client_token", client_token, ClientToken::parse);
    let op = provider
        .zip(invitation_id)
        .map(|(provider, invitation_id)| {
            let mutation = if accept {
                InvitationMutation::Accept { invitation_id }
            } else {
                InvitationMutation::Reject { invitation_id }
            };
            (
                account,
                (Operation::Invitation { provider, mutation }, token),
            )
        });
    c.finish(op)
}

/// A validated read: the named acting account (if any), the provider and
/// the read's input.
type ReadInput<T> = Result<(Option<AccountId>, (Provider, T)), Vec<FieldViolation>>;

/// A validated Get: the provider and the invitation.
fn get(req: &pb::GetResourceShareInvitationRequest) -> ReadInput<String> {
    let mut c = Checker::default();
    let provider = provider_of(&mut c, req.provider);
    let account = account_of(&mut c, provider, &req.account_id);
    let id = c.required(
        "invitation_id",
        &req.invitation_id,
        invitation_id_parser(provider),
    );
    c.finish(provider.zip(id).map(|p| (account, p)))
}

/// A validated List: the provider and the input, page size clamped to the
/// provider's range (AIP-158: values above the maximum are coerced).
fn list(req: &pb::ListResourceShareInvitationsRequest) -> ReadInput<ListInvitationsInput> {
    let mut c = Checker::default();
    let provider = provider_of(&mut c, req.provider);
    let account = account_of(&mut c, provider, &req.account_id);
    let mut ids = |field: &str, raw: &[String], parse: fn(&str) -> Result<String, String>| {
        if raw.len() > MAX_FILTER_IDS {
            c.violations.push(FieldViolation::new(
                field,
                format!("at most {MAX_FILTER_IDS} ids"),
            ));
            return Vec::new();
        }
        raw.iter()
            .enumerate()
            .filter_map(|(i, s)| c.required(&format!("{field}[{i}]"), s, parse))
            .collect::<Vec<_>>()
    };
    let resource_share_ids = ids(
        "resource_share_ids",
        &req.resource_share_ids,
        share_id_parser(provider),
    );
    let invitation_ids = ids(
        "invitation_ids",
        &req.invitation_ids,
        invitation_id_parser(provider),
    );
    let status = match pb::ResourceShareInvitationStatus::try_from(req.status) {
        Ok(s) => status_from_pb(s),
        Err(_) => {
            c.violations.push(FieldViolation::new(
                "status",
                "must be a ResourceShareInvitationStatus value",
            ));
            None
        }
    };
    if req.page_size < 0 {
        c.violations
            .push(FieldViolation::new("page_size", "must not be negative"));
    }
    let max = match provider {
        Some(Provider::HuaweiRam) => HUAWEI_MAX_PAGE_SIZE,
        _ => AWS_MAX_PAGE_SIZE,
    };
    let page_size = u32::try_from(req.page_size)
        .ok()
        .filter(|n| *n > 0)
        .map(|n| n.min(max));
    let page_token = c.optional("page_token", &req.page_token, |s| {
        if s.len() <= MAX_PAGE_TOKEN && s.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
            Ok(s.to_owned())
        } else {
            Err(format!(
                "must be at most {MAX_PAGE_TOKEN} printable ASCII characters, as a previous response returned it"
            ))
        }
    });
    c.finish(provider.map(|provider| {
        (
            account,
            (
                provider,
                ListInvitationsInput {
                    invitation_ids,
                    resource_share_ids,
                    status,
                    page_size,
                    page_token,
                },
            ),
        )
    }))
}

fn status_from_pb(s: pb::ResourceShareInvitationStatus) -> Option<InvitationStatus> {
    use pb::ResourceShareInvitationStatus as S;
    match s {
        S::Unspecified => None,
        S::Pending => Some(InvitationStatus::Pending),
        S::Accepted => Some(InvitationStatus::Accepted),
        S::Rejected => Some(InvitationStatus::Rejected),
        S::Expired => Some(InvitationStatus::Expired),
    }
}

fn status_to_pb(s: InvitationStatus) -> pb::ResourceShareInvitationStatus {
    use pb::ResourceShareInvitationStatus as S;
    match s {
        InvitationStatus::Pending => S::Pending,
        InvitationStatus::Accepted => S::Accepted,
        InvitationStatus::Rejected => S::Rejected,
        InvitationStatus::Expired => S::Expired,
    }
}

fn provider_to_pb(p: Provider) -> pb::ResourceShareProvider {
    match p {
        Provider::AwsRam => pb::ResourceShareProvider::AwsRam,
        Provider::HuaweiRam => pb::ResourceShareProvider::HuaweiRam,
    }
}

fn timestamp(t: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

/// The proto of a domain invitation.
pub(super) fn invitation_to_pb(i: &ResourceShareInvitation) -> pb::ResourceShareInvitation {
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    pb::ResourceShareInvitation {
        provider: provider_to_pb(i.provider) as i32,
        invitation_id: i.invitation_id.clone(),
        invitation_arn: s(&i.invitation_arn),
        resource_share_id: s(&i.resource_share_id),
        resource_share_arn: s(&i.resource_share_arn),
        resource_share_name: s(&i.resource_share_name),
        sender_account_id: s(&i.sender_account_id),
        receiver_account_id: s(&i.receiver_account_id),
        status: status_to_pb(i.status) as i32,
        create_time: i.create_time.map(timestamp),
        update_time: i.update_time.map(timestamp),
    }
}

/// The audit `response_elements` of an invitation answer: the invitation's
/// identity and status (times are left out; the provider has them).
pub(super) fn invitation_to_json(i: &pb::ResourceShareInvitation) -> Value {
    let name = |n: Option<&str>| n.map(|n| n.to_owned());
    json!({
        "ResourceShareInvitation": {
            "provider": name(pb::ResourceShareProvider::try_from(i.provider).ok().map(|p| p.as_str_name())),
            "invitation_id": i.invitation_id,
            "resource_share_id": i.resource_share_id,
            "resource_share_name": i.resource_share_name,
            "sender_account_id": i.sender_account_id,
            "receiver_account_id": i.receiver_account_id,
            "status": name(pb::ResourceShareInvitationStatus::try_from(i.status).ok().map(|s| s.as_str_name())),
        }
    })
}

/// The `provider` of a request as the audit trail records it: `AWS_RAM`,
/// `HUAWEI_RAM`, or the raw number when it is neither.
fn provider_param(raw: i32) -> Value {
    match pb::ResourceShareProvider::try_from(raw) {
        Ok(pb::ResourceShareProvider::AwsRam) => Provider::AwsRam.as_str().into(),
        Ok(pb::ResourceShareProvider::HuaweiRam) => Provider::HuaweiRam.as_str().into(),
        _ => raw.to_string().into(),
    }
}

/// Audit parameters of a Get, Accept or Reject.
fn answer_params(provider: i32, account_id: &str, invitation_id: &str) -> Value {
    json!({
        "provider": provider_param(provider),
        "account_id": audit_str(account_id),
        "invitation_id": audit_str(invitation_id),
    })
}

/// Audit parameters of a List.
fn list_params(req: &pb::ListResourceShareInvitationsRequest) -> Value {
    let ids = |v: &[String]| v.iter().map(|s| audit_str(s)).collect::<Vec<_>>();
    let status = pb::ResourceShareInvitationStatus::try_from(req.status)
        .map_or_else(|_| Value::from(req.status), |s| s.as_str_name().into());
    json!({
        "provider": provider_param(req.provider),
        "account_id": audit_str(&req.account_id),
        "resource_share_ids": ids(&req.resource_share_ids),
        "invitation_ids": ids(&req.invitation_ids),
        "status": status,
        "page_size": req.page_size,
        "page_token": audit_str(&req.page_token),
    })
}

/// The acting account of a read: the provider's resolution.
fn read_account<U: Upstream, T>(
    inner: &Inner<U>,
    (provider, _): &(Provider, T),
    requested: Option<AccountId>,
) -> Result<AccountId, AccountError> {
    inner.invitations.resolve_account(*provider, requested)
}

fn upstream_resource(p: Provider) -> UpstreamResource {
    match p {
        Provider::AwsRam => UpstreamResource::AWS_RAM_INVITATION,
        Provider::HuaweiRam => UpstreamResource::HUAWEI_RAM_INVITATION,
    }
}

/// The invitation of a mutation's answer (`Operation::drive` answers one).
fn invitation_of(resource: Resource) -> Option<pb::ResourceShareInvitation> {
    match resource {
        Resource::Invitation(i) => Some(i),
        Resource::Link(_) => None,
    }
}

/// Accept and Reject requests share one shape: provider, account, invitation, token.
trait AnswerRequest {
    fn into_parts(self) -> (i32, String, String, String);
}

/// Accept and Reject responses share one shape.
trait FromAnswer {
    fn from_answer(invitation: pb::ResourceShareInvitation, client_token: String) -> Self;
}

macro_rules! impl_answer {
    ($($req:ty => $resp:ty),*) => {$(
        impl AnswerRequest for $req {
            fn into_parts(self) -> (i32, String, String, String) {
                (self.provider, self.account_id, self.invitation_id, self.client_token)
            }
        }
        impl FromAnswer for $resp {
            fn from_answer(invitation: pb::ResourceShareInvitation, client_token: String) -> Self {
                Self { resource_share_invitation: Some(invitation), client_token }
            }
        }
    )*};
}

impl_answer!(
    pb::AcceptResourceShareInvitationRequest => pb::AcceptResourceShareInvitationResponse,
    pb::RejectResourceShareInvitationRequest => pb::RejectResourceShareInvitationResponse
);

impl<U: Upstream> AccountLinkApi<U> {
    /// Accept (`accept`) or Reject through the shared mutation pipeline.
    async fn on_invitation<Req, Resp>(
        &self,
        method: &'static str,
        request: Request<Req>,
        accept: bool,
    ) -> Result<Response<Resp>, Status>
    where
        Req: AnswerRequest + Send + 'static,
        Resp: FromAnswer + Send + 'static,
    {
        let ctx = self.context(method, false, &request);
        let (provider, account_id, invitation_id, client_token) = request.into_inner().into_parts();
        let this = self.clone();
        self.detach(ctx.span(), async move {
            let draft = AuditDraft::new(answer_params(provider, &account_id, &invitation_id));
            let parsed = answer(provider, &account_id, &invitation_id, &client_token, accept);
            let reply = this.mutation(&ctx, parsed, draft).await?;
            let invitation = invitation_of(reply.resource).unwrap_or_default();
            Ok(ctx.response(
                Resp::from_answer(invitation, reply.client_token),
                reply.replayed,
            ))
        })
        .await
    }
}

#[tonic::async_trait]
impl<U: Upstream> ResourceShareInvitationService for AccountLinkApi<U> {
    async fn list_resource_share_invitations(
        &self,
        request: Request<pb::ListResourceShareInvitationsRequest>,
    ) -> Result<Response<pb::ListResourceShareInvitationsResponse>, Status> {
        let ctx = self.context("ListResourceShareInvitations", true, &request);
        let req = request.into_inner();
        let this = self.clone();
        self.detach(ctx.span(), async move {
            let mut draft = AuditDraft::new(list_params(&req));
            let (acting, (provider, input)) =
                match this.admit(&ctx, &mut draft, list(&req), read_account) {
                    Ok(v) => v,
                    Err(e) => return Err(this.refuse(&ctx, draft, e).await),
                };
            let result = match this.inner.invitations.adapter(provider) {
                Ok(adapter) => {
                    ctx.within_deadline(adapter.list(acting.as_str(), &input))
                        .await
                }
                Err(e) => Err(e),
            };
            let token = input.page_token.as_deref().unwrap_or("");
            this.finish_read(
                &ctx,
                draft,
                &acting,
                result,
                &upstream_resource(provider),
                ("page_token", token),
                |page| pb::ListResourceShareInvitationsResponse {
                    resource_share_invitations: page
                        .invitations
                        .iter()
                        .map(invitation_to_pb)
                        .collect(),
                    next_page_token: page.next_page_token.unwrap_or_default(),
                },
            )
            .await
        })
        .await
    }

    async fn get_resource_share_invitation(
        &self,
        request: Request<pb::GetResourceShareInvitationRequest>,
    ) -> Result<Response<pb::GetResourceShareInvitationResponse>, Status> {
        let ctx = self.context("GetResourceShareInvitation", true, &request);
        let req = request.into_inner();
        let this = self.clone();
        self.detach(ctx.span(), async move {
            let mut draft = AuditDraft::new(answer_params(
                req.provider,
                &req.account_id,
                &req.invitation_id,
            ));
            let (acting, (provider, id)) =
                match this.admit(&ctx, &mut draft, get(&req), read_account) {
                    Ok(v) => v,
                    Err(e) => return Err(this.refuse(&ctx, draft, e).await),
                };
            let result = match this.inner.invitations.adapter(provider) {
                Ok(adapter) => ctx.within_deadline(adapter.get(acting.as_str(), &id)).await,
                Err(e) => Err(e),
            };
            this.finish_read(
                &ctx,
                draft,
                &acting,
                result,
                &upstream_resource(provider),
                ("invitation_id", &id),
                |invitation| pb::GetResourceShareInvitationResponse {
                    resource_share_invitation: Some(invitation_to_pb(&invitation)),
                },
            )
            .await
        })
        .await
    }

    async fn accept_resource_share_invitation(
        &self,
        request: Request<pb::AcceptResourceShareInvitationRequest>,
    ) -> Result<Response<pb::AcceptResourceShareInvitationResponse>, Status> {
        self.on_invitation("AcceptResourceShareInvitation", request, true)
            .await
    }

    async fn reject_resource_share_invitation(
        &self,
        request: Request<pb::RejectResourceShareInvitationRequest>,
    ) -> Result<Response<pb::RejectResourceShareInvitationResponse>, Status> {
        self.on_invitation("RejectResourceShareInvitation", request, false)
            .await
    }
}
