//! The throughput benchmark's driver (docs/benchmarks.md, "Service
//! throughput vs its anchors"): in one run it measures, with the same load
//! generator (`examples/loadgen.rs`):
//!
//! 1. the bare tonic server over our proto (`examples/bare_tonic_server.rs`);
//! 2. the direct-SDK server (`examples/direct_sdk_server.rs`) against a
//!    standalone `account-link-service emulator`, then the same server with
//!    `--durable-log --durable-claims`, once on a fresh PostgreSQL database
//!    and once on a fresh SQLite file: the floors of each store, a durable,
//!    group-committed line about every RPC before its answer and, for a
//!    Create, a durable claim of its client token before the AWS call (what
//!    DESIGN.md §5 requires), with no hash chain, query index or fingerprint;
//! 3. the service (`serve --dev --aws-endpoint-url`) on a fresh PostgreSQL
//!    database, against its own standalone emulator;
//! 4. the service on a fresh SQLite file, likewise;
//! 5. one, then three service replicas on one fresh PostgreSQL database
//!    (GetAccountLink at c = 64, split over the replicas).
//!
//! Setups 1 to 4 (and the floors) run GetAccountLink at c = 1, 16, 64 (the
//! service also at 256) and CreateAccountLinkInvitation at c = 16 over 16
//! source accounts.
//! Every setup gets its own emulator, so none sees another's links. The
//! service runs with its defaults except the local upstream rate limit,
//! which is raised out of the way (`--upstream-rate-per-sec`,
//! `--upstream-burst`).
//!
//! Over each measured window it reads the CPU time (utime + stime in
//! `/proc/<pid>/stat`, what `top` shows) of the server process(es), the
//! emulator, the PostgreSQL processes (the postmaster, its background
//! processes and the backends of the bench database; backends of other
//! databases are left out), the load generator, and of the whole machine
//! (`/proc/stat`). It prints markdown: the results, the CPU split, and the
//! issue's ratios against the direct-SDK server.
//!
//! It stops everything it started, by PID (SIGTERM, then SIGKILL after 5 s),
//! drops the databases it created and removes its temporary directory
//! (kept with `--keep-logs`, or when a step fails, for the logs).
//!
//! ```sh
//! bash bench/run.sh [--quick] [--duration 10 --warmup 2] [--out FILE]
//! # PostgreSQL server: --server-url / BENCH_SERVER_URL, default postgres://postgres@127.0.0.1:5432
//! ```
//!
//! It is not a test: nothing here asserts a time.

#[path = "throughput/report.rs"]
mod report;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use sqlx::Connection;

use crate::report::{Report, WINDOW_END, WINDOW_START};

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// Measured window of each load run, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up before each window, in seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Short runs (3 s after a 1 s warm-up) to check that everything works.
    #[arg(long)]
    quick: bool,
    /// The PostgreSQL server (no database name); the benchmark creates
    /// `bench_tput_<hex>` databases there (the service migrates its own; the
    /// PostgreSQL floor's is created here) and drops them.
    #[arg(
        long,
        env = "BENCH_SERVER_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    server_url: String,
    /// Where the built binaries are (default: next to this one,
    /// `target/release/examples` and its parent).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Also write the markdown to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the temporary directory (logs, raw JSON, SQLite file).
    #[arg(long)]
    keep_logs: bool,
}

/// The built programs.
#[derive(Debug)]
struct Programs {
    service: PathBuf,
    loadgen: PathBuf,
    bare: PathBuf,
    direct: PathBuf,
}

impl Programs {
    fn find(bin_dir: Option<&Path>) -> anyhow::Result<Self> {
        let examples = match bin_dir {
            Some(dir) => dir.to_owned(),
            None => std::env::current_exe()?
                .parent()
                .context("the executable has no directory")?
                .to_owned(),
        };
        let release = examples.parent().context("no parent directory")?.to_owned();
        let programs = Self {
            service: release.join("account-link-service"),
            loadgen: examples.join("loadgen"),
            bare: examples.join("bare_tonic_server"),
            direct: examples.join("direct_sdk_server"),
        };
        for p in [
            &programs.service,
            &programs.loadgen,
            &programs.bare,
            &programs.direct,
        ] {
            if !p.is_file() {
                bail!(
                    "{} is missing: build with `cargo build --release --bins --examples` (or run bench/run.sh)",
                    p.display()
                );
            }
        }
        Ok(programs)
    }
}

