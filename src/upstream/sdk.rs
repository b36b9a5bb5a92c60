//! [`SdkUpstream`]: the upstream through `aws-sdk-workspaces` and `aws-config`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_workspaces::Client;
use aws_sdk_workspaces::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_workspaces::operation::RequestId;
use aws_sdk_workspaces::types::AccountLinkStatusEnum;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::client_cache::ClientCache;
use super::http_client::PooledHttpClient;
use super::{AccountError, Upstream, UpstreamError, UpstreamErrorKind, UpstreamOutput};
use crate::domain::{
    AccountId, AccountLink, AccountLinkStatus, GetAccountLinkInput, ListAccountLinksInput,
    ListAccountLinksPage, Mutation,
};

/// Most SDK clients of unconfigured acting accounts kept at once in `--dev`, where any
/// 12-digit account may act. Past it the least recently used one is dropped (and rebuilt if
/// that account acts again); its connections stay in the shared pool. Configured accounts
/// do not count and are never dropped.
pub const DEV_CLIENT_CAPACITY: usize = 1024;

/// The secret access key of every emulator account in `--dev` mode. The
/// emulator identifies the caller by the access key id alone (DESIGN §8).
pub const DEV_SECRET_ACCESS_KEY: &str = "account-link-service-dev-secret";

/// Where an acting account's AWS credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCredentials {
    /// The standard aws-config chain (environment, profile, web identity,
    /// container and instance metadata).
    Ambient,
    /// A named profile of the shared AWS config files.
    Profile(String),
    /// A role assumed through STS with the base credentials as the source.
    AssumeRole {
        /// `arn:aws:iam::<account>:role/<name>`.
        role_arn: String,
        /// The `ExternalId` the role's trust policy requires.
        external_id: Option<String>,
        /// The role session name.
        session_name: String,
    },
}

/// One configured acting account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSettings {
    /// The acting account's id.
    pub account_id: AccountId,
    /// Its credentials.
    pub credentials: AccountCredentials,
}

/// Settings of [`SdkUpstream`].
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// AWS Region; `None` takes the aws-config chain's (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Endpoint override (`AWS_ENDPOINT_URL` is honoured by aws-config too).
    pub endpoint_url: Option<String>,
    /// SDK retry: maximum attempts per operation, >= 1.
    pub max_attempts: u32,
    /// SDK retry: adaptive mode instead of standard.
    pub adaptive_retry: bool,
    /// Deadline of one whole operation, retries included.
    pub operation_timeout: Duration,
    /// The configured acting accounts.
    pub accounts: Vec<AccountSettings>,
    /// Accept any 12-digit acting account, not only the configured ones
    /// (`--dev`).
    pub any_account: bool,
    /// Base and per-account credentials are the emulator's static ones
    /// (access key id = account id); never probe the ambient chain.
    pub emulator_credentials: bool,
    /// Local token bucket per acting account: AWS calls per second.
    pub rate_per_sec: u32,
    /// Local token bucket per acting account: burst.
    pub burst: u32,
}

/// The upstream through `aws-sdk-workspaces`: one SDK client per acting
/// account, built once, every one sharing one HTTP client and so one connection
/// pool ([`PooledHttpClient`]), credentials providers (STS AssumeRole) included.
///
/// The clients of configured accounts are built by [`SdkUpstream::new`] and
/// looked up without a lock. In `--dev` (any account, emulator credentials) the
/// client of any other account is built on its first call, exactly once however
/// many calls race for it, and kept in a cache of at most
/// [`DEV_CLIENT_CAPACITY`] clients (least recently used out first).
#[derive(Debug)]
pub struct SdkUpstream {
    base: SdkConfig,
    limiter: Limiter,
    /// The configured accounts' clients; never changes after `new`.
    configured: HashMap<AccountId, Client>,
    /// `--dev` with emulator credentials: the clients of other accounts.
    dev: Option<ClientCache<AccountId, Client>>,
    any_account: bool,
    /// The configured accounts' credentials providers (`None`: the base config's), for
    /// [`SdkUpstream::account_sdk_config`].
    providers: HashMap<AccountId, Option<SharedCredentialsProvider>>,
}

