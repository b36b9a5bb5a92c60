//! A closed-loop gRPC load generator for `accountlink.v1.AccountLinkService`
//! (docs/benchmarks.md, "Service throughput vs its anchors").
//!
//! `--concurrency` callers each keep one RPC in flight, over `--connections`
//! HTTP/2 connections per target (default `min(concurrency, 4)`, so one
//! connection's framing does not cap the client). Every caller sends its
//! next request as soon as the previous answer arrives.
//!
//! - `--rpc get`: first creates one link per source account (one
//!   CreateAccountLinkInvitation each), then loops `GetAccountLink` by link id,
//!   caller `i` reading link `i mod accounts` as its source account.
//! - `--rpc create`: loops `CreateAccountLinkInvitation`, the source account
//!   taken round robin from `--accounts` accounts, each with a fresh random
//!   12-digit target and a fresh client token (a UUIDv4), so nothing is a
//!   replay and no invitation conflicts.
//!
//! After `--warmup` seconds it measures for `--duration` seconds: only
//! answers that arrive inside that window count. It prints one JSON line
//! ([`Report`]): OK answers per second, p50/p90/p99/max latency of the OK
//! answers (an HDR histogram in microseconds, 3 significant digits) and the
//! failures by gRPC code. `--format text` prints the same for a person.
//!
//! ```sh
//! cargo run --release --example loadgen -- --target http://127.0.0.1:50051 \
//!     --rpc get --concurrency 16 --duration 10 --warmup 2
//! ```
//!
//! It is not a test: nothing here asserts a time.

#[path = "throughput/report.rs"]
mod report;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use account_link_service::proto::pb;
use account_link_service::proto::pb::account_link_service_client::AccountLinkServiceClient;
use anyhow::Context;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use tokio::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::report::{Report, WINDOW_END, WINDOW_START};

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// Server to call (repeat, or separate with commas, to split the load
    /// over several replicas; connections go round robin over them).
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 1..,
        default_value = "http://127.0.0.1:50051"
    )]
    target: Vec<String>,
    /// Which RPC to loop.
    #[arg(long, value_enum, default_value_t = Rpc::Get)]
    rpc: Rpc,
    /// Concurrent callers, each with one RPC in flight.
    #[arg(long, short = 'c', default_value_t = 16)]
    concurrency: usize,
    /// HTTP/2 connections per target (default: min(concurrency, 4)).
    #[arg(long)]
    connections: Option<usize>,
    /// Measured window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured warm-up before the window, in seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Source (acting) accounts: `100000000001`, `100000000002`, ….
    #[arg(long, default_value_t = 16)]
    accounts: usize,
    /// Bearer token sent as `authorization: Bearer <token>` (none: anonymous).
    #[arg(long, env = "LOADGEN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

/// The RPC to loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Rpc {
    /// `GetAccountLink` by link id.
    Get,
    /// `CreateAccountLinkInvitation` with fresh targets and tokens.
    Create,
}

impl Rpc {
    fn name(self) -> &'static str {
        match self {
            Rpc::Get => "get",
            Rpc::Create => "create",
        }
    }
}

/// How the result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One JSON line (for `examples/service_bench.rs`).
    Json,
    /// A few lines for a person.
    Text,
}

/// What every caller shares.
#[derive(Debug)]
struct Plan {
    rpc: Rpc,
    /// Source accounts.
    accounts: Vec<String>,
    /// For `get`: link `i` belongs to `accounts[i]`.
    links: Vec<String>,
    /// Next source account of a create (round robin).
    next_create: AtomicUsize,
    /// `authorization` value, when a token was given.
    authorization: Option<MetadataValue<tonic::metadata::Ascii>>,
    window_start: Instant,
    window_end: Instant,
}

