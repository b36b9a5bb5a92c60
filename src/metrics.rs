//! Prometheus metrics (DESIGN §12): recorded through the `metrics` facade,
//! rendered by `metrics-exporter-prometheus` in the text exposition format
//! on a separate HTTP listener (`--metrics-listen`, path `/metrics`).
//!
//! Names follow the Prometheus conventions: a `accountlink_` prefix, base
//! units (`_seconds`), `_total` for counters.
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `accountlink_rpc_requests_total` | counter | method, code | RPCs answered, by gRPC code name |
//! | `accountlink_rpc_duration_seconds` | histogram | method | receipt to answer |
//! | `accountlink_rpc_in_flight` | gauge | | RPC bodies running |
//! | `accountlink_upstream_requests_total` | counter | operation, aws_error_code | AWS calls (`none` = success, `transport` = no AWS answer) |
//! | `accountlink_upstream_duration_seconds` | histogram | operation | AWS call latency, SDK retries included |
//! | `accountlink_idempotency_outcomes_total` | counter | outcome | new, takeover, replayed, in_progress, mismatch |
//! | `accountlink_audit_write_duration_seconds` | histogram | | an RPC's wait for its audit event (and completion) to commit |
//! | `accountlink_db_batch_writes` | histogram | | writes per group commit (one transaction) |
//! | `accountlink_db_batch_duration_seconds` | histogram | | one group-commit transaction |
//! | `accountlink_db_pool_connections` | gauge | state | pool connections: `open`, `idle`, `max`, and `waiting` (callers waiting for one) |
//! | `accountlink_load_shed_total` | counter | | RPCs refused at the in-flight limit |
//! | `accountlink_upstream_rate_limited_total` | counter | account_id | AWS calls refused by the local rate limit |
//! | `accountlink_health_serving` | gauge | | 1 while `grpc.health.v1` reports SERVING, 0 while NOT_SERVING |
//! | `accountlink_completer_recovered_total` | counter | | stale client-token records the completer re-drove to a final outcome, with its audit event |
//! | `accountlink_completer_failed_total` | counter | reason | completer re-drives that did not complete the record: `upstream` (transient, stays retryable), `database`, `lease_lost`, `unreadable`, `account` |
//! | `accountlink_completer_backlog` | gauge | | stale client-token records at the last completer pass |
//! | `accountlink_completer_unrecoverable` | gauge | | of those, records without their canonical request (left to callers' retries) |

use std::net::SocketAddr;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets for latencies, in seconds (1 ms .. 30 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Histogram buckets for writes per batch (1 .. the batch cap).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// RPCs answered.
pub const RPC_REQUESTS: &str = "accountlink_rpc_requests_total";
/// RPC latency.
pub const RPC_DURATION: &str = "accountlink_rpc_duration_seconds";
/// RPC bodies running.
pub const RPC_IN_FLIGHT: &str = "accountlink_rpc_in_flight";
/// AWS calls.
pub const UPSTREAM_REQUESTS: &str = "accountlink_upstream_requests_total";
/// AWS call latency.
pub const UPSTREAM_DURATION: &str = "accountlink_upstream_duration_seconds";
/// Client-token dedup outcomes.
pub const IDEMPOTENCY_OUTCOMES: &str = "accountlink_idempotency_outcomes_total";
/// Audit append latency.
pub const AUDIT_WRITE_DURATION: &str = "accountlink_audit_write_duration_seconds";
/// Writes per group commit.
pub const DB_BATCH_SIZE: &str = "accountlink_db_batch_writes";
/// Duration of one group-commit transaction.
pub const DB_BATCH_DURATION: &str = "accountlink_db_batch_duration_seconds";
/// Database pool connections by state.
pub const DB_POOL_CONNECTIONS: &str = "accountlink_db_pool_connections";
/// RPCs refused at the in-flight limit.
pub const LOAD_SHED: &str = "accountlink_load_shed_total";
/// AWS calls refused by the local per-account rate limit.
pub const UPSTREAM_RATE_LIMITED: &str = "accountlink_upstream_rate_limited_total";
/// The health status the service reports: 1 SERVING, 0 NOT_SERVING.
pub const HEALTH_SERVING: &str = "accountlink_health_serving";

/// Records the completer re-drove to a final outcome.
pub const COMPLETER_RECOVERED: &str = "accountlink_completer_recovered_total";
/// Completer re-drives that did not complete their record, by reason.
pub const COMPLETER_FAILED: &str = "accountlink_completer_failed_total";
/// Stale client-token records at the last completer pass.
pub const COMPLETER_BACKLOG: &str = "accountlink_completer_backlog";
/// Stale records the completer cannot re-drive (no canonical request).
pub const COMPLETER_UNRECOVERABLE: &str = "accountlink_completer_unrecoverable";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once and returns its
/// handle (`None` if another recorder was installed first).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(DB_BATCH_SIZE.to_owned()), BATCH_BUCKETS)
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(RPC_REQUESTS, "RPCs answered, by method and gRPC code");
    describe_histogram!(
        RPC_DURATION,
        Unit::Seconds,
        "RPC latency from receipt to answer"
    );
    describe_gauge!(RPC_IN_FLIGHT, "RPC bodies running");
    describe_counter!(
        UPSTREAM_REQUESTS,
        "AWS calls by operation and AWS error code"
    );
    describe_histogram!(
        UPSTREAM_DURATION,
        Unit::Seconds,
        "AWS call latency including SDK retries"
    );
    describe_counter!(IDEMPOTENCY_OUTCOMES, "client-token dedup outcomes");
    describe_histogram!(
        AUDIT_WRITE_DURATION,
        Unit::Seconds,
        "an RPC's wait for its audit event to commit"
    );
    describe_histogram!(DB_BATCH_SIZE, "writes per group commit");
    describe_histogram!(
        DB_BATCH_DURATION,
        Unit::Seconds,
        "one group-commit transaction"
    );
    describe_gauge!(DB_POOL_CONNECTIONS, "database pool connections by state");
    describe_counter!(LOAD_SHED, "RPCs refused at the in-flight limit");
    describe_counter!(
        UPSTREAM_RATE_LIMITED,
        "AWS calls refused by the local per-account rate limit"
    );
    describe_gauge!(
        HEALTH_SERVING,
        "1 while grpc.health.v1 reports SERVING, 0 while NOT_SERVING"
    );
    describe_counter!(
        COMPLETER_RECOVERED,
        "stale client-token records the completer re-drove to a final outcome"
    );
    describe_counter!(
        COMPLETER_FAILED,
        "completer re-drives that did not complete their record, by reason"
    );
    describe_gauge!(
        COMPLETER_BACKLOG,
        "stale client-token records at the last completer pass"
    );
    describe_gauge!(
        COMPLETER_UNRECOVERABLE,
        "stale client-token records the completer cannot re-drive"
    );
}

/// Serves `GET /metrics` (Prometheus text format) on `listener` until
/// `shutdown` resolves.
///
/// # Errors
/// The I/O error of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                handle.run_upkeep();
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds the metrics listener.
///
/// # Errors
/// The bind error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