/// A process this benchmark started; stopped by PID when dropped.
#[derive(Debug)]
struct Started {
    name: String,
    child: Child,
}

impl Started {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, up to 5 s to exit, then SIGKILL.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("bench: {} did not stop on sigterm, killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where a run keeps its files, and the programs it starts.
#[derive(Debug)]
struct Bench {
    programs: Programs,
    dir: PathBuf,
    duration: f64,
    warmup: f64,
    server_url: String,
    clk_tck: f64,
    raw: Vec<String>,
}

impl Bench {
    /// Starts `program` with `args`, output to `<dir>/<name>.log`, and
    /// waits until `port` accepts TCP connections (60 s at most).
    fn start(
        &self,
        name: &str,
        program: &Path,
        args: &[String],
        port: u16,
    ) -> anyhow::Result<Started> {
        let log = self.dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        // Settings come from the command line only.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if ["ACCOUNT_LINK_", "AWS_", "DATABASE_", "EMULATOR_", "OTEL_"]
                .iter()
                .any(|p| key.starts_with(p))
            {
                command.env_remove(key);
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let mut started = Started {
            name: name.to_owned(),
            child,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(started);
            }
            if let Ok(Some(status)) = started.child.try_wait() {
                bail!(
                    "{name} exited ({status}) before listening; see {}",
                    log.display()
                );
            }
            if Instant::now() > deadline {
                started.stop();
                bail!(
                    "{name} did not listen on {addr} within 60 s; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn emulator(&self, name: &str) -> anyhow::Result<(Started, String)> {
        let port = free_port()?;
        let started = self.start(
            name,
            &self.programs.service,
            &[
                "emulator".into(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
            ],
            port,
        )?;
        Ok((started, format!("http://127.0.0.1:{port}")))
    }

    /// One service process in `--dev` against the emulator at `endpoint`,
    /// on `database` (a URL, or a data directory for the default SQLite file).
    fn service(
        &self,
        name: &str,
        endpoint: &str,
        database: &Store,
    ) -> anyhow::Result<(Started, String)> {
        let port = free_port()?;
        let metrics = free_port()?;
        let mut args: Vec<String> = [
            "serve",
            "--dev",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{metrics}"),
            "--aws-endpoint-url",
            endpoint,
            "--upstream-rate-per-sec",
            "1000000",
            "--upstream-burst",
            "1000000",
            "--shutdown-grace-secs",
            "2",
        ]
        .map(String::from)
        .to_vec();
        match database {
            Store::Postgres(url) => args.extend(["--database-url".into(), url.clone()]),
            Store::Sqlite(dir) => args.extend(["--data-dir".into(), dir.display().to_string()]),
        }
        let started = self.start(name, &self.programs.service, &args, port)?;
        Ok((started, format!("http://127.0.0.1:{port}")))
    }

    /// Runs the load generator once and samples CPU over its window.
    fn load(
        &mut self,
        setup: &str,
        rpc: &str,
        concurrency: usize,
        targets: &[String],
        watched: &Watched<'_>,
    ) -> anyhow::Result<Row> {
        eprintln!("bench: {setup}: {rpc} c={concurrency}");
        let mut child = Command::new(&self.programs.loadgen)
            .args([
                "--target",
                &targets.join(","),
                "--rpc",
                rpc,
                "--concurrency",
                &concurrency.to_string(),
                "--duration",
                &self.duration.to_string(),
                "--warmup",
                &self.warmup.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start the load generator")?;
        let loadgen_pid = child.id();
        let stderr = child.stderr.take().context("no stderr")?;
        let mut start = None;
        let mut end = None;
        let mut other = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line?;
            if line == WINDOW_START {
                start = Some(watched.sample(loadgen_pid));
            } else if line == WINDOW_END {
                end = Some(watched.sample(loadgen_pid));
            } else {
                other.push_str(&line);
                other.push('\n');
            }
        }
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .context("no stdout")?
            .read_to_string(&mut stdout)?;
        let status = child.wait()?;
        if !status.success() {
            bail!("the load generator failed ({status}) on {setup} {rpc} c={concurrency}: {other}");
        }
        let (Some(start), Some(end)) = (start, end) else {
            bail!("the load generator printed no window markers: {other}");
        };
        let report: Report = serde_json::from_str(stdout.trim())
            .with_context(|| format!("unreadable load generator output {stdout:?}"))?;
        self.raw.push(format!(
            "{{\"setup\":{setup:?},\"report\":{}}}",
            stdout.trim()
        ));
        let cpu = Cpu::between(&start, &end, self.clk_tck);
        Ok(Row {
            setup: setup.to_owned(),
            report,
            cpu,
        })
    }
}

/// Where a service keeps its store.
#[derive(Debug)]
enum Store {
    /// A PostgreSQL URL.
    Postgres(String),
    /// A data directory (the default SQLite file in it).
    Sqlite(PathBuf),
}

/// The processes whose CPU a load run reports.
#[derive(Debug, Default)]
struct Watched<'a> {
    servers: Vec<u32>,
    emulator: Option<u32>,
    database: Option<&'a str>,
}

/// CPU clock ticks at one instant.
#[derive(Debug)]
struct Sample {
    at: Instant,
    servers: u64,
    emulator: u64,
    postgres: HashMap<u32, u64>,
    loadgen: u64,
    machine_busy: u64,
    machine_total: u64,
}

impl Watched<'_> {
    fn sample(&self, loadgen: u32) -> Sample {
        let (machine_busy, machine_total) = machine_ticks();
        Sample {
            at: Instant::now(),
            servers: self.servers.iter().filter_map(|&p| pid_ticks(p)).sum(),
            emulator: self.emulator.and_then(pid_ticks).unwrap_or(0),
            postgres: match self.database {
                Some(db) => postgres_ticks(db),
                None => HashMap::new(),
            },
            loadgen: pid_ticks(loadgen).unwrap_or(0),
            machine_busy,
            machine_total,
        }
    }
}

/// CPU over a window, in percent of one core (as `top` shows it).
#[derive(Debug, Clone, Copy)]
struct Cpu {
    servers: f64,
    postgres: Option<f64>,
    emulator: Option<f64>,
    loadgen: f64,
    /// The whole machine, in percent of all its cores.
    machine: f64,
    /// Seconds the window lasted.
    seconds: f64,
}

impl Cpu {
    fn between(start: &Sample, end: &Sample, clk_tck: f64) -> Self {
        let seconds = (end.at - start.at).as_secs_f64();
        let pct = |ticks: u64| ticks as f64 / clk_tck / seconds * 100.0;
        let postgres_ticks: u64 = end
            .postgres
            .iter()
            .map(|(pid, t)| t.saturating_sub(start.postgres.get(pid).copied().unwrap_or(0)))
            .sum();
        let total = end.machine_total.saturating_sub(start.machine_total).max(1);
        Self {
            servers: pct(end.servers.saturating_sub(start.servers)),
            postgres: (!end.postgres.is_empty()).then(|| pct(postgres_ticks)),
            emulator: (end.emulator > 0).then(|| pct(end.emulator.saturating_sub(start.emulator))),
            loadgen: pct(end.loadgen.saturating_sub(start.loadgen)),
            machine: end.machine_busy.saturating_sub(start.machine_busy) as f64 / total as f64
                * 100.0,
            seconds,
        }
    }
}

/// One load run's result.
#[derive(Debug)]
struct Row {
    setup: String,
    report: Report,
    cpu: Cpu,
}

/// utime + stime of `pid`, in clock ticks.
fn pid_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_ticks(&stat)
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line; the
/// command name (field 2) may hold spaces and parentheses.
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Ticks of every PostgreSQL process that serves `database`: the
/// postmaster, its background processes, and the backends of `database`
/// (a backend's title is `postgres: [cluster: ]user database host(port) …`).
fn postgres_ticks(database: &str) -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "postgres" {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let title = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if let Some(backend_db) = backend_database(&title)
            && backend_db != database
        {
            continue;
        }
        if let Some(ticks) = pid_ticks(pid) {
            out.insert(pid, ticks);
        }
    }
    out
}

/// The database of a backend's process title, `None` for the postmaster
/// and background processes.
fn backend_database(title: &str) -> Option<&str> {
    let rest = title.strip_prefix("postgres: ")?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    // Debian prefixes the cluster name: `postgres: 15/main: postgres db 127.0.0.1(5000) idle`.
    let words = match words.first() {
        Some(w) if w.ends_with(':') => &words[1..],
        _ => &words[..],
    };
    let host = words.get(2)?;
    (host.contains('(') || host.starts_with("[local]")).then(|| words[1])
}

/// (busy, total) ticks of the whole machine, from `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `statements` one after another on the server's `postgres` database.
fn on_server(server_url: &str, statements: &[String]) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&format!("{server_url}/postgres")).await?;
        for sql in statements {
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .execute(&mut conn)
                .await
                .with_context(|| format!("cannot run `{sql}`"))?;
        }
        conn.close().await?;
        anyhow::Ok(())
    })
}

