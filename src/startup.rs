//! Wiring: [`Application::build`] connects the store, builds the upstream
//! (and, in `--dev`, the in-process emulator) and binds the listener;
//! [`Application::run_until_stopped`] serves until the shutdown future
//! resolves, then drains (zero2prod's `Application`, tonic's
//! `serve_with_incoming_shutdown`).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::auth::{Authenticator, Policy};
use crate::config::{ConfigError, FileConfig, HealthCheckArgs, HuaweiAccountSettings, ServeArgs};
use crate::domain::Provider;
use crate::emulator::{Emulator, RunningEmulator};
use crate::error::ApiError;
use crate::grpc::{
    AccountLinkApi, CompleterSettings, DatabaseHealth, DedupSettings, InFlightLimitLayer, METHODS,
    MalformedRequestLayer,
};
use crate::proto::FILE_DESCRIPTOR_SET;
use crate::proto::pb::account_link_service_server::AccountLinkServiceServer;
use crate::proto::pb::audit_service_server::AuditServiceServer;
use crate::proto::pb::resource_share_invitation_service_server::ResourceShareInvitationServiceServer;
use crate::store::{AnyStore, Store, StoreError};
use crate::upstream::ram::InvitationProviders;
use crate::upstream::ram::aws::AwsRam;
use crate::upstream::ram::huawei::{HuaweiAccount, HuaweiRam, HuaweiRamSettings};
use crate::upstream::{SdkUpstream, UpstreamSettings};

/// Largest accepted request message, in bytes. The largest legal request
/// is under 4 KiB; larger ones are refused with RESOURCE_EXHAUSTED and
/// audited ([`MalformedRequestLayer`]), and tonic's own decode limit is set
/// to the same value behind it.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Maximum concurrent HTTP/2 streams (in-flight RPCs) per connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;

