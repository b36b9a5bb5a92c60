//! The direct-SDK anchor of the throughput benchmark (docs/benchmarks.md,
//! "Service throughput vs its anchors"): a tonic server for
//! `accountlink.v1.AccountLinkService` whose handlers call aws-sdk-workspaces
//! directly, with no validation beyond the account id, no authorization, no
//! client-token dedup, no store and no audit. It is what a team without this
//! service would run, and the yardstick of the issue's goals.
//!
//! - The acting account is the request's `account_id` (12 digits); its SDK
//!   client is built once, on first use, with the emulator's static
//!   credentials (access key id = account id). Every client shares one
//!   SdkConfig and one HTTP client, hence one connection pool.
//! - `CreateAccountLinkInvitation` and `GetAccountLink` go to the SDK; the
//!   other four RPCs are UNIMPLEMENTED.
//! - An AWS error becomes a gRPC status by its code (ResourceNotFound ->
//!   NOT_FOUND, Validation -> INVALID_ARGUMENT, AccessDenied ->
//!   PERMISSION_DENIED, Conflict -> ALREADY_EXISTS, Throttling ->
//!   UNAVAILABLE, anything else -> INTERNAL).
//!
//! - With `--durable-log <url>` it is the floor of a durable audit instead:
//!   every answer, OK or not, first waits until one line about it (a JSON
//!   object of the method, the account, the link and the outcome, about 100
//!   bytes) has been committed to a table with nothing but an integer
//!   primary key. Lines go to one writer task over a channel; the writer
//!   drains whatever is queued (at most 256, no wait), inserts them with one
//!   statement on its own connection in autocommit (PostgreSQL:
//!   `insert … select … from unnest($1)`, `synchronous_commit` as the server
//!   has it; a `sqlite:` URL: `insert … select … from json_each($1)` into a
//!   file in WAL mode with `synchronous=FULL`, as the service opens its own),
//!   and answers the batch after that commit. A failed batch answers
//!   UNAVAILABLE. No hash chain, no
//!   other index, no trigger, no dedup: what any durable record of each RPC,
//!   group-committed, costs on this machine (docs/benchmarks.md).
//! - With `--durable-claims` as well, `CreateAccountLinkInvitation` first
//!   waits until a claim of its client token (the account and the token, one
//!   `text` primary key) has been committed to a second table by a second
//!   writer of the same kind (`insert … on conflict do nothing`), and only
//!   then calls AWS (on SQLite the two writers' connections take turns at
//!   the file's one write lock, under sqlx's default 5 s busy timeout): the
//!   floor of DESIGN.md §5's phase 1, which must be
//!   durable before the AWS call, so that a crash between the two cannot
//!   apply a change twice. No fingerprint, lease, replay or completion: a
//!   token already claimed goes on to AWS as a fresh one would.
//!
//! ```sh
//! account-link-service emulator --listen 127.0.0.1:4566 &
//! cargo run --release --example direct_sdk_server -- --listen 127.0.0.1:50062 \
//!     --endpoint-url http://127.0.0.1:4566
//! ```

#[path = "throughput/anchor.rs"]
mod anchor;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::RwLock;

use account_link_service::proto::pb;
use account_link_service::proto::pb::account_link_service_server::AccountLinkService;
use account_link_service::upstream::DEV_SECRET_ACCESS_KEY;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_workspaces::Client;
use aws_sdk_workspaces::error::ProvideErrorMetadata;
use clap::Parser;
use tonic::{Request, Response, Status};

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:50062")]
    listen: SocketAddr,
    /// The WorkSpaces endpoint: a running `account-link-service emulator`.
    #[arg(long, default_value = "http://127.0.0.1:4566")]
    endpoint_url: String,
    /// AWS Region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Commit one line per RPC to this database before answering (see the
    /// module docs): a PostgreSQL URL, or `sqlite://FILE?mode=rwc` for a
    /// SQLite file; the table `durable_log` is created if missing.
    #[arg(long)]
    durable_log: Option<String>,
    /// With `--durable-log`: commit a claim of each Create's client token to
    /// the same database before its AWS call (see the module docs); the
    /// table `durable_claim` is created if missing.
    #[arg(long, requires = "durable_log")]
    durable_claims: bool,
}

