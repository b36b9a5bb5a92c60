//! Wiring: [`Application::build`] connects the store, builds the upstream
//! (and, in `--dev`, the in-process emulator) and binds the listener;
//! [`Application::run_until_stopped`] serves until the shutdown future
//! resolves, then drains (zero2prod's `Application`, tonic's
//! `serve_with_incoming_shutdown`).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::config::{ConfigError, FileConfig, ServeArgs};
use crate::emulator::{Emulator, RunningEmulator};
use crate::grpc::{AccountLinkApi, DedupSettings};
use crate::proto::FILE_DESCRIPTOR_SET;
use crate::proto::pb::account_link_service_server::AccountLinkServiceServer;
use crate::store::{PgStore, StoreError};
use crate::upstream::{SdkUpstream, UpstreamSettings};

/// Largest accepted request message, in bytes. The largest legal request
/// is well under 1 KiB; larger ones are refused by the transport with
/// RESOURCE_EXHAUSTED (DESIGN §4).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// How often the health probe checks the database.
pub const HEALTH_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// The fully-qualified name of the API service, as health reports it.
pub const SERVICE_NAME: &str = "accountlink.v1.AccountLinkService";

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
    api: AccountLinkApi<SdkUpstream>,
    store: PgStore,
    emulator: Option<RunningEmulator>,
    purge_interval: Duration,
    shutdown_grace: Duration,
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
        let accounts = file.account_settings()?;
        if accounts.is_empty() && !args.dev {
            return Err(ConfigError::Invalid(
                "no acting accounts configured: pass --config with [[accounts]], or --dev".into(),
            )
            .into());
        }

        let store = PgStore::connect(&args.database_url, args.database_max_connections).await?;
        tracing::info!("database ready, migrations applied");

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
        let upstream = SdkUpstream::new(&UpstreamSettings {
            region: args.aws_region.clone(),
            endpoint_url,
            max_attempts: args.aws_max_attempts,
            operation_timeout: args.upstream_timeout(),
            accounts,
            dev: args.dev,
        })
        .await;
        if args.client_token_lease() <= args.upstream_timeout() {
            tracing::warn!(
                lease_secs = args.client_token_lease_secs,
                upstream_timeout_secs = args.upstream_timeout_secs,
                "client-token lease does not exceed the upstream timeout: a slow call may be re-driven"
            );
        }
        let api = AccountLinkApi::new(
            store.clone(),
            upstream,
            DedupSettings {
                lease: args.client_token_lease(),
                ttl: args.client_token_ttl(),
                upstream_token_key: args.upstream_token_key.clone().into_bytes(),
            },
        );
        let listener = TcpListener::bind(args.listen).await?;
        let local_addr = listener.local_addr()?;
        Ok(Self {
            listener,
            local_addr,
            api,
            store,
            emulator,
            purge_interval: Duration::from_secs(args.purge_interval_secs.max(1)),
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
        })
    }

    /// The bound gRPC address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The in-process emulator's endpoint, in `--dev` without an override.
    pub fn emulator_endpoint(&self) -> Option<String> {
        self.emulator.as_ref().map(RunningEmulator::endpoint_url)
    }

    /// Serves until `shutdown` resolves; then reports NOT_SERVING, stops
    /// accepting, lets in-flight RPCs (and their audit writes) finish within
    /// the grace period, and closes the database pool.
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

        let probe = tokio::spawn(health_probe(self.store.clone(), reporter.clone()));
        let purge = tokio::spawn(purge_loop(self.store.clone(), self.purge_interval));

        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal_reporter = reporter.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutdown requested: draining in-flight rpcs");
            set_health(&signal_reporter, ServingStatus::NotServing).await;
            let _ = stopping_tx.send(());
        };

        let api =
            AccountLinkServiceServer::new(self.api).max_decoding_message_size(MAX_REQUEST_BYTES);
        tracing::info!(addr = %self.local_addr, "serving grpc");
        let server = Server::builder()
            .layer(tower::util::MapResponseLayer::new(
                oversized_is_resource_exhausted,
            ))
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(api)
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), signal);
        let grace = self.shutdown_grace;
        let result = tokio::select! {
            result = server => result.map_err(StartupError::from),
            () = async move {
                if stopping_rx.await.is_ok() {
                    tokio::time::sleep(grace).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => {
                tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace period elapsed with rpcs in flight");
                Ok(())
            }
        };
        probe.abort();
        purge.abort();
        self.store.close().await;
        drop(self.emulator);
        tracing::info!("stopped");
        result
    }
}

/// Rewrites tonic's answer to an over-limit request message (OUT_OF_RANGE,
/// "decoded message length too large", sent trailers-only) to
/// RESOURCE_EXHAUSTED, the code gRPC specifies for exceeded message size
/// limits (grpc/grpc#10612, doc/statuscodes.md).
fn oversized_is_resource_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let too_large = headers.get("grpc-status").is_some_and(|v| v == "11")
        && headers
            .get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| {
                m.contains("message%20length%20too%20large")
                    || m.contains("message length too large")
            });
    if too_large {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
    response
}

async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status(SERVICE_NAME, status).await;
}

/// Reports SERVING only while the database answers (DESIGN §12).
async fn health_probe(store: PgStore, reporter: HealthReporter) {
    let mut interval = tokio::time::interval(HEALTH_PROBE_INTERVAL);
    let mut last = ServingStatus::Serving;
    loop {
        interval.tick().await;
        let status = match tokio::time::timeout(HEALTH_PROBE_INTERVAL, store.ping()).await {
            Ok(Ok(())) => ServingStatus::Serving,
            _ => ServingStatus::NotServing,
        };
        if status != last {
            tracing::warn!(?status, "health changed");
            set_health(&reporter, status).await;
            last = status;
        }
    }
}

/// Deletes expired client-token records every `every`.
async fn purge_loop(store: PgStore, every: Duration) {
    let mut interval = tokio::time::interval(every);
    loop {
        interval.tick().await;
        match store.purge_expired(OffsetDateTime::now_utc()).await {
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