/// Maximum size of a request's header list (metadata), in bytes.
pub const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// HTTP/2 keep-alive ping interval on idle connections.
pub const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// How long a keep-alive ping may go unanswered before the connection is closed.
pub const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The per-account upstream rate limit when there is none (`--dev` with
/// the in-process emulator): a bucket no test or walk-through empties.
const NO_RATE_LIMIT: u32 = 1_000_000;

/// The fully-qualified name of the API service, as health reports it.
pub const SERVICE_NAME: &str = "accountlink.v1.AccountLinkService";

/// The fully-qualified name of the audit service, as health reports it.
pub const AUDIT_SERVICE_NAME: &str = "accountlink.v1.AuditService";

/// The gRPC service name of the resource-share invitation API.
pub const RESOURCE_SHARE_SERVICE_NAME: &str = "accountlink.v1.ResourceShareInvitationService";

/// A start-up or serving failure.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be prepared.
    #[error("database start-up failed")]
    Store(#[from] StoreError),
    /// A listener could not be bound.
    #[error("cannot bind listener")]
    Io(#[from] std::io::Error),
    /// The gRPC server failed.
    #[error("grpc server failed")]
    Transport(#[from] tonic::transport::Error),
    /// The reflection service could not be built.
    #[error("reflection service")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// A built, not yet running, service.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    metrics: Option<(TcpListener, metrics_exporter_prometheus::PrometheusHandle)>,
    metrics_addr: SocketAddr,
    health_probe_interval: Duration,
    max_in_flight: usize,
    retention: Option<Retention>,
    api: AccountLinkApi<SdkUpstream>,
    tls: Option<ServerTlsConfig>,
    /// Set when health and reflection require credentials too.
    guard: Option<Authenticator>,
    store: AnyStore,
    emulator: Option<RunningEmulator>,
    purge_interval: Duration,
    shutdown_grace: Duration,
    /// `None` when `--completer-interval-ms 0`.
    completer: Option<CompleterSettings>,
}

impl Application {
    /// Prepares everything and binds `args.listen` (port 0 picks a free one).
    ///
    /// # Errors
    /// [`StartupError`] when the config file is invalid, no account is
    /// configured outside `--dev`, the database cannot be prepared, or the
    /// listener cannot be bound.
    pub async fn build(args: ServeArgs) -> Result<Self, StartupError> {
        let file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        if args.client_token_lease() <= args.upstream_timeout() {
            // A lease that can end while its upstream call still runs lets a
            // second request re-drive it: two upstream calls.
            return Err(ConfigError::Invalid(format!(
                "--client-token-lease-secs ({}) must exceed --upstream-timeout-secs ({})",
                args.client_token_lease_secs, args.upstream_timeout_secs
            ))
            .into());
        }
        let completer = (args.completer_interval_ms > 0).then(|| CompleterSettings {
            interval: Duration::from_millis(args.completer_interval_ms),
            batch: args.completer_batch.max(1),
            rate_per_sec: args.completer_rate_per_sec.max(1),
            // A retryable record is its caller's for one lease.
            retryable_after: args.client_token_lease(),
        });
        if let Some(c) = &completer {
            // The last record of a batch starts (batch - 1) / rate after
            // the first, under a lease taken for the whole batch.
            let last_start = Duration::from_secs(1) * (c.batch - 1) / c.rate_per_sec;
            if last_start + args.upstream_timeout() >= args.client_token_lease() {
                return Err(ConfigError::Invalid(format!(
                    "--completer-batch ({}) / --completer-rate-per-sec ({}) leaves the last \
                     re-drive of a batch less than --upstream-timeout-secs ({}) of its \
                     --client-token-lease-secs ({})",
                    c.batch,
                    c.rate_per_sec,
                    args.upstream_timeout_secs,
                    args.client_token_lease_secs
                ))
                .into());
            }
        }
        let accounts = file.account_settings()?;
        let huawei_accounts = file.huawei_account_settings()?;
        let auth = Authenticator::new(&file.auth, args.dev)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let policy = Policy::new(&file.policy, args.dev, &METHODS)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if auth.allows_anonymous() {
            tracing::warn!("anonymous callers are allowed (principal \"anonymous\")");
        }
        let tls = tls_config(&args)?;
        if accounts.is_empty() && huawei_accounts.is_empty() && !args.dev {
            return Err(ConfigError::Invalid(
                "no acting accounts configured: pass --config with [[accounts]], or --dev".into(),
            )
            .into());
        }

        let store = AnyStore::open(&args.database, args.database_max_connections, true).await?;
        let at = args.database.describe();
        match (&args.database.database_url, args.dev) {
            (Some(_), _) => {
                tracing::info!(store = store.backend(), %at, "database ready, migrations applied");
            }
            (None, true) => tracing::info!(
                store = store.backend(),
                %at,
                "no --database-url: using the embedded SQLite store"
            ),
            // Outside dev mode, a missing DATABASE_URL may be a mistake:
            // replicas on SQLite would each keep their own records and chain.
            (None, false) => tracing::warn!(
                store = store.backend(),
                %at,
                "no --database-url: using the embedded SQLite store, for one process on one \
                 machine; set DATABASE_URL to PostgreSQL when replicas share the service"
            ),
        }

        let (rate_per_sec, burst) = args.upstream_rate_limit().unwrap_or_else(|| {
            tracing::info!(
                "dev mode: no local upstream rate limit for the in-process emulator \
                 (--upstream-rate-per-sec sets one)"
            );
            (NO_RATE_LIMIT, NO_RATE_LIMIT)
        });
        let mut endpoint_url = args.aws_endpoint_url.clone();
        let mut emulator = None;
        if args.dev {
            if endpoint_url.is_none() {
                let running = Emulator::new().spawn().await?;
                tracing::warn!(
                    endpoint = %running.endpoint_url(),
                    "dev mode: in-process WorkSpaces emulator, any 12-digit acting account accepted, anonymous callers allowed"
                );
                endpoint_url = Some(running.endpoint_url());
                emulator = Some(running);
            } else {
                tracing::warn!(
                    "dev mode: any 12-digit acting account accepted with emulator credentials, anonymous callers allowed"
                );
            }
        }
        // Huawei RAM: the flag, else in --dev the emulator, else Huawei's endpoint.
        let endpoint_for_huawei = args.huawei_ram_endpoint.clone().or_else(|| {
            if args.dev {
                endpoint_url.clone()
            } else {
                Some(crate::config::HUAWEI_RAM_DEFAULT_ENDPOINT.to_owned())
            }
        });
        let upstream = SdkUpstream::new(&UpstreamSettings {
            region: args.aws_region.clone(),
            endpoint_url,
            max_attempts: args.aws_max_attempts,
            adaptive_retry: args.aws_retry_mode == crate::config::RetryMode::Adaptive,
            operation_timeout: args.upstream_timeout(),
            accounts,
            any_account: args.dev,
            emulator_credentials: args.dev || args.emulator_credentials,
            rate_per_sec,
            burst,
        })
        .await;

        let invitations =
            invitation_providers(&args, &upstream, huawei_accounts, endpoint_for_huawei)?;
        let api = AccountLinkApi::new(
            store.clone(),
            upstream,
            invitations,
            DedupSettings {
                lease: args.client_token_lease(),
                ttl: args.client_token_ttl(),
                upstream_token_key: args.upstream_token_key.clone().into_bytes(),
            },
            auth.clone(),
            policy,
            Duration::from_millis(args.rpc_timeout_ms.max(1)),
        );
        let retention = match (args.audit_retention_days, &args.audit_checkpoint_public_key) {
            (Some(days), Some(key)) => Some(Retention {
                days,
                key: crate::audit::checkpoint::read_public_key(key).map_err(|e| {
                    ConfigError::Invalid(format!("--audit-checkpoint-public-key: {e}"))
                })?,
            }),
            _ => None,
        };
        let listener = TcpListener::bind(args.listen).await?;
        let local_addr = listener.local_addr()?;
        let metrics = crate::metrics::install();
        let metrics_listener = crate::metrics::bind(args.metrics_listen).await?;
        let metrics_addr = metrics_listener.local_addr()?;
        Ok(Self {
            listener,
            local_addr,
            metrics: metrics.map(|handle| (metrics_listener, handle)),
            metrics_addr,
            health_probe_interval: Duration::from_millis(args.health_probe_interval_ms.max(10)),
            max_in_flight: args.max_in_flight.max(1),
            retention,
            api,
            tls,
            guard: file.auth.protect_health_and_reflection.then_some(auth),
            store,
            emulator,
            purge_interval: Duration::from_secs(args.purge_interval_secs.max(1)),
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
            completer,
        })
    }

    /// The bound gRPC address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound metrics address (`GET /metrics`).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The in-process emulator's endpoint, in `--dev` without an override.
    pub fn emulator_endpoint(&self) -> Option<String> {
        self.emulator.as_ref().map(RunningEmulator::endpoint_url)
    }

    /// Serves until `shutdown` resolves; then reports NOT_SERVING, stops
    /// accepting, lets in-flight RPCs finish within the grace period, waits
    /// (within the same grace period) for every started RPC task to write
    /// its audit event, and closes the database pool.
    ///
    /// # Errors
    /// [`StartupError`] when the server fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        set_health(&reporter, ServingStatus::Serving).await;

        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let probe = tokio::spawn(health_probe(
            self.store.clone(),
            reporter.clone(),
            self.api.database_health(),
            self.health_probe_interval,
        ));
        let completer = self
            .completer
            .map(|settings| tokio::spawn(self.api.clone().run_completer(settings)));
        let purge = tokio::spawn(purge_loop(self.store.clone(), self.purge_interval));
        let retention = self
            .retention
            .map(|r| tokio::spawn(retention_loop(self.store.clone(), r)));
        let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics_server = self.metrics.map(|(listener, handle)| {
            tokio::spawn(crate::metrics::serve(listener, handle, async move {
                let _ = metrics_stopped.await;
            }))
        });

        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal_reporter = reporter.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutdown requested: draining in-flight rpcs");
            // The probe must not flip health back to SERVING while draining.
            probe.abort();
            set_health(&signal_reporter, ServingStatus::NotServing).await;
            let _ = stopping_tx.send(());
        };

        let tasks = self.api.tasks().clone();
        let audit =
            AuditServiceServer::new(self.api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES);
        let invitations = ResourceShareInvitationServiceServer::new(self.api.clone())
            .max_decoding_message_size(MAX_REQUEST_BYTES);
        let api =
            AccountLinkServiceServer::new(self.api).max_decoding_message_size(MAX_REQUEST_BYTES);
        let guard = self.guard;
        let check =
            move |request: tonic::Request<()>| -> Result<tonic::Request<()>, tonic::Status> {
                if let Some(auth) = &guard {
                    let certs = request.peer_certs();
                    auth.authenticate(request.metadata(), certs.as_deref().map(Vec::as_slice))
                        .map_err(|e| tonic::Status::from(ApiError::unauthenticated(e)))?;
                }
                Ok(request)
            };
        let mut builder = Server::builder();
        if let Some(tls) = self.tls {
            builder = builder.tls_config(tls)?;
        }
        tracing::info!(addr = %self.local_addr, "serving grpc");
        let server = builder
            .layer(InFlightLimitLayer::new(self.max_in_flight))
            .layer(MalformedRequestLayer::new(MAX_REQUEST_BYTES))
            .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
            .max_concurrent_streams(Some(MAX_CONCURRENT_STREAMS))
            .http2_max_header_list_size(Some(MAX_HEADER_LIST_BYTES))
            .add_service(InterceptedService::new(health_service, check.clone()))
            .add_service(InterceptedService::new(reflection_v1, check.clone()))
            .add_service(InterceptedService::new(reflection_v1alpha, check))
            .add_service(api)
            .add_service(audit)
            .add_service(invitations)
            // TCP_NODELAY, as `Server::serve` would set: without it a response
            // larger than one segment (a page of audit events) waits for the
            // peer's delayed ACK, about 40 ms.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                signal,
            );

        let grace = self.shutdown_grace;
        let deadline = async move {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(deadline);
        let result = tokio::select! {
            result = server => result.map_err(StartupError::from),
            () = &mut deadline => {
                tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace period elapsed with rpcs in flight");
                Ok(())
            }
        };
        // No new re-drives; those started are RPC tasks, waited for below.
        if let Some(task) = completer {
            task.abort();
        }
        // RPC bodies run as tasks that outlive a vanished caller; let them
        // write their audit events before the pool closes.
        tasks.close();
        tokio::select! {
            () = tasks.wait() => {}
            () = &mut deadline => {
                tracing::error!(pending = tasks.len(), "rpc tasks still running after the grace period; their audit events may be missing");
            }
        }
        purge.abort();
        if let Some(task) = retention {
            task.abort();
        }
        let _ = metrics_stop.send(());
        if let Some(task) = metrics_server {
            let _ = task.await;
        }
        self.store.close().await;
        drop(self.emulator);
        tracing::info!("stopped");
        result
    }
}

/// Asks the `grpc.health.v1` service at `args.addr` for `args.service`:
/// `Ok(true)` when SERVING.
///
/// # Errors
/// A description when the service cannot be reached in time or answers
/// with an error.
pub async fn health_check(args: &HealthCheckArgs) -> Result<bool, String> {
    let check = async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", args.addr))
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| crate::telemetry::error_chain(&e))?;
        let response = tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest {
                service: args.service.clone(),
            })
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
        Ok(response.into_inner().status
            == tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
    };
    tokio::time::timeout(Duration::from_secs(args.timeout_secs), check)
        .await
        .map_err(|_| format!("no answer within {} s", args.timeout_secs))?
}

