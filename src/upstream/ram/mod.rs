//! The resource-share invitation upstreams (issue 12): AWS RAM through
//! `aws-sdk-ram` (`aws`) and Huawei Cloud RAM over signed HTTPS
//! (`huawei`).
//!
//! Both implement [`InvitationProvider`] and report failures as
//! [`UpstreamError`], whose [`UpstreamErrorKind`](super::UpstreamErrorKind) decides the gRPC code and
//! whether a client-token record is final or retryable (DESIGN §5), exactly
//! as for WorkSpaces. `UpstreamError::aws_error_code` carries the provider's
//! error code (`ResourceShareInvitationAlreadyAcceptedException`,
//! `RAM.1004`, `APIGW.0301`) and `aws_request_id` its request id
//! (`x-amzn-RequestId`, Huawei `X-Request-Id`).

pub mod aws;
pub mod huawei;

use std::future::Future;

use super::{UpstreamError, UpstreamOutput};
use crate::domain::{
    InvitationMutation, ListInvitationsInput, ListInvitationsPage, ResourceShareInvitation,
};

/// One provider's three invitation operations, as an acting account.
///
/// `acting` is the account id as the provider spells it: 12 digits on AWS,
/// the Huawei account (domain) id on Huawei. The caller has already checked
/// that it is configured (or that `--dev` allows any).
pub trait InvitationProvider: Send + Sync + 'static {
    /// Lists the invitations `acting` received (AWS
    /// `GetResourceShareInvitations`, Huawei
    /// `POST /v1/resource-share-invitations/search`).
    fn list(
        &self,
        acting: &str,
        input: &ListInvitationsInput,
    ) -> impl Future<Output = Result<UpstreamOutput<ListInvitationsPage>, UpstreamError>> + Send;

    /// One invitation by id; `ResourceNotFound` when the provider has none
    /// that `acting` can see.
    fn get(
        &self,
        acting: &str,
        invitation_id: &str,
    ) -> impl Future<Output = Result<UpstreamOutput<ResourceShareInvitation>, UpstreamError>> + Send;

    /// Accepts or rejects. `client_token` (64 lowercase hex characters,
    /// deterministic per dedup key) is sent as AWS `clientToken`; Huawei has
    /// no such parameter and ignores it.
    fn respond(
        &self,
        acting: &str,
        mutation: &InvitationMutation,
        client_token: &str,
    ) -> impl Future<Output = Result<UpstreamOutput<ResourceShareInvitation>, UpstreamError>> + Send;
}
