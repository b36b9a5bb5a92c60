//! `spawn_app`: the real server on 127.0.0.1:0 with its own database and
//! its own emulator, and a generated tonic client over a socket (zero2prod).
//! The database is of the test binary's backend ([`crate::BACKEND`]): a
//! fresh PostgreSQL database, or a fresh SQLite file.

use std::net::SocketAddr;

use account_link_service::config::ServeArgs;
use account_link_service::emulator::{CallRecord, Emulator, Fault, FaultKind, RunningEmulator};
use account_link_service::proto::pb;
use account_link_service::proto::pb::account_link_service_client::AccountLinkServiceClient;
use account_link_service::startup::{Application, StartupError};
use account_link_service::store::{AnyStore, DEFAULT_CHAIN, Store};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub(crate) const SOURCE: &str = "111111111111";
pub(crate) const TARGET: &str = "222222222222";
pub(crate) const OTHER: &str = "333333333333";

/// The store backend an end-to-end binary runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code, reason = "each test binary constructs one variant")]
pub(crate) enum Backend {
    /// A fresh database on the server of `TEST_DATABASE_URL`.
    Postgres,
    /// A fresh file under the system temp dir.
    Sqlite,
}

/// The URL of a database no other test uses, on this binary's backend
/// (created on first connect).
pub(crate) fn fresh_database_url() -> String {
    match crate::BACKEND {
        Backend::Postgres => format!(
            "{}/{}",
            crate::test_database::database_server_url(),
            crate::test_database::fresh_database_name()
        ),
        Backend::Sqlite => format!(
            "sqlite://{}",
            std::env::temp_dir()
                .join(format!("als-test-{}", uuid::Uuid::new_v4().simple()))
                .join("account-link.db")
                .display()
        ),
    }
}

/// Every row of `table` as one text line per row (PostgreSQL's row-to-text
/// cast; on SQLite each column `quote()`d), to search stored data for
/// secrets.
pub(crate) async fn rows_as_text(store: &AnyStore, table: &str) -> Vec<String> {
    match store {
        AnyStore::Postgres(pg) => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select t::text from {table} t"
        )))
        .fetch_all(pg.pool())
        .await
        .expect("rows as text"),
        AnyStore::Sqlite(lite) => {
            let columns: Vec<String> = sqlx::query_scalar("select name from pragma_table_info($1)")
                .bind(table)
                .fetch_all(lite.reader())
                .await
                .expect("columns");
            let row = columns
                .iter()
                .map(|c| format!("quote({c})"))
                .collect::<Vec<_>>()
                .join(" || ',' || ");
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select {row} from {table}")))
                .fetch_all(lite.reader())
                .await
                .expect("rows as text")
        }
    }
}

/// Runs one statement of raw SQL (the same text on both backends), as the
/// service's own database user; returns the rows changed.
pub(crate) async fn execute(store: &AnyStore, sql: &str) -> Result<u64, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match store {
        AnyStore::Postgres(pg) => Ok(sqlx::query(sql).execute(pg.pool()).await?.rows_affected()),
        AnyStore::Sqlite(lite) => Ok(sqlx::query(sql)
            .execute(lite.writer())
            .await?
            .rows_affected()),
    }
}

/// One text column of one row (`$1` bound to `bind`, if given), the same
/// SQL text on both backends.
pub(crate) async fn fetch_text(store: &AnyStore, sql: &str, bind: Option<&str>) -> String {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match store {
        AnyStore::Postgres(pg) => {
            let q = sqlx::query_scalar(sql);
            let q = if let Some(b) = bind {
                q.bind(b.to_owned())
            } else {
                q
            };
            q.fetch_one(pg.pool()).await.expect("one text value")
        }
        AnyStore::Sqlite(lite) => {
            let q = sqlx::query_scalar(sql);
            let q = if let Some(b) = bind {
                q.bind(b.to_owned())
            } else {
                q
            };
            q.fetch_one(lite.reader()).await.expect("one text value")
        }
    }
}

