//! End-to-end tests: the real server over a socket, the real SDK over HTTP
//! to the emulator, a real PostgreSQL (one database per test).

mod assume_role;
mod audit;
mod audit_chain;
mod audit_events;
mod boto3;
mod client_token;
mod errors;
mod health_db;
mod helpers;
mod hostile;
mod lifecycle;
mod limits;
mod process;
mod security;
mod service;
mod store;
mod validation;
