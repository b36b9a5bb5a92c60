//! The result of one load-generator run, as `examples/loadgen.rs` prints it
//! (one JSON line on stdout) and `examples/service_bench.rs` reads it.
//! Included with `#[path = "throughput/report.rs"] mod report;`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Marker line the load generator writes to stderr when the measured window
/// starts (after the warm-up); the driver samples CPU counters on it.
pub(crate) const WINDOW_START: &str = "loadgen: measured window starts";

/// Marker line written to stderr when the measured window ends.
pub(crate) const WINDOW_END: &str = "loadgen: measured window ends";

/// One run of the load generator over its measured window (warm-up
/// excluded). Latencies are in milliseconds, measured by the client from
/// sending a request to receiving its whole response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Report {
    /// `get` or `create`.
    pub(crate) rpc: String,
    /// Concurrent callers (each has one RPC in flight at a time).
    pub(crate) concurrency: usize,
    /// HTTP/2 connections in use, over every target.
    pub(crate) connections: usize,
    /// The servers called (round robin over connections).
    pub(crate) targets: Vec<String>,
    /// Length of the measured window, in seconds.
    pub(crate) duration_s: f64,
    /// RPCs answered OK in the window.
    pub(crate) ok: u64,
    /// RPCs answered OK per second of the window.
    pub(crate) rps: f64,
    /// Latency percentiles of the OK answers, in milliseconds.
    pub(crate) p50_ms: f64,
    /// 90th percentile.
    pub(crate) p90_ms: f64,
    /// 99th percentile.
    pub(crate) p99_ms: f64,
    /// Slowest OK answer.
    pub(crate) max_ms: f64,
    /// RPCs that failed in the window, by gRPC code name (`Unavailable`, …).
    pub(crate) errors: BTreeMap<String, u64>,
}

impl Report {
    /// Failed RPCs in the window, all codes together.
    #[allow(dead_code)] // used by the driver only
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}
