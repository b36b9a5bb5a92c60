//! Benchmark of the store's write path on both backends
//! (docs/benchmarks.md, "Store writes: PostgreSQL vs SQLite").
//!
//! For each backend, on a fresh, migrated, empty database (PostgreSQL: a
//! new database `bench_<uuid>` on `--server-url`, dropped at the end;
//! SQLite: a new file in a new directory under `--temp-dir`, removed at the
//! end), it times through the real [`Store`] methods:
//!
//! 1. `append_audit_event` alone, one after another (the write every RPC
//!    makes; one transaction);
//! 2. the store work of one mutating RPC, one after another: `claim` of a
//!    fresh client token (`now = None`, as the service calls it), then
//!    `complete` with a `Completed` outcome and its audit event (two
//!    transactions);
//! 3. the same RPC store work from `--concurrency` tokio tasks at once
//!    (PostgreSQL: a pool of `--pool-size` connections; SQLite: its one
//!    writer connection);
//! 4. SQLite only: runs 1 and 2 again on another fresh file whose writer
//!    connection was switched to `PRAGMA synchronous = NORMAL` after
//!    `SqliteStore::connect` (which sets `FULL`). This variant exists only
//!    to measure what `FULL` costs; the service never runs with `NORMAL`.
//!
//! ```sh
//! cargo run --release --example store_write_bench -- [--backend postgres|sqlite|both] \
//!     [--ops 2000] [--concurrency 16]
//! ```
//!
//! It is not a test: nothing here asserts a time. It does check that every
//! claim of a fresh key is `Acquired` and every completion holds its lease.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use account_link_service::store::{
    AuditEvent, ClaimOutcome, IdempotencyOutcome, NewClaim, PgStore, RecordKey, RecordOutcome,
    SqliteStore, Store, StoredOutcome,
};
use anyhow::Context;
use clap::{Parser, ValueEnum};
use sqlx::Postgres;
use sqlx::migrate::MigrateDatabase;
use uuid::Uuid;

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// Which store(s) to measure.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    backend: Which,
    /// The PostgreSQL server (no database name): the benchmark creates
    /// `bench_<uuid>` there and drops it at the end.
    #[arg(
        long,
        env = "BENCH_SERVER_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    server_url: String,
    /// Where the SQLite files go (a new directory per store, removed at
    /// the end). Default: the system temporary directory.
    #[arg(long)]
    temp_dir: Option<PathBuf>,
    /// Timed operations per run.
    #[arg(long, short = 'n', default_value_t = 2000)]
    ops: usize,
    /// Untimed operations before each run.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Tasks of the concurrent run.
    #[arg(long, short = 'c', default_value_t = 16)]
    concurrency: usize,
    /// PostgreSQL pool size (the service's --database-max-connections
    /// default); for SQLite, the reader pool beside its one writer.
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Postgres,
    Sqlite,
    Both,
}

/// One measured run: per-operation latencies and the wall time of all of
/// them.
#[derive(Debug)]
struct Run {
    store: String,
    what: &'static str,
    tasks: usize,
    ms: Vec<f64>,
    wall: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    per_sec: f64,
}

impl Run {
    fn stats(&self) -> Stats {
        let mut ms = self.ms.clone();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        Stats {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: ms[ms.len() - 1],
            per_sec: ms.len() as f64 / self.wall.as_secs_f64(),
        }
    }
}

const APPEND: &str = "append_audit_event";
const RPC: &str = "claim + complete";

/// A fresh 64-hex-digit client-token hash.
fn token_hash() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// A phase-1 claim of a fresh key, shaped like the service's for
/// CreateAccountLinkInvitation (60 s lease, 24 h ttl: the defaults).
fn new_claim() -> NewClaim {
    NewClaim {
        key: RecordKey {
            principal: "svc-bench".into(),
            method: "CreateAccountLinkInvitation",
            client_token_sha256: token_hash(),
        },
        acting_account_id: "100000000007".into(),
        request_fingerprint: token_hash(),
        lease: Duration::from_secs(60),
        ttl: Duration::from_secs(24 * 3600),
        request_body: None,
    }
}

/// The upstream ClientToken of a generation (the service derives an HMAC;
/// its cost is not the store's).
fn upstream_token(generation: i32) -> String {
    format!("bench-{generation}")
}

/// A stored success: an encoded AccountLink is about this size.
fn success() -> RecordOutcome {
    RecordOutcome::Completed(StoredOutcome {
        grpc_code: 0,
        error_reason: None,
        message: None,
        details: None,
        body: Some(vec![0x5a; 96]),
    })
}