/// Installs rustls' ring crypto provider as the process default (both ring
/// and aws-lc-rs are linked, so rustls cannot pick one by itself). Calling
/// it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The TLS settings of `--tls-*`, if any.
fn tls_config(args: &ServeArgs) -> Result<Option<ServerTlsConfig>, ConfigError> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    install_crypto_provider();
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
    if let Some(ca) = &args.tls_client_ca {
        tls = tls
            .client_ca_root(Certificate::from_pem(read(ca)?))
            .client_auth_optional(args.tls_client_auth_optional);
    }
    Ok(Some(tls))
}

/// Reports `status` for the whole server and each service, and exports it
/// as `accountlink_health_serving` (1 SERVING, 0 otherwise) for alerting.
async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    let serving = status == ServingStatus::Serving;
    metrics::gauge!(crate::metrics::HEALTH_SERVING).set(if serving { 1.0 } else { 0.0 });
    reporter.set_service_status("", status).await;
    reporter.set_service_status(SERVICE_NAME, status).await;
    reporter
        .set_service_status(AUDIT_SERVICE_NAME, status)
        .await;
    reporter
        .set_service_status(RESOURCE_SHARE_SERVICE_NAME, status)
        .await;
}

/// The invitation providers (issue 12): AWS RAM for every AWS account, with
/// the WorkSpaces clients' credentials; Huawei RAM for the Huawei accounts,
/// at `huawei_endpoint`. In `--dev` both serve any well-formed account.
///
/// # Errors
/// [`ConfigError`] for a Huawei account whose keys cannot be read.
fn invitation_providers(
    args: &ServeArgs,
    upstream: &SdkUpstream,
    huawei: Vec<HuaweiAccountSettings>,
    huawei_endpoint: Option<String>,
) -> Result<InvitationProviders, ConfigError> {
    let mut providers = InvitationProviders::none().any_account(args.dev).with(
        Provider::AwsRam,
        AwsRam::new(upstream),
        upstream.configured_accounts(),
    );
    if huawei.is_empty() && !args.dev {
        return Ok(providers);
    }
    let mut accounts = Vec::with_capacity(huawei.len());
    for account in &huawei {
        let keys = account.credentials.read()?;
        accounts.push(HuaweiAccount {
            domain_id: account.account_id.to_string(),
            access_key_id: keys.access_key_id,
            secret_access_key: keys.secret_access_key,
            security_token: keys.security_token,
        });
    }
    let settings = HuaweiRamSettings {
        endpoint: huawei_endpoint
            .unwrap_or_else(|| crate::config::HUAWEI_RAM_DEFAULT_ENDPOINT.to_owned()),
        timeout: args.upstream_timeout(),
        accounts,
        dev: args.dev,
    };
    let adapter =
        HuaweiRam::new(&settings).map_err(|e| ConfigError::Invalid(format!("huawei ram: {e}")))?;
    let ids = huawei.into_iter().map(|a| a.account_id).collect();
    providers = providers.with(Provider::HuaweiRam, adapter, ids);
    Ok(providers)
}