/// Most lines one batch of the durable log commits.
const LOG_BATCH: usize = 256;

/// One line for the durable log and the waiter its commit answers.
type LogLine = (String, tokio::sync::oneshot::Sender<bool>);

/// The durable log's table: its DDL and its batch insert, for PostgreSQL
/// (the lines as `$1::text[]`) and for SQLite (the lines as a JSON array).
const LOG_TABLE: Table = Table {
    postgres: Statements {
        create: "create table if not exists durable_log \
                 (seq bigserial primary key, line text not null)",
        insert: "insert into durable_log (line) select unnest($1::text[])",
    },
    sqlite: Statements {
        create: "create table if not exists durable_log \
                 (seq integer primary key, line text not null)",
        insert: "insert into durable_log (line) select value from json_each($1)",
    },
};

/// The durable claims' table, likewise.
const CLAIM_TABLE: Table = Table {
    postgres: Statements {
        create: "create table if not exists durable_claim (key text primary key)",
        insert: "insert into durable_claim (key) select unnest($1::text[]) \
                 on conflict do nothing",
    },
    sqlite: Statements {
        create: "create table if not exists durable_claim (key text primary key)",
        insert: "insert or ignore into durable_claim (key) select value from json_each($1)",
    },
};

/// A table of lines: its statements per database.
#[derive(Debug, Clone, Copy)]
struct Table {
    postgres: Statements,
    sqlite: Statements,
}

/// A table's DDL and its batch insert on one database.
#[derive(Debug, Clone, Copy)]
struct Statements {
    create: &'static str,
    insert: &'static str,
}

/// The writer's own connection.
enum Sink {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Sink {
    /// Opens `url`: a `sqlite:` URL is a file in WAL mode with
    /// `synchronous=FULL`, as the service opens its own (every commit is
    /// flushed); anything else is PostgreSQL.
    async fn open(url: &str) -> anyhow::Result<Self> {
        use sqlx::Connection;
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
        Ok(if url.starts_with("sqlite:") {
            let options: SqliteConnectOptions = url.parse()?;
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full);
            Self::Sqlite(sqlx::SqliteConnection::connect_with(&options).await?)
        } else {
            Self::Postgres(sqlx::PgConnection::connect(url).await?)
        })
    }

    /// Runs `table`'s DDL.
    async fn create(&mut self, table: Table) -> sqlx::Result<()> {
        match self {
            Self::Postgres(conn) => {
                sqlx::query(table.postgres.create).execute(conn).await?;
            }
            Self::Sqlite(conn) => {
                sqlx::query(table.sqlite.create).execute(conn).await?;
            }
        }
        Ok(())
    }

    /// Inserts `lines` into `table` with one statement in autocommit: one
    /// transaction, one commit.
    async fn insert(&mut self, table: Table, lines: &[String]) -> anyhow::Result<()> {
        match self {
            Self::Postgres(conn) => {
                sqlx::query(table.postgres.insert)
                    .bind(lines)
                    .execute(conn)
                    .await?;
            }
            Self::Sqlite(conn) => {
                sqlx::query(table.sqlite.insert)
                    .bind(serde_json::to_string(lines)?)
                    .execute(conn)
                    .await?;
            }
        }
        Ok(())
    }
}

/// The sending side of a group-commit writer of lines (see the module docs).
#[derive(Debug, Clone)]
struct DurableLog(tokio::sync::mpsc::Sender<LogLine>);

