//! `account-link-service`: parses the command line, starts logging and runs
//! the chosen subcommand (`serve`, `emulator`, `migrate`).

use account_link_service::audit::{self, checkpoint};
use account_link_service::config::DatabaseArgs;
use account_link_service::config::{AuditCommand, Cli, Command};
use account_link_service::emulator::Emulator;
use account_link_service::startup::{self, Application, shutdown_signal};
use account_link_service::store::{AnyStore, DEFAULT_CHAIN, Store};
use account_link_service::telemetry;
use anyhow::Context;
use clap::Parser;

/// The global allocator: mimalloc. The service allocates and frees many
/// small buffers per RPC (HTTP/2 frames, the AWS SDK's request pipeline,
/// JSON); glibc's malloc took about 16 % of the service's CPU in a
/// GetAccountLink profile, and mimalloc cut the CPU per RPC by about 15 %
/// (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Opens the existing store of `--database-url` / `--data-dir` for an
/// `audit` command (migrated if older; never created: verifying a store
/// created empty on the spot would report a healthy, empty trail).
async fn open(database: &DatabaseArgs) -> anyhow::Result<AnyStore> {
    AnyStore::open(database, 2, false)
        .await
        .context("cannot open the database")
}

/// Prints a chain verdict; exits 1 when the chain is broken.
fn report(verdict: Result<audit::VerifyReport, audit::Break>) {
    match verdict {
        Ok(report) => println!("{report}"),
        Err(broken) => {
            println!("{broken}");
            std::process::exit(1);
        }
    }
}

async fn run_audit(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify(args) => {
            let store = open(&args.database).await?;
            if let (Some(path), Some(key)) = (&args.checkpoint, &args.public_key) {
                let checkpoint = checkpoint::read_checkpoint(path)?;
                let key = checkpoint::read_public_key(key)?;
                report(audit::verify_checkpoint(&store, &checkpoint, &key).await?);
            } else {
                report(audit::verify(&store, DEFAULT_CHAIN, args.from, args.to).await?);
            }
        }
        AuditCommand::Checkpoint(args) => {
            let store = open(&args.database).await?;
            let key = checkpoint::read_signing_key(&args.signing_key)?;
            let previous = args
                .previous
                .as_deref()
                .map(checkpoint::read_checkpoint)
                .transpose()?;
            match audit::create_checkpoint(&store, DEFAULT_CHAIN, &key, previous.as_ref()).await? {
                Ok(cp) => {
                    let text = serde_json::to_string_pretty(&cp)? + "\n";
                    match &args.out {
                        Some(path) => std::fs::write(path, text)
                            .with_context(|| format!("cannot write {}", path.display()))?,
                        None => print!("{text}"),
                    }
                }
                Err(broken) => {
                    println!("not signed: {broken}");
                    std::process::exit(1);
                }
            }
        }
        AuditCommand::Keygen(args) => {
            let (seed, public) = checkpoint::generate_key()?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(&args.out)
                .with_context(|| format!("cannot create {}", args.out.display()))?;
            std::io::Write::write_all(&mut file, seed.as_bytes())?;
            println!("{public}");
        }
        AuditCommand::Export(args) => {
            let store = open(&args.database).await?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let n = audit::export_jsonl(&store, DEFAULT_CHAIN, args.since, args.until, &mut out)
                .await?;
            tracing::info!(events = n, "exported");
        }
        AuditCommand::Retain(args) => {
            let store = open(&args.database).await?;
            let key = checkpoint::read_public_key(&args.public_key)?;
            let cutoff = time::OffsetDateTime::now_utc()
                - time::Duration::days(i64::from(args.older_than_days));
            match audit::retain(&store, DEFAULT_CHAIN, &key, cutoff).await? {
                Ok(Some(outcome)) => println!(
                    "deleted {} events through seq {}",
                    outcome.deleted, outcome.to_seq
                ),
                Ok(None) => println!("nothing to delete: no checkpoint older than the cut-off"),
                Err(broken) => {
                    println!("not deleted: {broken}");
                    std::process::exit(1);
                }
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let otlp_endpoint = match &cli.command {
        Command::Serve(args) => args.otlp_endpoint.clone(),
        _ => None,
    };
    let telemetry = telemetry::init(cli.log_format, otlp_endpoint.as_deref())?;
    let result = run(cli.command).await;
    // Exports the spans still buffered (OTLP); nothing to do without it.
    if let Err(e) = telemetry.shutdown().await {
        tracing::warn!(error = %telemetry::error_chain(&e), "trace export at exit failed");
    }
    result
}

/// Runs the chosen subcommand.
async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let app = Application::build(*args).await.context("start-up failed")?;
            app.run_until_stopped(shutdown_signal()).await?;
        }
        Command::Emulator(args) => {
            let listener = tokio::net::TcpListener::bind(args.listen)
                .await
                .with_context(|| format!("cannot bind {}", args.listen))?;
            tracing::info!(addr = %listener.local_addr()?, "workspaces emulator listening");
            Emulator::new().serve(listener, shutdown_signal()).await?;
        }
        Command::HealthCheck(args) => {
            let serving = startup::health_check(&args).await;
            match &serving {
                Ok(true) => println!("SERVING"),
                Ok(false) => println!("NOT_SERVING"),
                Err(e) => println!("unreachable: {e}"),
            }
            if !matches!(serving, Ok(true)) {
                std::process::exit(1);
            }
        }
        Command::Audit(command) => run_audit(command).await?,
        Command::Migrate(args) => {
            let store = AnyStore::open(&args.database, 2, true)
                .await
                .context("migration failed")?;
            tracing::info!(store = store.backend(), "migrations applied");
            store.close().await;
        }
    }
    Ok(())
}