/// Reports SERVING only while the database answers (DESIGN §12), and
/// tells the RPCs (`database`), which fail fast while it does not.
async fn health_probe(
    store: AnyStore,
    reporter: HealthReporter,
    database: DatabaseHealth,
    every: Duration,
) {
    let mut interval = tokio::time::interval(every);
    let mut last = ServingStatus::Serving;
    loop {
        interval.tick().await;
        // A slow answer is not a missing database: allow at least a second.
        let status = match tokio::time::timeout(every.max(PROBE_TIMEOUT), store.ping()).await {
            Ok(Ok(())) => ServingStatus::Serving,
            _ => ServingStatus::NotServing,
        };
        database.set_down(status == ServingStatus::NotServing);
        let pool = store.pool_status();
        metrics::gauge!(crate::metrics::DB_POOL_CONNECTIONS, "state" => "open")
            .set(f64::from(pool.open));
        metrics::gauge!(crate::metrics::DB_POOL_CONNECTIONS, "state" => "idle")
            .set(f64::from(pool.idle));
        metrics::gauge!(crate::metrics::DB_POOL_CONNECTIONS, "state" => "max")
            .set(f64::from(pool.max));
        if status != last {
            tracing::warn!(?status, "health changed");
            set_health(&reporter, status).await;
            last = status;
        }
    }
}