impl SdkUpstream {
    /// Loads the aws-config chain, with one shared HTTP client, and builds a
    /// client per configured account.
    pub async fn new(settings: &UpstreamSettings) -> Self {
        Self::with_dev_capacity(settings, DEV_CLIENT_CAPACITY).await
    }

    /// [`SdkUpstream::new`] with room for `dev_capacity` `--dev` clients.
    async fn with_dev_capacity(settings: &UpstreamSettings, dev_capacity: usize) -> Self {
        let retry = if settings.adaptive_retry {
            RetryConfig::adaptive()
        } else {
            RetryConfig::standard()
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(PooledHttpClient::shared())
            .retry_config(retry.with_max_attempts(settings.max_attempts.max(1)))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(settings.operation_timeout)
                    .build(),
            );
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        } else if settings.emulator_credentials {
            loader = loader.region(Region::from_static("us-east-1"));
        }
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if settings.emulator_credentials {
            // Never probe the ambient chain (or instance metadata) in dev mode.
            loader = loader.credentials_provider(dev_credentials("000000000000"));
        }
        let base = loader.load().await;
        let mut clients = HashMap::new();
        let mut providers = HashMap::new();
        for account in &settings.accounts {
            let provider = match &account.credentials {
                AccountCredentials::Ambient if settings.emulator_credentials => {
                    Some(dev_credentials(account.account_id.as_str()))
                }
                AccountCredentials::Ambient => None,
                AccountCredentials::Profile(name) => {
                    let profile = aws_config::profile::ProfileFileCredentialsProvider::builder()
                        .profile_name(name)
                        .build();
                    Some(SharedCredentialsProvider::new(profile))
                }
                AccountCredentials::AssumeRole {
                    role_arn,
                    external_id,
                    session_name,
                } => {
                    let mut builder = aws_config::sts::AssumeRoleProvider::builder(role_arn)
                        .session_name(session_name)
                        .configure(&base);
                    if let Some(id) = external_id {
                        builder = builder.external_id(id);
                    }
                    Some(SharedCredentialsProvider::new(builder.build().await))
                }
            };
            providers.insert(account.account_id.clone(), provider.clone());
            clients.insert(account.account_id.clone(), client_with(&base, provider));
        }
        let quota = governor::Quota::per_second(
            NonZeroU32::new(settings.rate_per_sec).unwrap_or(NonZeroU32::MIN),
        )
        .allow_burst(NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN));
        Self {
            base,
            limiter: Limiter(governor::RateLimiter::keyed(quota)),
            configured: clients,
            dev: (settings.any_account && settings.emulator_credentials)
                .then(|| ClientCache::new(dev_capacity)),
            any_account: settings.any_account,
            providers,
        }
    }

    /// The SDK client of `acting`: a configured account's, else in `--dev` the
    /// cached one, built on first use.
    ///
    /// # Errors
    /// `Internal` when `acting` is not configured and this is not `--dev` with
    /// emulator credentials (resolve_account lets it through with `--dev` alone).
    fn client(&self, acting: &AccountId) -> Result<Client, UpstreamError> {
        if let Some(client) = self.configured.get(acting) {
            return Ok(client.clone());
        }
        let Some(dev) = &self.dev else {
            return Err(UpstreamError::internal(format!(
                "no client for account {acting}"
            )));
        };
        let mut built = false;
        let client = dev.get_or_build(acting, || {
            built = true;
            client_with(&self.base, Some(dev_credentials(acting.as_str())))
        });
        if built {
            // Token buckets: twice as many accounts as clients before idle ones go.
            self.forget_idle_buckets(dev.capacity().saturating_mul(2));
        }
        Ok(client)
    }
}

/// What the adapters of other AWS services (`ram::aws`) share with the WorkSpaces clients:
/// the same region, endpoint, retry and timeout settings, HTTP client (connection pool) and
/// per-account credentials providers (STS sessions included).
impl SdkUpstream {
    /// The configured acting accounts, in no particular order.
    pub fn configured_accounts(&self) -> Vec<AccountId> {
        self.configured.keys().cloned().collect()
    }

