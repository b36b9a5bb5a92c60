//! `account-link-service`: parses the command line, starts logging and runs
//! the chosen subcommand (`serve`, `emulator`, `migrate`).

use account_link_service::config::{Cli, Command};
use account_link_service::emulator::Emulator;
use account_link_service::startup::{Application, shutdown_signal};
use account_link_service::store::PgStore;
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
        Command::Migrate(args) => {
            PgStore::connect(&args.database_url, 2)
                .await
                .context("migration failed")?;
            tracing::info!("migrations applied");
        }
    }
    Ok(())
}