impl DurableLog {
    /// Connects to `url`, creates `table` and starts the writer task.
    async fn start(url: &str, table: Table) -> anyhow::Result<Self> {
        let mut sink = Sink::open(url).await?;
        sink.create(table).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<LogLine>(4 * LOG_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(LOG_BATCH);
            while rx.recv_many(&mut batch, LOG_BATCH).await > 0 {
                let (lines, waiters): (Vec<String>, Vec<_>) = batch.drain(..).unzip();
                let ok = sink.insert(table, &lines).await.is_ok();
                for waiter in waiters {
                    let _ = waiter.send(ok);
                }
            }
        });
        Ok(Self(tx))
    }

    /// Waits until `line` is committed; UNAVAILABLE when its batch failed.
    async fn record(&self, line: String) -> Result<(), Status> {
        let (done, committed) = tokio::sync::oneshot::channel();
        let unavailable = || Status::unavailable("the durable log is unavailable");
        self.0.send((line, done)).await.map_err(|_| unavailable())?;
        match committed.await {
            Ok(true) => Ok(()),
            _ => Err(unavailable()),
        }
    }
}

/// The handlers: one SDK client per acting account over one shared config.
#[derive(Debug)]
struct DirectSdk {
    base: SdkConfig,
    clients: RwLock<HashMap<String, Client>>,
    log: Option<DurableLog>,
    claims: Option<DurableLog>,
}

impl DirectSdk {
    /// The SDK client of `account` (12 digits), built on first use.
    fn client(&self, account: &str) -> Result<Client, Status> {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Status::invalid_argument("account_id must be 12 digits"));
        }
        if let Some(client) = self
            .clients
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(account)
        {
            return Ok(client.clone());
        }
        let config = aws_sdk_workspaces::config::Builder::from(&self.base)
            .credentials_provider(Credentials::new(
                account,
                DEV_SECRET_ACCESS_KEY,
                None,
                None,
                "direct-sdk-server",
            ))
            .build();
        let client = Client::from_conf(config);
        Ok(self
            .clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(account.to_owned())
            .or_insert(client)
            .clone())
    }

    /// With `--durable-log`, commits a line about the answer `result` to
    /// `method` before it is returned.
    async fn logged<T>(
        &self,
        method: &str,
        account: &str,
        subject: &str,
        result: Result<T, Status>,
    ) -> Result<T, Status> {
        if let Some(log) = &self.log {
            let outcome = match &result {
                Ok(_) => "OK".to_owned(),
                Err(status) => format!("{:?}: {}", status.code(), status.message()),
            };
            let line = serde_json::json!({
                "method": method,
                "account_id": account,
                "subject": subject,
                "outcome": outcome,
            });
            log.record(line.to_string()).await?;
        }
        result
    }
}

/// The gRPC status of an AWS error, by its error code.
fn status<E: ProvideErrorMetadata + std::fmt::Debug>(error: E) -> Status {
    let message = error.message().unwrap_or("aws error").to_owned();
    match error.code() {
        Some("ResourceNotFoundException") => Status::not_found(message),
        Some("ValidationException") => Status::invalid_argument(message),
        Some("AccessDeniedException") => Status::permission_denied(message),
        Some("ConflictException") => Status::already_exists(message),
        Some("ThrottlingException") => Status::unavailable(message),
        _ => Status::internal(format!("{error:?}")),
    }
}

/// Our proto's link from the SDK's.
fn to_pb(link: Option<&aws_sdk_workspaces::types::AccountLink>) -> Option<pb::AccountLink> {
    use aws_sdk_workspaces::types::AccountLinkStatusEnum as Aws;
    let link = link?;
    let status = match link.account_link_status() {
        Some(Aws::Linked) => pb::AccountLinkStatus::Linked,
        Some(Aws::LinkingFailed) => pb::AccountLinkStatus::LinkingFailed,
        Some(Aws::LinkNotFound) => pb::AccountLinkStatus::LinkNotFound,
        Some(Aws::PendingAcceptanceByTargetAccount) => {
            pb::AccountLinkStatus::PendingAcceptanceByTargetAccount
        }
        Some(Aws::Rejected) => pb::AccountLinkStatus::Rejected,
        _ => pb::AccountLinkStatus::Unspecified,
    };
    Some(pb::AccountLink {
        account_link_id: link.account_link_id().unwrap_or_default().to_owned(),
        account_link_status: status.into(),
        source_account_id: link.source_account_id().unwrap_or_default().to_owned(),
        target_account_id: link.target_account_id().unwrap_or_default().to_owned(),
    })
}