/// The shortest time the health probe waits for the database.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Audit retention settings (`--audit-retention-days`).
#[derive(Debug)]
struct Retention {
    days: u32,
    key: ed25519_dalek::VerifyingKey,
}

/// How often retention looks for a checkpointed prefix to delete.
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// Runs audit retention hourly (see [`crate::audit::retain`]).
async fn retention_loop(store: AnyStore, retention: Retention) {
    let mut interval = tokio::time::interval(RETENTION_INTERVAL);
    loop {
        interval.tick().await;
        let cutoff =
            time::OffsetDateTime::now_utc() - time::Duration::days(i64::from(retention.days));
        match crate::audit::retain(&store, crate::store::DEFAULT_CHAIN, &retention.key, cutoff)
            .await
        {
            Ok(Ok(Some(done))) => {
                tracing::info!(
                    deleted = done.deleted,
                    through_seq = done.to_seq,
                    "audit retention ran"
                );
            }
            Ok(Ok(None)) => {}
            Ok(Err(broken)) => tracing::error!(%broken, "audit chain broken: retention refused"),
            Err(e) => {
                tracing::warn!(error = %crate::telemetry::error_chain(&e), "audit retention failed")
            }
        }
    }
}

/// Deletes expired client-token records every `every`.
async fn purge_loop(store: AnyStore, every: Duration) {
    let mut interval = tokio::time::interval(every);
    loop {
        interval.tick().await;
        match store.purge_expired(None).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "purged expired client-token records"),
            Err(e) => {
                tracing::warn!(error = %crate::telemetry::error_chain(&e), "client-token purge failed")
            }
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for sigterm");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
