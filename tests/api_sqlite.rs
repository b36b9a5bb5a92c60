//! End-to-end tests on the embedded SQLite store: the same test sources as
//! `api_postgres.rs` (the real server over a socket, the real SDK over HTTP
//! to the emulator), each test on a fresh SQLite file. `health_db` is not
//! here: a local file has no server to lose.

/// The store backend every test of this binary runs on.
const BACKEND: helpers::Backend = helpers::Backend::Sqlite;

#[path = "api/assume_role.rs"]
mod assume_role;
#[path = "api/audit.rs"]
mod audit;
#[path = "api/audit_chain.rs"]
mod audit_chain;
#[path = "api/audit_events.rs"]
mod audit_events;
#[path = "api/boto3.rs"]
mod boto3;
#[path = "api/client_token.rs"]
mod client_token;
#[path = "api/errors.rs"]
mod errors;
#[path = "api/faults.rs"]
mod faults;
#[path = "api/helpers.rs"]
mod helpers;
#[path = "api/hostile.rs"]
mod hostile;
#[path = "api/huawei_sdk.rs"]
mod huawei_sdk;
#[path = "api/lifecycle.rs"]
mod lifecycle;
#[path = "api/limits.rs"]
mod limits;
#[path = "api/process.rs"]
mod process;
#[path = "api/ram_boto3.rs"]
mod ram_boto3;
#[path = "api/resource_share.rs"]
mod resource_share;
#[path = "api/security.rs"]
mod security;
#[path = "api/service.rs"]
mod service;
#[path = "support/test_database.rs"]
mod test_database;
#[path = "api/validation.rs"]
mod validation;
