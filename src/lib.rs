//! # account-link-service
//!
//! A gRPC front for the Amazon WorkSpaces account-link API (BYOL account
//! linking): Create/Accept/Reject/Delete invitation, GetAccountLink and
//! ListAccountLinks. It validates every request, de-duplicates mutations by
//! client token, calls AWS through `aws-sdk-workspaces`, and records an
//! audit event for every RPC in its store (an embedded SQLite file by
//! default, PostgreSQL in production) before answering.
//!
//! ## Layout
//! - [`audit`] — the audit hash chain: canonical encoding, verification.
//! - [`auth`] — authentication (bearer tokens, mTLS) and the caller policy.
//! - [`config`] — command line (clap) and the TOML file of acting accounts.
//! - [`startup`] — [`startup::Application`] builds and runs the server
//!   (health, reflection, the API, background tasks, graceful shutdown).
//! - [`proto`] — the generated `accountlink.v1` code (`pb`) and descriptors.
//! - [`domain`] — validated newtypes (`AccountId`, `LinkId`, `ClientToken`…)
//!   and the request fingerprint.
//! - [`grpc`] — the service: validation, dedup phases, audit, answers, and
//!   the completer that finishes records whose driver went away.
//! - [`upstream`] — the [`upstream::Upstream`] trait and the SDK adapter,
//!   with AWS error classification.
//! - [`store`] — the [`store::Store`] trait over PostgreSQL and SQLite:
//!   client-token records and the audit trail.
//! - [`emulator`] — a local WorkSpaces account-link emulator (AWS JSON 1.1).
//! - [`metrics`] — Prometheus metrics and their `/metrics` listener.
//! - [`error`] — [`error::ApiError`] and its mapping to `tonic::Status`.
//! - [`telemetry`] — logging and the optional OTLP trace export (feature `otlp`).

pub mod audit;
pub mod auth;
pub mod config;
pub mod domain;
pub mod emulator;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod proto;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod upstream;
