#!/usr/bin/env bash
# The throughput benchmark (docs/benchmarks.md, "Service throughput vs its
# anchors"): builds the release binaries it needs, then runs
# examples/service_bench.rs, which starts the emulator, both anchors and the
# service on PostgreSQL and SQLite, drives each with examples/loadgen.rs and
# prints markdown tables. Arguments go to service_bench, e.g.
#
#   bash bench/run.sh --quick
#   bash bench/run.sh --duration 10 --warmup 2 --out /tmp/bench.md
#
# Needs PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres
# (or --server-url / BENCH_SERVER_URL). It is not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin account-link-service \
    --example loadgen --example bare_tonic_server --example direct_sdk_server \
    --example service_bench
target_dir="${CARGO_TARGET_DIR:-target}"
exec "$target_dir/release/examples/service_bench" "$@"
