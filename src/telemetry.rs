//! Logging set-up (`tracing`), optional OTLP trace export (cargo feature
//! `otlp`), and error-chain formatting.
//!
//! Spans: one `rpc` span per API call, with `upstream` and `db.*` children.
//! They always reach the log layer; with `--otlp-endpoint` (feature `otlp`)
//! they are also exported as OpenTelemetry traces.
//!
//! The exporter speaks OTLP over gRPC through `tonic` 0.14, the tonic the
//! server already uses, so the feature adds no second HTTP/gRPC stack (the
//! HTTP/protobuf exporter would bring its own client). Spans are batched by
//! the SDK's batch span processor running as a task on the tokio runtime.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The OpenTelemetry `service.name` unless `OTEL_SERVICE_NAME` (or
/// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`) names another.
pub const SERVICE_NAME: &str = "account-link-service";

/// A telemetry set-up error.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built (e.g. an invalid or `https`
    /// endpoint: only plaintext `http://` is supported).
    #[cfg(feature = "otlp")]
    #[error("cannot build the OTLP trace exporter")]
    OtlpExporter(#[source] opentelemetry_otlp::ExporterBuildError),
    /// Flushing or shutting down the tracer provider failed, e.g. the
    /// collector did not accept the last batch.
    #[cfg(feature = "otlp")]
    #[error("OTLP tracer provider shutdown: {0}")]
    OtlpShutdown(String),
}

/// What [`init`] set up that must be shut down at exit: the OTLP tracer
/// provider, if any. Call [`Telemetry::shutdown`] before the process ends
/// so that the spans still buffered are exported.
#[derive(Debug, Default)]
#[must_use = "call `shutdown` at exit so that buffered spans are exported"]
pub struct Telemetry {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the buffered spans and shuts the tracer provider down (at
    /// most `OTEL_BSP_EXPORT_TIMEOUT`, default 30 s, per batch). Without OTLP
    /// export this does nothing.
    ///
    /// # Errors
    /// [`TelemetryError::OtlpShutdown`] when the last export or the shutdown
    /// failed.
    pub async fn shutdown(self) -> Result<(), TelemetryError> {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider {
            // `shutdown` blocks until the batch task (a task on this runtime)
            // has exported; block a blocking-pool thread, not a worker.
            return match tokio::task::spawn_blocking(move || provider.shutdown()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(TelemetryError::OtlpShutdown(e.to_string())),
                Err(e) => Err(TelemetryError::OtlpShutdown(e.to_string())),
            };
        }
        Ok(())
    }
}

/// Installs the global subscriber; the filter comes from `RUST_LOG`
/// (default `info`). Logs go to stderr, coloured only when stderr is a
/// terminal and `NO_COLOR` is unset or empty.
///
/// With `otlp_endpoint` (an OTLP/gRPC collector such as
/// `http://127.0.0.1:4317`), spans are also exported there; this needs the
/// `otlp` feature and a running tokio runtime. The exporter reads the other
/// OpenTelemetry environment variables itself (`OTEL_EXPORTER_OTLP_HEADERS`,
/// `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_BSP_*`, `OTEL_TRACES_SAMPLER`…).
///
/// A build without the `otlp` feature ignores `otlp_endpoint` with a
/// warning rather than refusing to start: an environment that sets
/// `OTEL_EXPORTER_OTLP_ENDPOINT` for every workload must not stop the
/// service over traces.
///
/// # Errors
/// With the `otlp` feature, [`TelemetryError::OtlpExporter`] for a bad
/// endpoint.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Result<Telemetry, TelemetryError> {
    #[cfg(not(feature = "otlp"))]
    let (otlp, telemetry) = (
        None::<tracing_subscriber::layer::Identity>,
        Telemetry::default(),
    );
    #[cfg(feature = "otlp")]
    let (otlp, telemetry) = match otlp_endpoint {
        Some(endpoint) => {
            let (layer, provider) = otlp::layer(endpoint)?;
            (
                Some(layer),
                Telemetry {
                    provider: Some(provider),
                },
            )
        }
        None => (None, Telemetry::default()),
    };

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal, and not with `NO_COLOR` (no-color.org): a
    // log file or a collector reading a pipe would get the escape codes as
    // text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    // A second call (e.g. in tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otlp)
        .try_init();
    #[cfg(not(feature = "otlp"))]
    if otlp_endpoint.is_some() {
        tracing::warn!(
            "--otlp-endpoint (OTEL_EXPORTER_OTLP_ENDPOINT) is set, but this binary was built \
             without OTLP export: traces are not exported (build with `--features otlp`)"
        );
    }
    Ok(telemetry)
}