    /// The `SdkConfig` an SDK client of any AWS service uses to act as `acting`: the base
    /// config (region, endpoint override, retry, timeouts, the shared HTTP client) with the
    /// account's credentials provider, the very provider its WorkSpaces client uses (so an
    /// assumed role's session is shared); in `--dev` with emulator credentials, the
    /// emulator credentials of any account.
    ///
    /// # Errors
    /// `Internal` when `acting` has no client, as [`SdkUpstream::client`].
    pub fn account_sdk_config(&self, acting: &AccountId) -> Result<SdkConfig, UpstreamError> {
        let provider = match self.providers.get(acting) {
            Some(provider) => provider.clone(),
            None if self.dev.is_some() => Some(dev_credentials(acting.as_str())),
            None => {
                return Err(UpstreamError::internal(format!(
                    "no client for account {acting}"
                )));
            }
        };
        let mut builder = self.base.to_builder();
        if let Some(provider) = provider {
            builder = builder.credentials_provider(provider);
        }
        Ok(builder.build())
    }

    /// `Some(capacity)` when clients of unconfigured accounts are built on demand (`--dev`
    /// with emulator credentials), with the bound of the WorkSpaces cache; `None` otherwise.
    pub(super) fn dev_client_capacity(&self) -> Option<usize> {
        self.dev.as_ref().map(ClientCache::capacity)
    }
}

/// The per-account token buckets (governor's GCRA).
struct Limiter(governor::DefaultKeyedRateLimiter<AccountId>);

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limiter")
    }
}

impl SdkUpstream {
    /// Drops the token buckets that are full again (indistinguishable from new
    /// ones) once more than `high_water` accounts have one, so that `--dev`
    /// with ever new accounts keeps a bounded limiter too.
    fn forget_idle_buckets(&self, high_water: usize) {
        if self.limiter.0.len() > high_water {
            self.limiter.0.retain_recent();
            self.limiter.0.shrink_to_fit();
        }
    }

    /// Takes a token for `acting` or refuses the call (DESIGN §12: local
    /// upstream rate limit; no AWS call is made).
    fn admit(&self, acting: &AccountId) -> Result<(), UpstreamError> {
        use governor::clock::Clock;
        match self.limiter.0.check_key(acting) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                metrics::counter!(crate::metrics::UPSTREAM_RATE_LIMITED, "account_id" => acting.to_string())
                    .increment(1);
                Err(UpstreamError {
                    kind: UpstreamErrorKind::RateLimited { retry_after: wait },
                    aws_error_code: None,
                    message: format!(
                        "the local AWS call rate limit for account {acting} is exhausted"
                    ),
                    aws_request_id: None,
                    attempts: 0,
                })
            }
        }
    }
}

/// Records an upstream call's outcome and latency.
pub(super) fn observe<T>(
    operation: &'static str,
    started: Instant,
    result: &Result<T, UpstreamError>,
) {
    let code = match result {
        Ok(_) => "none".to_owned(),
        Err(e) => e
            .aws_error_code
            .clone()
            .unwrap_or_else(|| "transport".to_owned()),
    };
    metrics::counter!(crate::metrics::UPSTREAM_REQUESTS, "operation" => operation, "aws_error_code" => code)
        .increment(1);
    metrics::histogram!(crate::metrics::UPSTREAM_DURATION, "operation" => operation)
        .record(started.elapsed().as_secs_f64());
}

/// The static emulator credentials of `account_id` (access key id = account id).
pub(super) fn dev_credentials(account_id: &str) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(
        account_id,
        DEV_SECRET_ACCESS_KEY,
        None,
        None,
        "account-link-service-dev",
    ))
}

fn client_with(base: &SdkConfig, credentials: Option<SharedCredentialsProvider>) -> Client {
    let mut builder = aws_sdk_workspaces::config::Builder::from(base);
    if let Some(provider) = credentials {
        builder = builder.credentials_provider(provider);
    }
    Client::from_conf(builder.build())
}

