//! The PostgreSQL databases of the tests: one per test, on the server of
//! `TEST_DATABASE_URL`, named `test_<unix seconds>_<uuid>` so that they can be
//! told apart by age and removed. Included by the test binaries that create
//! them (`#[path = "support/test_database.rs"] mod test_database;`), and by
//! the library's own unit tests that need a database
//! (`store::postgres::batch`).
//!
//! Nothing drops a database when its test ends (a test's store and server
//! are still running then). Instead, the first test of each process that
//! asks for a database drops the test databases more than
//! [`STALE_AFTER_SECS`] old that nobody is connected to (a `drop database`
//! without `force` refuses a database in use), and `.ci/run` drops its own
//! run's databases when the tests have passed. Databases of other names are
//! never touched.

use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Age in seconds after which a test database is taken to be left over: far
/// longer than any one test runs.
pub(crate) const STALE_AFTER_SECS: u64 = 3600;

/// The prefix of the test databases' names.
const PREFIX: &str = "test_";

/// The server of `TEST_DATABASE_URL` (default: the local PostgreSQL), with no
/// database name.
pub(crate) fn database_server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A database name no other test uses, `test_<unix seconds>_<uuid>`. The
/// database is created by whoever connects to it first (the store does).
/// The first call in a process also drops the stale ones (see the module
/// docs); it waits at most 10 s for that.
pub(crate) fn fresh_database_name() -> String {
    static REAP: Once = Once::new();
    REAP.call_once(|| {
        let reaper = reap_stale(&database_server_url(), PREFIX);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !reaper.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    format!("{PREFIX}{}_{}", unix_secs(), uuid::Uuid::new_v4().simple())
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The creation time (unix seconds) of a test database from its name, if it
/// is one.
fn created_at(name: &str, prefix: &str) -> Option<u64> {
    let (secs, uuid) = name.strip_prefix(prefix)?.split_once('_')?;
    (uuid.len() == 32 && uuid.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| secs.parse().ok())
        .flatten()
}

/// Drops the databases of `server` named `<prefix><unix seconds>_<uuid>`
/// (`prefix` is `test_` but in the reaper's own test) older than
/// [`STALE_AFTER_SECS`] that nobody is connected to, on a thread of its own
/// (so it can be started from inside a tokio runtime); join it to wait for
/// the end. Best effort: any failure (the server is down, a database is in
/// use) leaves the databases as they are.
pub(crate) fn reap_stale(server: &str, prefix: &'static str) -> std::thread::JoinHandle<()> {
    let admin = format!("{server}/postgres");
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            use sqlx::Connection as _;
            let connect = sqlx::PgConnection::connect(&admin);
            let Ok(Ok(mut conn)) = tokio::time::timeout(Duration::from_secs(5), connect).await
            else {
                return;
            };
            let Ok(names) = sqlx::query_scalar::<_, String>(
                "select datname from pg_database where starts_with(datname, $1)",
            )
            .bind(prefix)
            .fetch_all(&mut conn)
            .await
            else {
                return;
            };
            let cutoff = unix_secs().saturating_sub(STALE_AFTER_SECS);
            for name in names {
                if created_at(&name, prefix).is_some_and(|at| at < cutoff) {
                    // `name` matched `<prefix><digits>_<32 hex digits>` above.
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "drop database if exists \"{name}\""
                    )))
                    .execute(&mut conn)
                    .await;
                }
            }
        });
    })
}