#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::registry::LookupSpan;

    use super::{SERVICE_NAME, TelemetryError};

    /// The `tracing` → OpenTelemetry layer exporting to `endpoint`
    /// (OTLP/gRPC, plaintext), and its provider (shut it down at exit).
    /// Must be called inside a tokio runtime: the batch task and the lazy
    /// gRPC channel are spawned on it.
    pub(super) fn layer<S>(
        endpoint: &str,
    ) -> Result<(impl Layer<S> + Send + Sync + use<S>, SdkTracerProvider), TelemetryError>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(TelemetryError::OtlpExporter)?;
        // The tokio variant of the batch processor (the SDK's default one
        // runs its own thread and drives tonic with a blocking executor).
        let processor =
            BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource())
            .build();
        let tracer = provider.tracer(SERVICE_NAME);
        // The exporter's own transport (tonic, hyper, h2, tower) must not be
        // traced into the exporter: that would feed back on every export.
        let no_transport = Targets::new()
            .with_default(LevelFilter::TRACE)
            .with_target("h2", LevelFilter::OFF)
            .with_target("hyper", LevelFilter::OFF)
            .with_target("hyper_util", LevelFilter::OFF)
            .with_target("tonic", LevelFilter::OFF)
            .with_target("tower", LevelFilter::OFF)
            .with_target("opentelemetry", LevelFilter::OFF)
            .with_target("opentelemetry_sdk", LevelFilter::OFF)
            .with_target("opentelemetry_otlp", LevelFilter::OFF);
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(no_transport);
        Ok((layer, provider))
    }

    /// The SDK's resource (it reads `OTEL_SERVICE_NAME` and
    /// `OTEL_RESOURCE_ATTRIBUTES`), with `service.name` =
    /// [`SERVICE_NAME`] unless those set one.
    fn resource() -> Resource {
        let detected = Resource::builder().build();
        let named = detected
            .get(&opentelemetry::Key::from_static_str("service.name"))
            .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
        if named {
            detected
        } else {
            Resource::builder().with_service_name(SERVICE_NAME).build()
        }
    }
}

/// `err` and its sources, joined by `: `.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(all(test, not(feature = "otlp")))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_endpoint_without_the_feature_is_ignored_not_fatal() {
        let telemetry = init(LogFormat::Text, Some("http://127.0.0.1:4317"))
            .expect("start-up goes on without export");
        telemetry.shutdown().await.expect("nothing to flush");
    }
}

#[cfg(all(test, feature = "otlp"))]
mod otlp_tests {
    use std::time::Duration;

    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use tokio::sync::mpsc;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// An OTLP/gRPC collector that hands every request to the test.
    struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

    #[tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let _ = self.0.send(request.into_inner());
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        }
    }

    /// Runs `test` on a current-thread runtime of its own thread and fails
    /// if it has not finished within 30 s. A shutdown that blocks the
    /// runtime's only thread (the batch task's thread) would hang forever,
    /// where a `tokio::time::timeout` inside the runtime could never fire.
    fn within_30s<F>(test: impl FnOnce() -> F + Send + 'static)
    where
        F: Future<Output = ()>,
    {
        let (done, finished) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(test());
            let _ = done.send(());
        });
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            finished.recv_timeout(Duration::from_secs(30))
        {
            panic!("no result in 30 s: the tracer provider shutdown hangs");
        }
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
    }

    /// Emits an `rpc` span with a `db.claim` child under a subscriber with
    /// only the OTLP layer, then shuts the provider down.
    async fn emit_and_shut_down(endpoint: &str) -> Result<(), TelemetryError> {
        let (layer, provider) = otlp::layer(endpoint).expect("exporter builds");
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let rpc = tracing::info_span!("rpc", method = "GetAccountLink");
            rpc.in_scope(|| tracing::info_span!("db.claim").in_scope(|| {}));
        });
        Telemetry {
            provider: Some(provider),
        }
        .shutdown()
        .await
    }

    #[test]
    fn spans_reach_an_otlp_collector_with_parents_and_service_name() {
        within_30s(spans_reach_an_otlp_collector);
    }

    async fn spans_reach_an_otlp_collector() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(Collector(tx)))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );

        emit_and_shut_down(&format!("http://{addr}"))
            .await
            .expect("export accepted");
        server.abort();

        let mut spans = Vec::new();
        let mut service_names = Vec::new();
        while let Ok(request) = rx.try_recv() {
            for resource_spans in request.resource_spans {
                for attr in resource_spans.resource.iter().flat_map(|r| &r.attributes) {
                    if attr.key == "service.name"
                        && let Some(Value::StringValue(name)) =
                            attr.value.as_ref().and_then(|v| v.value.clone())
                    {
                        service_names.push(name);
                    }
                }
                for scope_spans in resource_spans.scope_spans {
                    spans.extend(scope_spans.spans);
                }
            }
        }
        let rpc = spans
            .iter()
            .find(|s| s.name == "rpc")
            .expect("rpc span exported");
        let db = spans
            .iter()
            .find(|s| s.name == "db.claim")
            .expect("db.claim span exported");
        assert_eq!(db.trace_id, rpc.trace_id);
        assert_eq!(db.parent_span_id, rpc.span_id);
        assert!(rpc.parent_span_id.is_empty(), "rpc is a root span");
        assert!(rpc.attributes.iter().any(|a| a.key == "method"));
        let expected = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| SERVICE_NAME.into());
        assert_eq!(service_names, [expected]);
    }

    #[test]
    fn shutdown_with_a_dead_collector_reports_the_failure_and_returns() {
        within_30s(shutdown_with_a_dead_collector);
    }

    async fn shutdown_with_a_dead_collector() {
        // A port nobody listens on any more: connections are refused.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);

        let err = emit_and_shut_down(&format!("http://{addr}"))
            .await
            .expect_err("nothing accepted the spans");
        assert!(matches!(err, TelemetryError::OtlpShutdown(_)), "{err}");
    }

    #[tokio::test]
    async fn an_https_endpoint_is_refused_at_start_up() {
        let err = init(LogFormat::Text, Some("https://collector.example:4317"))
            .expect_err("no TLS for OTLP");
        assert!(matches!(err, TelemetryError::OtlpExporter(_)), "{err}");
    }
}