/// Counts the HTTP attempts of one operation (the SDK retries internally); an interceptor
/// for any AWS SDK client's `customize().interceptor(...)`.
#[derive(Debug, Clone, Default)]
pub(super) struct AttemptCounter(Arc<AtomicU32>);

impl AttemptCounter {
    /// Attempts started so far.
    pub(super) fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Intercept for AttemptCounter {
    fn name(&self) -> &'static str {
        "AttemptCounter"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Classifies an SDK error (DESIGN §7: the AWS error code decides).
fn classify<E>(err: SdkError<E, HttpResponse>, attempts: u32) -> UpstreamError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify_with(err, attempts, UpstreamErrorKind::from_aws_error_code)
}

/// Classifies an error of any AWS SDK client: a service error by `kind_of(code)` (DESIGN §7:
/// the AWS error code decides; no code is `Unavailable`), construction failures as
/// `Internal`, timeouts and transport failures as `OutcomeUnknown`. Shared by the adapters of
/// other AWS services (`ram::aws`) so transport failures read the same everywhere.
pub(super) fn classify_with<E>(
    err: SdkError<E, HttpResponse>,
    attempts: u32,
    kind_of: fn(&str) -> UpstreamErrorKind,
) -> UpstreamError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let aws_request_id = err.request_id().map(str::to_owned);
    let (kind, aws_error_code, message) = match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().map(str::to_owned);
            let message = service.err().message().unwrap_or_default().to_owned();
            let kind = match code.as_deref() {
                Some(code) => kind_of(code),
                None => UpstreamErrorKind::Unavailable,
            };
            (kind, code, message)
        }
        SdkError::ConstructionFailure(_) => (
            UpstreamErrorKind::Internal,
            None,
            format!(
                "request construction failed: {}",
                crate::telemetry::error_chain(&err)
            ),
        ),
        SdkError::TimeoutError(_) => (
            UpstreamErrorKind::OutcomeUnknown,
            None,
            "upstream call timed out".to_owned(),
        ),
        _ => (
            UpstreamErrorKind::OutcomeUnknown,
            None,
            format!(
                "upstream transport failure: {}",
                crate::telemetry::error_chain(&err)
            ),
        ),
    };
    UpstreamError {
        kind,
        aws_error_code,
        message,
        aws_request_id,
        attempts,
    }
}

fn to_domain(link: Option<&aws_sdk_workspaces::types::AccountLink>) -> AccountLink {
    let link = link
        .cloned()
        .unwrap_or_else(|| aws_sdk_workspaces::types::AccountLink::builder().build());
    AccountLink {
        account_link_id: link.account_link_id().unwrap_or_default().to_owned(),
        account_link_status: link
            .account_link_status()
            .and_then(|s| AccountLinkStatus::from_aws_str(s.as_str())),
        source_account_id: link.source_account_id().unwrap_or_default().to_owned(),
        target_account_id: link.target_account_id().unwrap_or_default().to_owned(),
    }
}

impl Upstream for SdkUpstream {
    fn resolve_account(&self, requested: Option<AccountId>) -> Result<AccountId, AccountError> {
        let configured = &self.configured;
        match requested {
            Some(account) if self.any_account || configured.contains_key(&account) => Ok(account),
            Some(account) => Err(AccountError::NotConfigured(account)),
            None if configured.len() == 1 => configured
                .keys()
                .next()
                .cloned()
                .ok_or(AccountError::Required(0)),
            None => Err(AccountError::Required(configured.len())),
        }
    }

