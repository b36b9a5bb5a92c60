//! Persistence: client-token dedup records (DESIGN §5) and the audit trail
//! (DESIGN §6) in PostgreSQL through sqlx.
//!
//! Queries are small functions over a `&mut PgConnection` inside a
//! transaction the caller commits (zero2prod). No transaction is ever held
//! across an upstream call: phase 1 ([`PgStore::claim`]) and phase 3
//! ([`PgStore::complete`]) are separate transactions (Brandur's atomic
//! phases). Times come from the caller (UTC), so lease and expiry logic is
//! testable without waiting.

mod audit;
mod audit_query;
mod client_token;
mod postgres;

pub use audit::{
    AuditEvent, DEFAULT_CHAIN, IdempotencyOutcome, StoredAuditEvent, append_audit_event_in,
    audit_rows_between, audit_rows_in_time_range,
};
pub use audit_query::{AuditQuery, explain_list_audit_events, list_audit_events};
pub use client_token::{ClaimOutcome, NewClaim, RecordKey, RecordOutcome, StoredOutcome};
pub use postgres::{MIGRATOR, PgStore};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or did not answer.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}