/// Drops the bench databases (connections are gone or forced out).
fn drop_databases(server_url: &str, names: &[String]) -> anyhow::Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    // Each name is `bench_tput_` and hex digits, made by this program.
    let drops: Vec<String> = names
        .iter()
        .map(|name| format!("drop database if exists \"{name}\" with (force)"))
        .collect();
    on_server(server_url, &drops)
}

/// Creates the database `name` (a `bench_tput_` name made by this program).
fn create_database(server_url: &str, name: &str) -> anyhow::Result<()> {
    on_server(server_url, &[format!("create database \"{name}\"")])
}

/// A fresh `bench_tput_<hex>` database name.
fn database_name() -> String {
    format!(
        "bench_tput_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.duration = 3.0;
        args.warmup = 1.0;
    }
    let programs = Programs::find(args.bin_dir.as_deref())?;
    let dir = std::env::temp_dir().join(format!(
        "account-link-throughput-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    eprintln!("bench: logs in {}", dir.display());
    let mut bench = Bench {
        programs,
        dir: dir.clone(),
        duration: args.duration,
        warmup: args.warmup,
        server_url: args.server_url.trim_end_matches('/').to_owned(),
        clk_tck: clk_tck(),
        raw: Vec::new(),
    };
    let mut databases = Vec::new();
    let result = run_all(&mut bench, &mut databases);
    let dropped = drop_databases(&bench.server_url, &databases);
    let _ = std::fs::write(dir.join("runs.jsonl"), bench.raw.join("\n") + "\n");
    let rows = result?;
    dropped?;

    let markdown = render(&args, &rows);
    println!("{markdown}");
    if let Some(out) = &args.out {
        std::fs::write(out, &markdown)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    if args.keep_logs {
        eprintln!("bench: kept {}", dir.display());
    } else {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

const BARE: &str = "bare tonic";
const DIRECT: &str = "direct SDK";
const FLOOR_PG: &str = "floor + PostgreSQL";
const FLOOR_SQLITE: &str = "floor + SQLite";
const PG: &str = "service + PostgreSQL";
const SQLITE: &str = "service + SQLite";
const PG_ONE: &str = "1 replica, PostgreSQL";
const PG_THREE: &str = "3 replicas, PostgreSQL";

/// Every setup in turn; returns the rows, or the first failure (the
/// processes of the failed setup are stopped when their guards drop).
fn run_all(bench: &mut Bench, databases: &mut Vec<String>) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let gets = [1, 16, 64];

    {
        let port = free_port()?;
        let bare = bench.start(
            "bare",
            &bench.programs.bare,
            &["--listen".into(), format!("127.0.0.1:{port}")],
            port,
        )?;
        let targets = [format!("http://127.0.0.1:{port}")];
        let watched = Watched {
            servers: vec![bare.pid()],
            ..Watched::default()
        };
        for c in gets {
            rows.push(bench.load(BARE, "get", c, &targets, &watched)?);
        }
        rows.push(bench.load(BARE, "create", 16, &targets, &watched)?);
    }

    // The direct-SDK server, then the same with its durable records on
    // each store (the floors).
    for (setup, name) in [
        (DIRECT, "direct"),
        (FLOOR_PG, "floor-pg"),
        (FLOOR_SQLITE, "floor-sqlite"),
    ] {
        let (emulator, endpoint) = bench.emulator(&format!("{name}-emulator"))?;
        let port = free_port()?;
        let mut args = vec![
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--endpoint-url".into(),
            endpoint,
        ];
        let mut database = None;
        let log = match setup {
            FLOOR_PG => {
                let db = database_name();
                create_database(&bench.server_url, &db)?;
                databases.push(db.clone());
                let url = format!("{}/{db}", bench.server_url);
                database = Some(db);
                Some(url)
            }
            FLOOR_SQLITE => Some(format!(
                "sqlite://{}?mode=rwc",
                bench.dir.join("floor.db").display()
            )),
            _ => None,
        };
        if let Some(url) = log {
            args.extend(["--durable-log".into(), url, "--durable-claims".into()]);
        }
        let server = bench.start(name, &bench.programs.direct, &args, port)?;
        let targets = [format!("http://127.0.0.1:{port}")];
        let watched = Watched {
            servers: vec![server.pid()],
            emulator: Some(emulator.pid()),
            database: database.as_deref(),
        };
        for c in gets {
            rows.push(bench.load(setup, "get", c, &targets, &watched)?);
        }
        rows.push(bench.load(setup, "create", 16, &targets, &watched)?);
    }

    for (setup, postgres) in [(PG, true), (SQLITE, false)] {
        let (emulator, endpoint) = bench.emulator(if postgres {
            "pg-emulator"
        } else {
            "sqlite-emulator"
        })?;
        let name = database_name();
        let store = if postgres {
            databases.push(name.clone());
            Store::Postgres(format!("{}/{name}", bench.server_url))
        } else {
            let data = bench.dir.join("sqlite");
            std::fs::create_dir_all(&data)?;
            Store::Sqlite(data)
        };
        let (service, target) = bench.service(
            if postgres {
                "service-pg"
            } else {
                "service-sqlite"
            },
            &endpoint,
            &store,
        )?;
        let targets = [target];
        let watched = Watched {
            servers: vec![service.pid()],
            emulator: Some(emulator.pid()),
            database: postgres.then_some(name.as_str()),
        };
        for c in [1, 16, 64, 256] {
            rows.push(bench.load(setup, "get", c, &targets, &watched)?);
        }
        rows.push(bench.load(setup, "create", 16, &targets, &watched)?);
    }

    {
        let (emulator, endpoint) = bench.emulator("replicas-emulator")?;
        let name = database_name();
        databases.push(name.clone());
        let store = Store::Postgres(format!("{}/{name}", bench.server_url));
        let mut replicas = Vec::new();
        let mut targets = Vec::new();
        // The first replica migrates the new database; the others find it ready.
        for i in 1..=3 {
            let (replica, target) = bench.service(&format!("replica-{i}"), &endpoint, &store)?;
            replicas.push(replica);
            targets.push(target);
        }
        let mut watched = Watched {
            servers: vec![replicas[0].pid()],
            emulator: Some(emulator.pid()),
            database: Some(name.as_str()),
        };
        rows.push(bench.load(PG_ONE, "get", 64, &targets[..1], &watched)?);
        watched.servers = replicas.iter().map(Started::pid).collect();
        rows.push(bench.load(PG_THREE, "get", 64, &targets, &watched)?);
    }
    Ok(rows)
}

fn find<'a>(rows: &'a [Row], setup: &str, rpc: &str, c: usize) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.setup == setup && r.report.rpc == rpc && r.report.concurrency == c)
}

fn fmt_pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.0} %"))
}