/// The audit event of a successful CreateAccountLinkInvitation.
fn mutation_event(claim: &NewClaim) -> AuditEvent {
    AuditEvent {
        method: claim.key.method.into(),
        read_only: false,
        principal: claim.key.principal.clone(),
        request_id: Uuid::new_v4().to_string(),
        account_id: Some(claim.acting_account_id.clone()),
        request_parameters: serde_json::json!({
            "account_id": claim.acting_account_id,
            "target_account_id": "100000000042",
        }),
        response_elements: Some(serde_json::json!({
            "AccountLink": {
                "AccountLinkId": "link-0000beef",
                "AccountLinkStatus": "PENDING_ACCEPTANCE_BY_TARGET_ACCOUNT",
                "SourceAccountId": claim.acting_account_id,
                "TargetAccountId": "100000000042",
            }
        })),
        idempotency_outcome: IdempotencyOutcome::New,
        client_token_sha256: Some(claim.key.client_token_sha256.clone()),
        duration_us: 4321,
        ..common::read_event(0, "store_write_bench")
    }
}

/// The store work of one mutating RPC: phase 1 then phase 3.
async fn one_rpc<S: Store>(store: &S) -> anyhow::Result<()> {
    let claim = new_claim();
    let outcome = store
        .claim(&claim, None, std::sync::Arc::new(upstream_token))
        .await?;
    let ClaimOutcome::Acquired { lease_id, .. } = outcome else {
        anyhow::bail!("a fresh key was not acquired: {outcome:?}");
    };
    let held = store
        .complete(&claim.key, lease_id, &success(), &mutation_event(&claim))
        .await?;
    anyhow::ensure!(held, "the lease of a fresh claim did not hold");
    Ok(())
}

/// `ops` appends one after another, after `warmup` untimed ones.
async fn appends<S: Store>(store: &S, label: &str, args: &Args) -> anyhow::Result<Run> {
    for i in 0..args.warmup {
        store
            .append_audit_event(&common::read_event(i, "store_write_bench"))
            .await?;
    }
    let mut ms = Vec::with_capacity(args.ops);
    let started = Instant::now();
    for i in 0..args.ops {
        let event = common::read_event(i, "store_write_bench");
        let t = Instant::now();
        store.append_audit_event(&event).await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Run {
        store: label.into(),
        what: APPEND,
        tasks: 1,
        ms,
        wall: started.elapsed(),
    })
}

/// `ops` RPCs one after another, after `warmup` untimed ones.
async fn rpcs<S: Store>(store: &S, label: &str, args: &Args) -> anyhow::Result<Run> {
    for _ in 0..args.warmup {
        one_rpc(store).await?;
    }
    let mut ms = Vec::with_capacity(args.ops);
    let started = Instant::now();
    for _ in 0..args.ops {
        let t = Instant::now();
        one_rpc(store).await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Run {
        store: label.into(),
        what: RPC,
        tasks: 1,
        ms,
        wall: started.elapsed(),
    })
}

/// `total` RPCs shared among `tasks` tasks; the latencies of each.
async fn rpcs_from_tasks<S: Store>(
    store: &S,
    tasks: usize,
    total: usize,
) -> anyhow::Result<Vec<f64>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let store = store.clone();
        let next = Arc::clone(&next);
        handles.push(tokio::spawn(async move {
            let mut ms = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let t = Instant::now();
                one_rpc(&store).await?;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            anyhow::Ok(ms)
        }));
    }
    let mut ms = Vec::with_capacity(total);
    for handle in handles {
        ms.extend(handle.await??);
    }
    Ok(ms)
}

/// `ops` RPCs from `concurrency` tasks, after `warmup` untimed ones the
/// same way (which also opens the pool's connections).
async fn concurrent_rpcs<S: Store>(store: &S, label: &str, args: &Args) -> anyhow::Result<Run> {
    rpcs_from_tasks(store, args.concurrency, args.warmup).await?;
    let started = Instant::now();
    let ms = rpcs_from_tasks(store, args.concurrency, args.ops).await?;
    Ok(Run {
        store: label.into(),
        what: RPC,
        tasks: args.concurrency,
        ms,
        wall: started.elapsed(),
    })
}

/// Runs 1–3 on one store.
async fn standard_runs<S: Store>(store: &S, label: &str, args: &Args) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    eprintln!("{label}: {APPEND}, sequential…");
    runs.push(appends(store, label, args).await?);
    eprintln!("{label}: {RPC}, sequential…");
    runs.push(rpcs(store, label, args).await?);
    eprintln!("{label}: {RPC}, {} tasks…", args.concurrency);
    runs.push(concurrent_rpcs(store, label, args).await?);
    Ok(runs)
}

