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

use super::{AccountError, UpstreamError, UpstreamOutput};
use crate::domain::{
    AccountId, InvitationMutation, ListInvitationsInput, ListInvitationsPage, Provider,
    ResourceShareInvitation,
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

/// A boxed future of a provider call.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`InvitationProvider`] as a trait object, so that the service holds
/// either provider (or a test's) behind one type. Every
/// [`InvitationProvider`] is one.
pub trait DynInvitationProvider: Send + Sync + 'static {
    /// [`InvitationProvider::list`].
    fn list<'a>(
        &'a self,
        acting: &'a str,
        input: &'a ListInvitationsInput,
    ) -> BoxFuture<'a, Result<UpstreamOutput<ListInvitationsPage>, UpstreamError>>;
    /// [`InvitationProvider::get`].
    fn get<'a>(
        &'a self,
        acting: &'a str,
        invitation_id: &'a str,
    ) -> BoxFuture<'a, Result<UpstreamOutput<ResourceShareInvitation>, UpstreamError>>;
    /// [`InvitationProvider::respond`].
    fn respond<'a>(
        &'a self,
        acting: &'a str,
        mutation: &'a InvitationMutation,
        client_token: &'a str,
    ) -> BoxFuture<'a, Result<UpstreamOutput<ResourceShareInvitation>, UpstreamError>>;
}

impl<T: InvitationProvider> DynInvitationProvider for T {
    fn list<'a>(
        &'a self,
        acting: &'a str,
        input: &'a ListInvitationsInput,
    ) -> BoxFuture<'a, Result<UpstreamOutput<ListInvitationsPage>, UpstreamError>> {
        Box::pin(InvitationProvider::list(self, acting, input))
    }
    fn get<'a>(
        &'a self,
        acting: &'a str,
        invitation_id: &'a str,
    ) -> BoxFuture<'a, Result<UpstreamOutput<ResourceShareInvitation>, UpstreamError>> {
        Box::pin(InvitationProvider::get(self, acting, invitation_id))
    }
    fn respond<'a>(
        &'a self,
        acting: &'a str,
        mutation: &'a InvitationMutation,
        client_token: &'a str,
    ) -> BoxFuture<'a, Result<UpstreamOutput<ResourceShareInvitation>, UpstreamError>> {
        Box::pin(InvitationProvider::respond(
            self,
            acting,
            mutation,
            client_token,
        ))
    }
}

/// One provider as the service holds it: the adapter and the accounts that
/// may act through it.
struct Configured {
    adapter: Box<dyn DynInvitationProvider>,
    /// The configured accounts, in configuration order.
    accounts: Vec<AccountId>,
}

/// Every configured invitation provider, with its acting accounts.
///
/// A provider that is not configured answers FAILED_PRECONDITION
/// `ACCOUNT_NOT_CONFIGURED` for every account (through
/// [`AccountError::NotConfigured`]), as an unconfigured WorkSpaces account
/// does.
#[derive(Default)]
pub struct InvitationProviders {
    aws: Option<Configured>,
    huawei: Option<Configured>,
    /// `--dev`: any well-formed account of a configured provider may act.
    any_account: bool,
}

impl std::fmt::Debug for InvitationProviders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let accounts = |c: &Option<Configured>| c.as_ref().map(|c| c.accounts.clone());
        f.debug_struct("InvitationProviders")
            .field("aws", &accounts(&self.aws))
            .field("huawei", &accounts(&self.huawei))
            .field("any_account", &self.any_account)
            .finish()
    }
}

impl InvitationProviders {
    /// No provider: every invitation RPC is refused as not configured.
    pub fn none() -> Self {
        Self::default()
    }

    /// Lets any well-formed account act (`--dev`, against the emulator).
    #[must_use]
    pub fn any_account(mut self, yes: bool) -> Self {
        self.any_account = yes;
        self
    }

    /// Serves `provider` through `adapter` for `accounts`.
    #[must_use]
    pub fn with(
        mut self,
        provider: Provider,
        adapter: impl InvitationProvider,
        accounts: Vec<AccountId>,
    ) -> Self {
        let configured = Some(Configured {
            adapter: Box::new(adapter),
            accounts,
        });
        match provider {
            Provider::AwsRam => self.aws = configured,
            Provider::HuaweiRam => self.huawei = configured,
        }
        self
    }

    fn configured(&self, provider: Provider) -> Option<&Configured> {
        match provider {
            Provider::AwsRam => self.aws.as_ref(),
            Provider::HuaweiRam => self.huawei.as_ref(),
        }
    }

    /// Resolves the acting account of `provider`: `requested`, or the
    /// provider's only configured account when `requested` is `None`.
    ///
    /// # Errors
    /// [`AccountError::Required`] when none is named and the provider has
    /// not exactly one; [`AccountError::NotConfigured`] when the named one
    /// (or the provider) is not configured.
    pub fn resolve_account(
        &self,
        provider: Provider,
        requested: Option<AccountId>,
    ) -> Result<AccountId, AccountError> {
        let configured = self.configured(provider);
        let accounts = configured.map_or(&[][..], |c| &c.accounts[..]);
        match requested {
            None if accounts.len() == 1 => Ok(accounts[0].clone()),
            None => Err(AccountError::Required(accounts.len())),
            Some(a) if configured.is_some() && (self.any_account || accounts.contains(&a)) => Ok(a),
            Some(a) => Err(AccountError::NotConfigured(a)),
        }
    }

    /// The adapter of `provider`.
    ///
    /// # Errors
    /// An `Internal` [`UpstreamError`] when the provider is not configured
    /// (callers resolve the account first, which fails before this).
    pub fn adapter(&self, provider: Provider) -> Result<&dyn DynInvitationProvider, UpstreamError> {
        self.configured(provider)
            .map(|c| &*c.adapter)
            .ok_or_else(|| {
                UpstreamError::internal(format!("provider {provider} is not configured"))
            })
    }
}