    #[tracing::instrument(name = "upstream", skip_all, fields(operation = mutation.kind().method(), account_id = %acting))]
    async fn mutate(
        &self,
        acting: &AccountId,
        mutation: &Mutation,
        client_token: &str,
    ) -> Result<UpstreamOutput<AccountLink>, UpstreamError> {
        let client = self.client(acting)?;
        self.admit(acting)?;
        let counter = AttemptCounter::default();
        let started = Instant::now();
        // The four fluent builders are distinct types with the same shape.
        macro_rules! send {
            ($builder:expr) => {
                $builder
                    .client_token(client_token)
                    .customize()
                    .interceptor(counter.clone())
                    .send()
                    .await
                    .map(|o| {
                        (
                            o.request_id().map(str::to_owned),
                            to_domain(o.account_link()),
                        )
                    })
                    .map_err(|e| classify(e, counter.get()))
            };
        }
        let result = match mutation {
            Mutation::Create { target_account_id } => send!(
                client
                    .create_account_link_invitation()
                    .target_account_id(target_account_id.as_str())
            ),
            Mutation::Accept { link_id } => {
                send!(
                    client
                        .accept_account_link_invitation()
                        .link_id(link_id.as_str())
                )
            }
            Mutation::Reject { link_id } => {
                send!(
                    client
                        .reject_account_link_invitation()
                        .link_id(link_id.as_str())
                )
            }
            Mutation::Delete { link_id } => {
                send!(
                    client
                        .delete_account_link_invitation()
                        .link_id(link_id.as_str())
                )
            }
        };
        observe(mutation.kind().method(), started, &result);
        let (aws_request_id, value) = result?;
        Ok(UpstreamOutput {
            value,
            aws_request_id,
            attempts: counter.get(),
        })
    }

    #[tracing::instrument(name = "upstream", skip_all, fields(operation = "GetAccountLink", account_id = %acting))]
    async fn get_account_link(
        &self,
        acting: &AccountId,
        input: &GetAccountLinkInput,
    ) -> Result<UpstreamOutput<AccountLink>, UpstreamError> {
        let client = self.client(acting)?;
        self.admit(acting)?;
        let counter = AttemptCounter::default();
        let started = Instant::now();
        let result = client
            .get_account_link()
            .set_link_id(input.link_id.as_ref().map(|l| l.as_str().to_owned()))
            .set_linked_account_id(
                input
                    .linked_account_id
                    .as_ref()
                    .map(|a| a.as_str().to_owned()),
            )
            .customize()
            .interceptor(counter.clone())
            .send()
            .await
            .map_err(|e| classify(e, counter.get()));
        observe("GetAccountLink", started, &result);
        let output = result?;
        Ok(UpstreamOutput {
            value: to_domain(output.account_link()),
            aws_request_id: output.request_id().map(str::to_owned),
            attempts: counter.get(),
        })
    }