async fn bench_postgres(args: &Args) -> anyhow::Result<Vec<Run>> {
    let url = format!(
        "{}/bench_{}",
        args.server_url.trim_end_matches('/'),
        Uuid::new_v4().simple()
    );
    let store = PgStore::connect(&url, args.pool_size)
        .await
        .context("connect to the PostgreSQL server of --server-url")?;
    let settings: (String, String, String, String, String) = sqlx::query_as(
        "select version(), current_setting('synchronous_commit'), current_setting('fsync'), \
         current_setting('wal_sync_method'), current_setting('commit_delay')",
    )
    .fetch_one(store.pool())
    .await?;
    println!("postgres: {}", settings.0);
    println!(
        "postgres: synchronous_commit={} fsync={} wal_sync_method={} commit_delay={}; \
         pool {} connections; database {}",
        settings.1,
        settings.2,
        settings.3,
        settings.4,
        args.pool_size,
        url.rsplit('/').next().unwrap_or_default()
    );
    let runs = standard_runs(&store, "postgres", args).await;
    store.close().await;
    Postgres::force_drop_database(&url)
        .await
        .context("drop the benchmark database")?;
    runs
}

/// A fresh SQLite store in a new directory under `root`.
async fn open_sqlite(root: &Path, readers: u32) -> anyhow::Result<(SqliteStore, PathBuf)> {
    let dir = root.join(format!("store-write-bench-{}", Uuid::new_v4().simple()));
    let url = format!("sqlite://{}/store.db", dir.display());
    let store = SqliteStore::connect(&url, readers)
        .await
        .with_context(|| format!("open {url}"))?;
    Ok((store, dir))
}

/// The writer connection's `PRAGMA synchronous` (0 OFF, 1 NORMAL, 2 FULL).
async fn synchronous(store: &SqliteStore) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(store.writer())
        .await?)
}

async fn bench_sqlite(args: &Args) -> anyhow::Result<Vec<Run>> {
    let root = args.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut runs = Vec::new();

    let (store, dir) = open_sqlite(&root, args.pool_size).await?;
    let (version, journal): (String, String) =
        sqlx::query_as("select sqlite_version(), (select journal_mode from pragma_journal_mode)")
            .fetch_one(store.writer())
            .await?;
    let sync = synchronous(&store).await?;
    println!("sqlite: {version}, journal_mode={journal}, synchronous={sync} (2 = FULL)");
    println!("sqlite (synchronous=FULL): {}", dir.display());
    let result = standard_runs(&store, "sqlite", args).await;
    store.close().await;
    std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    runs.extend(result?);

    // Measurement only: SqliteStore::connect sets FULL, and the service
    // always runs with it. The writer pool is one connection, so the
    // pragma below applies to every write of this store.
    let (store, dir) = open_sqlite(&root, args.pool_size).await?;
    sqlx::query("PRAGMA synchronous = NORMAL")
        .execute(store.writer())
        .await?;
    let before = synchronous(&store).await?;
    println!(
        "sqlite (synchronous=NORMAL, measurement only): {}; synchronous={before} (1 = NORMAL)",
        dir.display()
    );
    let label = "sqlite NORMAL*";
    let result = async {
        anyhow::ensure!(before == 1, "PRAGMA synchronous is {before}, not 1");
        eprintln!("{label}: {APPEND}, sequential…");
        let a = appends(&store, label, args).await?;
        eprintln!("{label}: {RPC}, sequential…");
        let r = rpcs(&store, label, args).await?;
        let after = synchronous(&store).await?;
        anyhow::ensure!(
            after == 1,
            "the writer connection changed during the runs: synchronous={after}"
        );
        Ok(vec![a, r])
    }
    .await;
    store.close().await;
    std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    runs.extend(result?);
    Ok(runs)
}

fn print_table(runs: &[Run]) {
    println!();
    println!("| store | operation | tasks | ops | ops/s | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for run in runs {
        let s = run.stats();
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            run.store,
            run.what,
            run.tasks,
            run.ms.len(),
            s.per_sec,
            s.p50,
            s.p90,
            s.p99,
            s.max
        );
    }
    let find = |store: &str, what: &str| {
        runs.iter()
            .find(|r| r.store == store && r.what == what && r.tasks == 1)
            .map(Run::stats)
    };
    for what in [APPEND, RPC] {
        if let (Some(full), Some(normal)) = (find("sqlite", what), find("sqlite NORMAL*", what)) {
            println!(
                "\nsqlite FULL / NORMAL, {what}, sequential: p50 {:.2}x, throughput {:.2}x lower",
                full.p50 / normal.p50,
                normal.per_sec / full.per_sec
            );
        }
    }
    if runs.iter().any(|r| r.store == "sqlite NORMAL*") {
        println!(
            "\n* synchronous=NORMAL is a measurement only (set on the writer connection after \
             SqliteStore::connect); the service always runs with FULL."
        );
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.ops > 0 && args.concurrency > 0,
        "--ops and --concurrency must be positive"
    );
    println!(
        "ops per run: {} (after {} warm-up), concurrency {}, {} worker threads",
        args.ops,
        args.warmup,
        args.concurrency,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut runs = Vec::new();
    if matches!(args.backend, Which::Postgres | Which::Both) {
        runs.extend(bench_postgres(&args).await?);
    }
    if matches!(args.backend, Which::Sqlite | Which::Both) {
        runs.extend(bench_sqlite(&args).await?);
    }
    print_table(&runs);
    Ok(())
}