/// What one caller measured in the window.
#[derive(Debug)]
struct Tally {
    latency_us: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.accounts > 0, "--accounts must be at least 1");
    anyhow::ensure!(
        args.duration > 0.0 && args.warmup >= 0.0,
        "--duration must be positive and --warmup not negative"
    );
    let per_target = args
        .connections
        .unwrap_or_else(|| args.concurrency.min(4))
        .max(1);
    // Interleaved by target, so callers `i mod n` spread over every target.
    let mut channels = Vec::new();
    for _ in 0..per_target {
        for target in &args.target {
            channels.push(connect(target).await?);
        }
    }
    let authorization = args
        .token
        .as_deref()
        .map(|t| format!("Bearer {t}").parse())
        .transpose()
        .context("the token is not a valid header value")?;
    let accounts: Vec<String> = (1..=args.accounts)
        .map(|i| format!("{:012}", 100_000_000_000_u64 + i as u64))
        .collect();

    let mut links = Vec::new();
    if args.rpc == Rpc::Get {
        let mut client = AccountLinkServiceClient::new(channels[0].clone());
        for account in &accounts {
            let response = client
                .create_account_link_invitation(with_auth(
                    create_request(account),
                    authorization.as_ref(),
                ))
                .await
                .with_context(|| format!("setup: cannot create a link for {account}"))?;
            let link = response
                .into_inner()
                .account_link
                .context("setup: create answered without a link")?;
            links.push(link.account_link_id);
        }
    }

    let window_start = Instant::now() + Duration::from_secs_f64(args.warmup);
    let window_end = window_start + Duration::from_secs_f64(args.duration);
    let plan = Arc::new(Plan {
        rpc: args.rpc,
        accounts,
        links,
        next_create: AtomicUsize::new(0),
        authorization,
        window_start,
        window_end,
    });
    let mut callers = Vec::with_capacity(args.concurrency);
    for i in 0..args.concurrency {
        let client = AccountLinkServiceClient::new(channels[i % channels.len()].clone());
        callers.push(tokio::spawn(caller(i, client, Arc::clone(&plan))));
    }
    tokio::time::sleep_until(window_start).await;
    eprintln!("{WINDOW_START}");
    tokio::time::sleep_until(window_end).await;
    eprintln!("{WINDOW_END}");

    let mut latency_us = new_histogram();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for handle in callers {
        let tally = handle.await.context("a caller panicked")?;
        latency_us.add(&tally.latency_us)?;
        for (code, n) in tally.errors {
            *errors.entry(code).or_default() += n;
        }
    }
    let ms = |us: u64| us as f64 / 1000.0;
    let report = Report {
        rpc: args.rpc.name().to_owned(),
        concurrency: args.concurrency,
        connections: channels.len(),
        targets: args.target.clone(),
        duration_s: args.duration,
        ok: latency_us.len(),
        rps: latency_us.len() as f64 / args.duration,
        p50_ms: ms(latency_us.value_at_quantile(0.50)),
        p90_ms: ms(latency_us.value_at_quantile(0.90)),
        p99_ms: ms(latency_us.value_at_quantile(0.99)),
        max_ms: ms(latency_us.max()),
        errors,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&report)?),
        Format::Text => {
            println!(
                "{} c={} over {} connection(s): {:.0} rps ({} ok in {:.1} s)",
                report.rpc,
                report.concurrency,
                report.connections,
                report.rps,
                report.ok,
                report.duration_s
            );
            println!(
                "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
                report.p50_ms, report.p90_ms, report.p99_ms, report.max_ms
            );
            println!("errors: {:?}", report.errors);
        }
    }
    Ok(())
}

/// Opens one HTTP/2 connection to `target` (TCP_NODELAY, as the servers set it).
async fn connect(target: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(target.to_owned())
        .with_context(|| format!("bad target {target}"))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {target}"))
}

/// One caller: loops its RPC until the window ends, recording the answers
/// that arrive inside it.
async fn caller(i: usize, mut client: AccountLinkServiceClient<Channel>, plan: Arc<Plan>) -> Tally {
    let mut tally = Tally {
        latency_us: new_histogram(),
        errors: BTreeMap::new(),
    };
    let auth = plan.authorization.as_ref();
    loop {
        let sent = Instant::now();
        if sent >= plan.window_end {
            return tally;
        }
        let result = match plan.rpc {
            Rpc::Get => {
                let k = i % plan.links.len();
                let request = pb::GetAccountLinkRequest {
                    account_id: plan.accounts[k].clone(),
                    link_id: plan.links[k].clone(),
                    linked_account_id: String::new(),
                };
                client
                    .get_account_link(with_auth(request, auth))
                    .await
                    .map(drop)
            }
            Rpc::Create => {
                let k = plan.next_create.fetch_add(1, Ordering::Relaxed) % plan.accounts.len();
                client
                    .create_account_link_invitation(with_auth(
                        create_request(&plan.accounts[k]),
                        auth,
                    ))
                    .await
                    .map(drop)
            }
        };
        let done = Instant::now();
        if done < plan.window_start || done >= plan.window_end {
            continue;
        }
        match result {
            Ok(()) => {
                let us = (done - sent).as_micros().max(1) as u64;
                tally.latency_us.saturating_record(us);
            }
            Err(status) => {
                *tally
                    .errors
                    .entry(format!("{:?}", status.code()))
                    .or_default() += 1;
            }
        }
    }
}

/// A CreateAccountLinkInvitation from `source` to a fresh random target,
/// with a fresh client token.
fn create_request(source: &str) -> pb::CreateAccountLinkInvitationRequest {
    let target = loop {
        let n = uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000;
        let target = format!("{n:012}");
        if target != source {
            break target;
        }
    };
    pb::CreateAccountLinkInvitationRequest {
        account_id: source.to_owned(),
        target_account_id: target,
        client_token: uuid::Uuid::new_v4().to_string(),
    }
}

fn with_auth<T>(
    message: T,
    authorization: Option<&MetadataValue<tonic::metadata::Ascii>>,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.clone());
    }
    request
}

/// Microseconds from 1 µs to 60 s, 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}