#[tonic::async_trait]
impl AccountLinkService for DirectSdk {
    async fn create_account_link_invitation(
        &self,
        request: Request<pb::CreateAccountLinkInvitationRequest>,
    ) -> Result<Response<pb::CreateAccountLinkInvitationResponse>, Status> {
        let request = request.into_inner();
        let account = request.account_id.clone();
        let target = request.target_account_id.clone();
        let result = async {
            let client = self.client(&request.account_id)?;
            let client_token = if request.client_token.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                request.client_token
            };
            if let Some(claims) = &self.claims {
                claims.record(format!("{account}/{client_token}")).await?;
            }
            let output = client
                .create_account_link_invitation()
                .target_account_id(request.target_account_id)
                .client_token(&client_token)
                .send()
                .await
                .map_err(|e| status(e.into_service_error()))?;
            Ok(Response::new(pb::CreateAccountLinkInvitationResponse {
                account_link: to_pb(output.account_link()),
                client_token,
            }))
        }
        .await;
        self.logged("CreateAccountLinkInvitation", &account, &target, result)
            .await
    }

    async fn accept_account_link_invitation(
        &self,
        _request: Request<pb::AcceptAccountLinkInvitationRequest>,
    ) -> Result<Response<pb::AcceptAccountLinkInvitationResponse>, Status> {
        Err(Status::unimplemented("not part of the benchmark"))
    }

    async fn reject_account_link_invitation(
        &self,
        _request: Request<pb::RejectAccountLinkInvitationRequest>,
    ) -> Result<Response<pb::RejectAccountLinkInvitationResponse>, Status> {
        Err(Status::unimplemented("not part of the benchmark"))
    }

    async fn delete_account_link_invitation(
        &self,
        _request: Request<pb::DeleteAccountLinkInvitationRequest>,
    ) -> Result<Response<pb::DeleteAccountLinkInvitationResponse>, Status> {
        Err(Status::unimplemented("not part of the benchmark"))
    }

    async fn get_account_link(
        &self,
        request: Request<pb::GetAccountLinkRequest>,
    ) -> Result<Response<pb::GetAccountLinkResponse>, Status> {
        let request = request.into_inner();
        let account = request.account_id.clone();
        let link = request.link_id.clone();
        let result = async {
            let client = self.client(&request.account_id)?;
            let non_empty = |s: String| (!s.is_empty()).then_some(s);
            let output = client
                .get_account_link()
                .set_link_id(non_empty(request.link_id))
                .set_linked_account_id(non_empty(request.linked_account_id))
                .send()
                .await
                .map_err(|e| status(e.into_service_error()))?;
            Ok(Response::new(pb::GetAccountLinkResponse {
                account_link: to_pb(output.account_link()),
            }))
        }
        .await;
        self.logged("GetAccountLink", &account, &link, result).await
    }

    async fn list_account_links(
        &self,
        _request: Request<pb::ListAccountLinksRequest>,
    ) -> Result<Response<pb::ListAccountLinksResponse>, Status> {
        Err(Status::unimplemented("not part of the benchmark"))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One HTTP client (one connection pool) for every account's SDK client;
    // without it each `Client` would build its own.
    let http_client = aws_smithy_http_client::Builder::new().build_http();
    let base = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(args.region))
        .endpoint_url(&args.endpoint_url)
        .http_client(http_client)
        .credentials_provider(Credentials::new(
            "000000000000",
            DEV_SECRET_ACCESS_KEY,
            None,
            None,
            "direct-sdk-server",
        ))
        .load()
        .await;
    let log = match &args.durable_log {
        Some(url) => Some(DurableLog::start(url, LOG_TABLE).await?),
        None => None,
    };
    let claims = match (&args.durable_log, args.durable_claims) {
        (Some(url), true) => Some(DurableLog::start(url, CLAIM_TABLE).await?),
        _ => None,
    };
    let service = DirectSdk {
        base,
        clients: RwLock::new(HashMap::new()),
        log,
        claims,
    };
    anchor::serve(args.listen, service, "direct sdk server").await
}
