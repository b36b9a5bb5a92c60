//! `account-link-service`: parses the command line, starts logging and runs
//! the chosen subcommand (`serve`, `emulator`, `migrate`).

use account_link_service::audit;
use account_link_service::config::{AuditCommand, Cli, Command};
use account_link_service::emulator::Emulator;
use account_link_service::startup::{self, Application, shutdown_signal};
use account_link_service::store::{DEFAULT_CHAIN, PgStore};
use account_link_service::telemetry;
use anyhow::Context;
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match cli.command {
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
        Command::Audit(AuditCommand::Verify(args)) => {
            let store = PgStore::connect(&args.database_url, 2)
                .await
                .context("database")?;
            let verdict = audit::verify(store.pool(), DEFAULT_CHAIN, args.from, args.to)
                .await
                .context("reading the audit trail")?;
            match verdict {
                Ok(report) => println!("{report}"),
                Err(broken) => {
                    println!("{broken}");
                    std::process::exit(1);
                }
            }
        }
        Command::Migrate(args) => {
            PgStore::connect(&args.database_url, 2)
                .await
                .context("migration failed")?;
            tracing::info!("migrations applied");
        }
    }
    Ok(())
}