/// The `count(*)` of a table, on either backend.
pub(crate) async fn count(store: &AnyStore, table: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(format!("select count(*) from {table}"));
    match store {
        AnyStore::Postgres(pg) => sqlx::query_scalar(sql).fetch_one(pg.pool()).await,
        AnyStore::Sqlite(lite) => sqlx::query_scalar(sql).fetch_one(lite.reader()).await,
    }
    .expect("count")
}

pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    /// The Prometheus listener (`GET /metrics`).
    pub(crate) metrics_addr: SocketAddr,
    pub(crate) client: AccountLinkServiceClient<Channel>,
    pub(crate) emulator: RunningEmulator,
    /// The test's view of the service's store (same database).
    pub(crate) store: AnyStore,
    /// The URL of this test's database.
    pub(crate) database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    pub(crate) server: Option<JoinHandle<Result<(), StartupError>>>,
}

/// One row of `audit_event`, as tests read it.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub(crate) struct AuditRow {
    pub(crate) event_id: uuid::Uuid,
    pub(crate) seq: i64,
    pub(crate) event_time: time::OffsetDateTime,
    pub(crate) method: String,
    pub(crate) read_only: bool,
    pub(crate) principal: String,
    pub(crate) source_ip: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) request_id: String,
    pub(crate) account_id: Option<String>,
    pub(crate) request_parameters: serde_json::Value,
    pub(crate) response_elements: Option<serde_json::Value>,
    pub(crate) grpc_code: String,
    pub(crate) error_reason: Option<String>,
    pub(crate) error_message: Option<String>,
    pub(crate) upstream_request_id: Option<String>,
    pub(crate) upstream_attempts: i32,
    pub(crate) idempotency_outcome: String,
    pub(crate) client_token_sha256: Option<String>,
    pub(crate) duration_us: i64,
    pub(crate) prev_hash: Vec<u8>,
    pub(crate) row_hash: Vec<u8>,
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app; `configure` adjusts the settings (dev mode against this
/// test's emulator, one SDK attempt so faults map one-to-one to calls).
pub(crate) async fn spawn_app_with(configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    spawn(configure, false).await
}

/// Like [`spawn_app_with`] for a TLS listener: `app.client` is not usable
/// (tests build their own TLS clients).
pub(crate) async fn spawn_app_tls(configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    spawn(configure, true).await
}

async fn spawn(configure: impl FnOnce(&mut ServeArgs), tls: bool) -> TestApp {
    let emulator = Emulator::new().spawn().await.expect("emulator starts");
    let url = fresh_database_url();
    let mut args = ServeArgs::with_database_url(&url);
    args.listen = "127.0.0.1:0".parse().unwrap();
    args.dev = true;
    args.aws_endpoint_url = Some(emulator.endpoint_url());
    args.aws_region = Some("us-east-1".into());
    args.aws_max_attempts = 1;
    args.upstream_timeout_secs = 5;
    args.shutdown_grace_secs = 10;
    // Tests make bursts of calls; the rate-limit test sets its own.
    args.upstream_rate_per_sec = Some(10_000);
    args.upstream_burst = Some(10_000);
    args.metrics_listen = "127.0.0.1:0".parse().unwrap();
    configure(&mut args);
    let url = args
        .database
        .database_url
        .clone()
        .expect("tests name their database");
    let app = Application::build(args).await.expect("app builds");
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let client = if tls {
        // A lazy plaintext channel that is never used.
        AccountLinkServiceClient::new(
            Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect_lazy(),
        )
    } else {
        AccountLinkServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("client connects")
    };
    let store = AnyStore::connect(&url, 4)
        .await
        .expect("test store connects");
    TestApp {
        database_url: url.clone(),
        addr,
        metrics_addr,
        client,
        emulator,
        store,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    pub(crate) fn emu(&self) -> &Emulator {
        self.emulator.emulator()
    }

    pub(crate) fn calls(&self) -> Vec<CallRecord> {
        self.emu().calls()
    }

    pub(crate) fn fault(&self, kind: FaultKind, count: u32) {
        self.emu().inject_fault(Fault::new(kind, count));
    }

    /// Signals shutdown and waits for the server to stop.
    pub(crate) async fn stop(&mut self) -> Result<(), StartupError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.server
            .take()
            .expect("running")
            .await
            .expect("server task")
    }

    /// Every audit event, in `seq` order.
    pub(crate) async fn audit_events(&self) -> Vec<AuditRow> {
        audit_events_of(&self.store).await
    }

    pub(crate) async fn create(
        &self,
        account: &str,
        target: &str,
        token: &str,
    ) -> Result<pb::CreateAccountLinkInvitationResponse, Status> {
        self.client
            .clone()
            .create_account_link_invitation(pb::CreateAccountLinkInvitationRequest {
                account_id: account.into(),
                target_account_id: target.into(),
                client_token: token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub(crate) async fn accept(
        &self,
        account: &str,
        link_id: &str,
        token: &str,
    ) -> Result<pb::AcceptAccountLinkInvitationResponse, Status> {
        self.client
            .clone()
            .accept_account_link_invitation(pb::AcceptAccountLinkInvitationRequest {
                account_id: account.into(),
                link_id: link_id.into(),
                client_token: token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub(crate) async fn reject(
        &self,
        account: &str,
        link_id: &str,
        token: &str,
    ) -> Result<pb::RejectAccountLinkInvitationResponse, Status> {
        self.client
            .clone()
            .reject_account_link_invitation(pb::RejectAccountLinkInvitationRequest {
                account_id: account.into(),
                link_id: link_id.into(),
                client_token: token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub(crate) async fn delete(
        &self,
        account: &str,
        link_id: &str,
        token: &str,
    ) -> Result<pb::DeleteAccountLinkInvitationResponse, Status> {
        self.client
            .clone()
            .delete_account_link_invitation(pb::DeleteAccountLinkInvitationRequest {
                account_id: account.into(),
                link_id: link_id.into(),
                client_token: token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub(crate) async fn get(
        &self,
        account: &str,
        link_id: &str,
    ) -> Result<pb::AccountLink, Status> {
        self.client
            .clone()
            .get_account_link(pb::GetAccountLinkRequest {
                account_id: account.into(),
                link_id: link_id.into(),
                linked_account_id: String::new(),
            })
            .await
            .map(|r| r.into_inner().account_link.expect("account_link set"))
    }

    pub(crate) async fn list(
        &self,
        account: &str,
        filter: &[pb::AccountLinkStatus],
        page_size: i32,
        page_token: &str,
    ) -> Result<pb::ListAccountLinksResponse, Status> {
        self.client
            .clone()
            .list_account_links(pb::ListAccountLinksRequest {
                account_id: account.into(),
                link_status_filter: filter.iter().map(|s| *s as i32).collect(),
                page_size,
                page_token: page_token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Every link visible to `account` with `filter`, following page tokens.
    pub(crate) async fn list_all(
        &self,
        account: &str,
        filter: &[pb::AccountLinkStatus],
        page_size: i32,
    ) -> (Vec<pb::AccountLink>, usize) {
        let mut links = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = self
                .list(account, filter, page_size, &token)
                .await
                .expect("list page");
            pages += 1;
            links.extend(page.account_links);
            if page.next_page_token.is_empty() {
                return (links, pages);
            }
            token = page.next_page_token;
            assert!(pages < 100, "paging does not end");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // A SQLite test's directory goes with it (open files stay valid
        // until the server lets go of them).
        if let Some(path) = self.database_url.strip_prefix("sqlite://")
            && let Some(dir) = std::path::Path::new(path).parent()
            && dir
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("als-test-"))
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Every audit event of `store`, in `seq` order.
pub(crate) async fn audit_events_of(store: &AnyStore) -> Vec<AuditRow> {
    use tokio_stream::StreamExt;
    let rows: Vec<_> = store
        .audit_rows_between(DEFAULT_CHAIN, 1, i64::MAX)
        .collect()
        .await;
    rows.into_iter()
        .map(|row| {
            let row = row.expect("audit row");
            let e = row.event;
            AuditRow {
                event_id: e.event_id,
                seq: row.seq,
                event_time: e.event_time,
                method: e.method,
                read_only: e.read_only,
                principal: e.principal,
                source_ip: e.source_ip,
                user_agent: e.user_agent,
                request_id: e.request_id,
                account_id: e.account_id,
                request_parameters: e.request_parameters,
                response_elements: e.response_elements,
                grpc_code: e.grpc_code,
                error_reason: e.error_reason,
                error_message: e.error_message,
                upstream_request_id: e.upstream_request_id,
                upstream_attempts: i32::try_from(e.upstream_attempts).unwrap(),
                idempotency_outcome: e.idempotency_outcome.as_str().to_owned(),
                client_token_sha256: e.client_token_sha256,
                duration_us: i64::try_from(e.duration_us).unwrap(),
                prev_hash: row.prev_hash,
                row_hash: row.row_hash,
            }
        })
        .collect()
}

/// The first audit event of `app` that `matches`, waiting for it (a
/// bounded poll of the store, for events written by background tasks such
/// as the completer); panics after `within`.
pub(crate) async fn wait_for_audit(
    app: &TestApp,
    within: std::time::Duration,
    matches: impl Fn(&AuditRow) -> bool,
) -> AuditRow {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        use tokio_stream::StreamExt;
        // The store may be unreachable for a while (outage tests).
        let rows: Vec<_> = app
            .store
            .audit_rows_between(DEFAULT_CHAIN, 1, i64::MAX)
            .collect()
            .await;
        if rows.iter().all(Result::is_ok) {
            let found = audit_events_of(&app.store)
                .await
                .into_iter()
                .find(|e| matches(e));
            if let Some(found) = found {
                return found;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no matching audit event within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The rich details of `status`, asserting its code first.
pub(crate) fn details(status: &Status, code: Code) -> ErrorDetails {
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    status.check_error_details().expect("details decode")
}

/// The `ErrorInfo.reason` of `status`.
pub(crate) fn reason(status: &Status) -> String {
    let details = status.check_error_details().expect("details decode");
    let info = details.error_info().expect("ErrorInfo present");
    assert_eq!(info.domain, "accountlink.v1");
    info.reason.clone()
}

/// The `BadRequest` field names of `status`.
pub(crate) fn violated_fields(status: &Status) -> Vec<String> {
    let details = details(status, Code::InvalidArgument);
    details
        .bad_request()
        .expect("BadRequest present")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}

/// The operations the emulator saw, in order.
pub(crate) fn operations(calls: &[CallRecord]) -> Vec<String> {
    calls.iter().map(|c| c.operation.clone()).collect()
}

/// Writes `contents` to a fresh file under the system temp dir and returns
/// its path (the config file of one test).
pub(crate) fn write_temp(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("als-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write temp file");
    path
}

/// Lowercase hex SHA-256, as `[[auth.tokens]]` holds bearer tokens.
pub(crate) fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// A request carrying `authorization: Bearer <token>`.
pub(crate) fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    request
}

/// The gRPC status (code, message) of one unary call sent raw over HTTP/2
/// to `path` (not through a generated client), for hostile-input tests.
pub(crate) async fn raw_grpc_call(app: &TestApp, path: &str, body: bytes::Bytes) -> (Code, String) {
    let status = raw_grpc_status(app, path, &[], body).await;
    (status.code(), status.message().to_owned())
}

/// One unary call sent raw over HTTP/2 to `path` with the extra request
/// `headers`, answered as the [`Status`] a client would decode: code,
/// message, rich details (`grpc-status-details-bin`) and, as its
/// metadata, the response headers and trailers together (an OK answer is
/// `Code::Ok`).
pub(crate) async fn raw_grpc_status(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
    body: bytes::Bytes,
) -> Status {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let mut request = http::Request::post(format!("http://{}{path}", app.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(http_body_util::Full::new(body)).unwrap();
    let response = client.request(request).await.expect("an http answer");
    assert_eq!(response.status(), 200);
    let (parts, body) = response.into_parts();
    let collected = http_body_util::BodyExt::collect(body).await.expect("body");
    let mut all = parts.headers;
    all.extend(collected.trailers().cloned().unwrap_or_default());
    let status = Status::from_header_map(&all).expect("grpc-status");
    Status::with_details_and_metadata(
        status.code(),
        status.message().to_owned(),
        status.details().to_vec().into(),
        tonic::metadata::MetadataMap::from_headers(all),
    )
}