    #[tracing::instrument(name = "upstream", skip_all, fields(operation = "ListAccountLinks", account_id = %acting))]
    async fn list_account_links(
        &self,
        acting: &AccountId,
        input: &ListAccountLinksInput,
    ) -> Result<UpstreamOutput<ListAccountLinksPage>, UpstreamError> {
        let client = self.client(acting)?;
        self.admit(acting)?;
        let counter = AttemptCounter::default();
        let started = Instant::now();
        let filter = (!input.link_status_filter.is_empty()).then(|| {
            input
                .link_status_filter
                .iter()
                .map(|s| AccountLinkStatusEnum::from(s.as_aws_str()))
                .collect()
        });
        let result = client
            .list_account_links()
            .set_link_status_filter(filter)
            .max_results(input.max_results)
            .set_next_token(input.next_token.as_ref().map(|t| t.as_str().to_owned()))
            .customize()
            .interceptor(counter.clone())
            .send()
            .await
            .map_err(|e| classify(e, counter.get()));
        observe("ListAccountLinks", started, &result);
        let output = result?;
        Ok(UpstreamOutput {
            value: ListAccountLinksPage {
                account_links: output
                    .account_links()
                    .iter()
                    .map(|l| to_domain(Some(l)))
                    .collect(),
                next_token: output.next_token().map(str::to_owned),
            },
            aws_request_id: output.request_id().map(str::to_owned),
            attempts: counter.get(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::Emulator;

    fn account(i: u64) -> AccountId {
        AccountId::parse(&format!("{:012}", 700_000_000_000 + i)).expect("12 digits")
    }

    /// `--dev` settings against `endpoint_url`, with `configured` as the only configured
    /// account.
    fn dev_settings(endpoint_url: String, configured: AccountId) -> UpstreamSettings {
        UpstreamSettings {
            region: None,
            endpoint_url: Some(endpoint_url),
            max_attempts: 1,
            adaptive_retry: false,
            operation_timeout: Duration::from_secs(10),
            accounts: vec![AccountSettings {
                account_id: configured,
                credentials: AccountCredentials::Ambient,
            }],
            any_account: true,
            emulator_credentials: true,
            rate_per_sec: 1_000,
            burst: 1_000,
        }
    }

    fn list_input() -> ListAccountLinksInput {
        ListAccountLinksInput {
            link_status_filter: Vec::new(),
            max_results: 25,
            next_token: None,
        }
    }

    #[tokio::test]
    async fn every_acting_account_shares_one_connection_pool() {
        const ACCOUNTS: u64 = 50;
        let running = Emulator::new().spawn().await.expect("emulator starts");
        let upstream = SdkUpstream::new(&dev_settings(running.endpoint_url(), account(0))).await;
        for round in 0..2 {
            for i in 0..=ACCOUNTS {
                let acting = upstream
                    .resolve_account(Some(account(i)))
                    .expect("dev accepts any account");
                let page = upstream
                    .list_account_links(&acting, &list_input())
                    .await
                    .unwrap_or_else(|e| panic!("round {round}, account {i}: {e}"));
                assert!(page.value.account_links.is_empty());
            }
        }
        let calls = running.emulator().calls();
        assert_eq!(
            calls.len(),
            2 * (usize::try_from(ACCOUNTS).expect("fits") + 1)
        );
        let accounts: std::collections::HashSet<_> =
            calls.iter().filter_map(|c| c.account_id.clone()).collect();
        assert_eq!(accounts.len(), 51, "each call acted as its own account");
        // One client per account, built once: the configured one plus 50 in the cache.
        assert_eq!(upstream.dev.as_ref().map(ClientCache::len), Some(50));
        // Sequential calls reuse one pooled connection; a client per pool would open 51.
        let opened = running.emulator().connections_accepted();
        assert!(
            (1..=2).contains(&opened),
            "{opened} connections for 102 calls as 51 accounts"
        );
    }

    #[tokio::test]
    async fn dev_clients_stay_bounded_and_configured_ones_stay() {
        let running = Emulator::new().spawn().await.expect("emulator starts");
        let configured = account(0);
        let upstream = SdkUpstream::with_dev_capacity(
            &dev_settings(running.endpoint_url(), configured.clone()),
            8,
        )
        .await;
        for i in 1..=40 {
            upstream
                .list_account_links(&account(i), &list_input())
                .await
                .expect("dev account acts");
            let cached = upstream.dev.as_ref().map_or(0, ClientCache::len);
            assert!(cached <= 8, "{cached} dev clients after {i} accounts");
        }
        assert_eq!(upstream.dev.as_ref().map(ClientCache::len), Some(8));
        assert!(upstream.configured.contains_key(&configured));
        assert_eq!(upstream.resolve_account(None), Ok(configured.clone()));
        upstream
            .list_account_links(&configured, &list_input())
            .await
            .expect("the configured account still acts");
        assert_eq!(upstream.dev.as_ref().map(ClientCache::len), Some(8));
    }

    #[tokio::test]
    async fn unconfigured_accounts_have_no_client_without_dev_credentials() {
        let running = Emulator::new().spawn().await.expect("emulator starts");
        let mut settings = dev_settings(running.endpoint_url(), account(0));
        settings.any_account = false;
        let upstream = SdkUpstream::new(&settings).await;
        assert!(upstream.dev.is_none());
        assert_eq!(
            upstream.resolve_account(Some(account(1))),
            Err(AccountError::NotConfigured(account(1)))
        );
        let error = upstream
            .list_account_links(&account(1), &list_input())
            .await
            .expect_err("no client");
        assert_eq!(error.kind, UpstreamErrorKind::Internal);
        assert!(running.emulator().calls().is_empty());
    }
}