/// CPU milliseconds per OK RPC of a percentage of one core over a window.
fn per_rpc(pct: Option<f64>, row: &Row) -> String {
    match pct {
        Some(p) if row.report.ok > 0 => format!(
            "{:.2}",
            p / 100.0 * row.cpu.seconds * 1000.0 / row.report.ok as f64
        ),
        _ => "–".to_owned(),
    }
}

fn render(args: &Args, rows: &[Row]) -> String {
    let mut md = String::new();
    let commit =
        command_line("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = command_line("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    let date = time::OffsetDateTime::now_utc().date();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(
        md,
        "Run of {date} at `{commit}`{}, {cpus} CPUs, each load run {} s after a {} s warm-up \
         (load average at the end: {}):\n",
        if dirty { " (with local changes)" } else { "" },
        args.duration,
        args.warmup,
        load.join(" ")
    );
    md.push_str("| setup | RPC | c | rps | p50 ms | p90 ms | p99 ms | max ms | errors |\n");
    md.push_str("|---|---|---:|---:|---:|---:|---:|---:|---|\n");
    for r in rows {
        let errors = if r.report.errors.is_empty() {
            "0".to_owned()
        } else {
            r.report
                .errors
                .iter()
                .map(|(code, n)| format!("{code} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            r.setup,
            rpc_name(&r.report.rpc),
            r.report.concurrency,
            r.report.rps,
            r.report.p50_ms,
            r.report.p90_ms,
            r.report.p99_ms,
            r.report.max_ms,
            errors
        );
    }

    md.push_str(
        "\nCPU over each measured window, in % of one core (`top`'s unit; from \
         /proc/<pid>/stat), and CPU ms per OK RPC. \"server\" is the process under test \
         (the sum of the replicas); \"machine\" is busy time of all cores together.\n\n",
    );
    md.push_str("| setup | RPC | c | server | PostgreSQL | emulator | loadgen | machine | server ms/RPC | PostgreSQL ms/RPC | emulator ms/RPC |\n");
    md.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} % | {} | {} | {} |",
            r.setup,
            rpc_name(&r.report.rpc),
            r.report.concurrency,
            fmt_pct(Some(r.cpu.servers)),
            fmt_pct(r.cpu.postgres),
            fmt_pct(r.cpu.emulator),
            fmt_pct(Some(r.cpu.loadgen)),
            r.cpu.machine,
            per_rpc(Some(r.cpu.servers), r),
            per_rpc(r.cpu.postgres, r),
            per_rpc(r.cpu.emulator, r),
        );
    }

    md.push_str(
        "\nThe issue's goals, against the direct-SDK server of the same run; the two \
         floor columns are the direct-SDK server with a durable, group-committed line \
         per RPC and, for a Create, a durable claim before the AWS call, on each \
         store, and nothing else:\n\n",
    );
    md.push_str(
        "| goal | PostgreSQL | SQLite | floor, PostgreSQL | floor, SQLite | target |\n\
         |---|---:|---:|---:|---:|---|\n",
    );
    let get = |setup: &str, c: usize| find(rows, setup, "get", c).map(|r| &r.report);
    let both = |f: &dyn Fn(&str) -> Option<f64>| {
        [PG, SQLITE, FLOOR_PG, FLOOR_SQLITE]
            .map(|s| f(s).map_or_else(|| "–".to_owned(), |v| v.to_string()))
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some((a / b * 100.0).round() / 100.0),
        _ => None,
    };
    let mut goal = |name: &str, cells: [String; 4], target: &str| {
        let _ = writeln!(md, "| {name} | {} | {target} |", cells.join(" | "));
    };
    for c in [16, 64] {
        goal(
            &format!("Get rps at c={c} / direct SDK"),
            both(&|s| ratio(get(s, c).map(|r| r.rps), get(DIRECT, c).map(|r| r.rps))),
            ">= 0.7x",
        );
    }
    goal(
        "Get c=1 p50 − direct SDK p50 (ms)",
        both(&|s| {
            Some(get(s, 1)?.p50_ms - get(DIRECT, 1)?.p50_ms).map(|d| (d * 100.0).round() / 100.0)
        }),
        "<= +0.3 ms",
    );
    goal(
        "Get c=64 p99 / direct SDK p99",
        both(&|s| {
            ratio(
                get(s, 64).map(|r| r.p99_ms),
                get(DIRECT, 64).map(|r| r.p99_ms),
            )
        }),
        "<= 2x",
    );
    goal(
        "Create c=16 rps / direct SDK",
        both(&|s| {
            ratio(
                find(rows, s, "create", 16).map(|r| r.report.rps),
                find(rows, DIRECT, "create", 16).map(|r| r.report.rps),
            )
        }),
        ">= 0.6x",
    );
    goal(
        "Get rps c=64 / c=16",
        both(&|s| ratio(get(s, 64).map(|r| r.rps), get(s, 16).map(|r| r.rps))),
        ">= 1x",
    );
    goal(
        "Get c=256 p99 (ms)",
        both(&|s| get(s, 256).map(|r| (r.p99_ms * 10.0).round() / 10.0)),
        "< 100 ms",
    );
    let replicas = ratio(
        get(PG_THREE, 64).map(|r| r.rps),
        get(PG_ONE, 64).map(|r| r.rps),
    );
    goal(
        "Get c=64 rps, 3 replicas / 1 replica",
        [
            replicas.map_or_else(|| "–".to_owned(), |v| v.to_string()),
            "–".to_owned(),
            "–".to_owned(),
            "–".to_owned(),
        ],
        ">= 1x",
    );
    md
}

fn rpc_name(rpc: &str) -> &'static str {
    match rpc {
        "get" => "GetAccountLink",
        "create" => "CreateAccountLinkInvitation",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_backend_titles() {
        let stat = "42 (tokio (x) y) S 1 42 42 0 -1 4194304 10 0 0 0 7 3 0 0 20 0 2 0 100";
        assert_eq!(stat_ticks(stat), Some(10));
        assert_eq!(
            backend_database("postgres: 15/main: postgres bench_x 127.0.0.1(4000) idle "),
            Some("bench_x")
        );
        assert_eq!(
            backend_database("postgres: postgres other [local] idle"),
            Some("other")
        );
        assert_eq!(backend_database("postgres: 15/main: walwriter "), None);
        assert_eq!(backend_database("postgres: checkpointer "), None);
        assert_eq!(
            backend_database("/usr/lib/postgresql/15/bin/postgres -D x"),
            None
        );
    }
}
