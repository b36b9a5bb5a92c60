//! The completer (DESIGN §5; Brandur Leach, "Implementing Stripe-like
//! Idempotency Keys in Postgres", the "completer" process): a background
//! task in every replica that finishes the client-token records whose
//! driver went away, so that every change that reached AWS ends with its
//! audit event whether or not its caller retries.
//!
//! A record is stale when, within its ttl, it is `in_progress` under an
//! expired lease (the driver crashed, or its phase 3 failed because the
//! database was gone), or `retryable` and untouched for
//! [`CompleterSettings::retryable_after`] (its caller did not come back).
//! Each pass:
//!
//! 1. reads the backlog (`accountlink_completer_backlog`, and
//!    `accountlink_completer_unrecoverable` for records claimed before
//!    the canonical request was stored: those are logged and left to their
//!    callers' retries);
//! 2. takes over at most [`CompleterSettings::batch`] stale records in one
//!    atomic update ([`Store::take_over_stale`]) under a fresh lease, so
//!    replicas never drive the same record (as a caller's takeover would,
//!    and a caller arriving meanwhile is told `IDEMPOTENCY_KEY_IN_USE`);
//! 3. re-drives each, at most [`CompleterSettings::rate_per_sec`] starts
//!    per second, through the same phase 2 (the stored upstream
//!    ClientToken, so AWS returns the first outcome and applies nothing
//!    twice) and phase 3 ([`Store::complete`], with its audit event:
//!    principal [`COMPLETER_PRINCIPAL`], idempotency outcome `recovered`).
//!
//! A final outcome completes the record (later retries replay it); a
//! transient one leaves it `retryable` for a later pass or the caller.
//! Counters: `accountlink_completer_recovered_total`,
//! `accountlink_completer_failed_total{reason}`.

use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::Instrument;
use uuid::Uuid;

use super::convert::audit_str;
use super::operation::{Operation, Resource};
use super::{AccountLinkApi, Settled};
use crate::domain::AccountId;
use crate::error::code_name;
use crate::store::{
    AuditEvent, IdempotencyOutcome, RecordKey, RecordOutcome, StaleBacklog, StaleRecord, Store,
    StoreError,
};
use crate::upstream::Upstream;

/// The principal of the completer's audit events.
pub const COMPLETER_PRINCIPAL: &str = "system:completer";

/// How the completer is bounded (`--completer-*`).
#[derive(Debug, Clone)]
pub struct CompleterSettings {
    /// Time between passes.
    pub interval: Duration,
    /// Most records taken over per pass.
    pub batch: u32,
    /// Most re-drives started per second (they share the per-account
    /// upstream rate limit with callers' calls).
    pub rate_per_sec: u32,
    /// How long a `retryable` record is left to its caller before the
    /// completer takes it (the service uses the client-token lease).
    pub retryable_after: Duration,
}

/// What one completer pass saw and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompleterPass {
    /// The backlog at the start of the pass.
    pub backlog: StaleBacklog,
    /// How many records it took over and re-drove.
    pub redriven: usize,
}

/// Every `reason` of `accountlink_completer_failed_total`.
const FAILURE_REASONS: [&str; 5] = [
    "upstream",
    "database",
    "lease_lost",
    "unreadable",
    "account",
];

/// Exports the completer's counters at zero, so that rates and alerts over
/// them have a series from the start (Prometheus practice: initialize
/// metrics with known labels), not only after the first recovery or
/// failure.
fn initialize_counters() {
    metrics::counter!(crate::metrics::COMPLETER_RECOVERED).absolute(0);
    for reason in FAILURE_REASONS {
        metrics::counter!(crate::metrics::COMPLETER_FAILED, "reason" => reason).absolute(0);
    }
}

/// Counts a re-drive that did not complete its record.
fn failed(reason: &'static str) {
    debug_assert!(FAILURE_REASONS.contains(&reason), "{reason}");
    metrics::counter!(crate::metrics::COMPLETER_FAILED, "reason" => reason).increment(1);
}

impl<U: Upstream> AccountLinkApi<U> {
    /// Runs the completer every `settings.interval` until the task is
    /// aborted (at shutdown; re-drives already started are RPC tasks and
    /// are waited for). Passes are skipped while the health probe sees the
    /// database down.
    pub async fn run_completer(self, settings: CompleterSettings) {
        initialize_counters();
        let mut interval = tokio::time::interval(settings.interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut unrecoverable = 0;
        loop {
            interval.tick().await;
            if self.inner.database.is_down() {
                continue;
            }
            match self.complete_stale(&settings).await {
                // Said once per change, not every pass.
                Ok(pass) if pass.backlog.without_request != unrecoverable => {
                    unrecoverable = pass.backlog.without_request;
                    if unrecoverable > 0 {
                        tracing::warn!(
                            records = unrecoverable,
                            "stale client-token records without their canonical request \
                             cannot be re-driven by the completer; they are left to their \
                             callers' retries"
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    error = %crate::telemetry::error_chain(&e),
                    "completer pass failed"
                ),
            }
        }
    }

    /// One completer pass (see the module docs).
    ///
    /// # Errors
    /// [`StoreError`] when the backlog or the takeover cannot be read or
    /// written (then nothing was taken over).
    pub async fn complete_stale(
        &self,
        settings: &CompleterSettings,
    ) -> Result<CompleterPass, StoreError> {
        let store = &self.inner.store;
        let backlog = store.stale_backlog(None, settings.retryable_after).await?;
        metrics::gauge!(crate::metrics::COMPLETER_BACKLOG).set(backlog.stale as f64);
        metrics::gauge!(crate::metrics::COMPLETER_UNRECOVERABLE)
            .set(backlog.without_request as f64);
        if backlog.stale <= backlog.without_request {
            return Ok(CompleterPass {
                backlog,
                redriven: 0,
            });
        }
        let taken = store
            .take_over_stale(
                None,
                settings.retryable_after,
                self.inner.dedup.lease,
                settings.batch,
            )
            .await?;
        let count = taken.len();
        let pace = Duration::from_secs(1) / settings.rate_per_sec.max(1);
        let mut drives = Vec::with_capacity(count);
        for (i, record) in taken.into_iter().enumerate() {
            if i > 0 {
                // Rate bound, not synchronisation.
                tokio::time::sleep(pace).await;
            }
            let this = self.clone();
            drives.push(
                self.inner
                    .tasks
                    .spawn(async move { this.redrive(record).await }),
            );
        }
        for drive in drives {
            let _ = drive.await;
        }
        Ok(CompleterPass {
            backlog,
            redriven: count,
        })
    }

    /// Re-drives one taken-over record through phases 2 and 3.
    async fn redrive(&self, record: StaleRecord) {
        let started = Instant::now();
        let Some(operation) = Operation::from_stored(&record.method, &record.request_body) else {
            tracing::warn!(
                method = %record.method,
                "completer: the stored request does not parse; left to the caller"
            );
            failed("unreadable");
            return;
        };
        let acting = AccountId::parse_any(&record.acting_account_id)
            .ok()
            .and_then(|a| operation.resolve_account(&self.inner, Some(a)).ok());
        let Some(acting) = acting else {
            tracing::warn!(
                method = %record.method,
                account_id = %record.acting_account_id,
                "completer: the record's acting account is not configured; left to the caller"
            );
            failed("account");
            return;
        };
        let method = operation.method();
        let request_id = Uuid::new_v4().to_string();
        let span = tracing::info_span!(
            "completer",
            method,
            principal = COMPLETER_PRINCIPAL,
            on_behalf_of = %record.principal,
            request_id = %request_id,
            account_id = %acting,
        );
        async {
            let result = operation
                .drive(&self.inner, &acting, &record.upstream_client_token)
                .await;
            let settled = Settled::of(result, &operation, &acting);
            let event = recovered_event(&record, &operation, &acting, &settled, request_id, started);
            let key = RecordKey {
                principal: record.principal.clone(),
                method,
                client_token_sha256: record.client_token_sha256.clone(),
            };
            let completed = matches!(settled.record, RecordOutcome::Completed(_));
            match self
                .inner
                .store
                .complete(&key, record.lease_id, &settled.record, &event)
                .await
            {
                Ok(true) if completed => {
                    metrics::counter!(crate::metrics::COMPLETER_RECOVERED).increment(1);
                    tracing::info!(code = %event.grpc_code, "completer recovered a client-token record");
                }
                Ok(true) => {
                    failed("upstream");
                    tracing::warn!(
                        code = %event.grpc_code,
                        reason = ?event.error_reason,
                        "completer: the re-drive failed transiently; the record stays retryable"
                    );
                }
                Ok(false) => {
                    failed("lease_lost");
                    tracing::warn!("completer: lease lost to a takeover; the other driver records it");
                }
                Err(e) => {
                    failed("database");
                    tracing::error!(
                        error = %crate::telemetry::error_chain(&e),
                        event_id = %event.event_id,
                        method = %event.method,
                        principal = %event.principal,
                        request_id = %event.request_id,
                        account_id = ?event.account_id,
                        grpc_code = %event.grpc_code,
                        upstream_request_id = ?event.upstream_request_id,
                        request_parameters = %event.request_parameters,
                        response_elements = ?event.response_elements,
                        "audit event could not be written"
                    );
                }
            }
        }
        .instrument(span)
        .await;
    }
}

/// The audit event of a completer re-drive: principal
/// [`COMPLETER_PRINCIPAL`], outcome `recovered`, the original caller in
/// `request_parameters.on_behalf_of`, no peer address or user agent.
fn recovered_event(
    record: &StaleRecord,
    operation: &Operation,
    acting: &AccountId,
    settled: &Settled,
    request_id: String,
    started: Instant,
) -> AuditEvent {
    let mut parameters = operation.audit_parameters(acting);
    if let Value::Object(map) = &mut parameters {
        map.insert("on_behalf_of".into(), audit_str(&record.principal));
    }
    let (grpc_code, error_reason, error_message, response_elements) = match &settled.answer {
        Ok(resource) => ("OK", None, None, Some(Resource::to_json(resource))),
        Err(api) => (
            code_name(api.code()),
            Some(api.reason().to_owned()),
            Some(api.message().to_owned()),
            None,
        ),
    };
    AuditEvent {
        event_id: AuditEvent::new_event_id(),
        event_time: crate::audit::now_micros(),
        method: operation.method().to_owned(),
        read_only: false,
        principal: COMPLETER_PRINCIPAL.to_owned(),
        source_ip: None,
        user_agent: None,
        request_id,
        account_id: Some(acting.to_string()),
        request_parameters: parameters,
        response_elements,
        grpc_code: grpc_code.to_owned(),
        error_reason,
        error_message,
        upstream_request_id: settled.upstream_request_id.clone(),
        upstream_attempts: settled.upstream_attempts,
        idempotency_outcome: IdempotencyOutcome::Recovered,
        client_token_sha256: Some(record.client_token_sha256.clone()),
        duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InvitationMutation, LinkId, Mutation, Provider};

    #[test]
    fn the_canonical_request_round_trips_for_every_mutation() {
        let link = || LinkId::parse("link-12345678").unwrap();
        let invitation =
            || "arn:aws:ram:us-east-1:111111111111:resource-share-invitation/x".to_owned();
        for operation in [
            Operation::Link(Mutation::Create {
                target_account_id: AccountId::parse("222222222222").unwrap(),
            }),
            Operation::Link(Mutation::Accept { link_id: link() }),
            Operation::Link(Mutation::Reject { link_id: link() }),
            Operation::Link(Mutation::Delete { link_id: link() }),
            Operation::Invitation {
                provider: Provider::AwsRam,
                mutation: InvitationMutation::Accept {
                    invitation_id: invitation(),
                },
            },
            Operation::Invitation {
                provider: Provider::HuaweiRam,
                mutation: InvitationMutation::Reject {
                    invitation_id: "0123456789abcdef0123456789abcdef".to_owned(),
                },
            },
        ] {
            let body = operation.request_body();
            assert_eq!(
                Operation::from_stored(operation.method(), &body),
                Some(operation.clone()),
                "{body}"
            );
        }
        assert_eq!(
            Operation::Link(Mutation::Accept { link_id: link() }).request_body(),
            r#"{"link_id":"link-12345678","v":1}"#
        );
        assert_eq!(
            Operation::Invitation {
                provider: Provider::HuaweiRam,
                mutation: InvitationMutation::Accept {
                    invitation_id: "i".to_owned()
                },
            }
            .request_body(),
            r#"{"invitation_id":"i","provider":"HUAWEI_RAM","v":1}"#
        );
    }

    #[test]
    fn an_unknown_version_or_method_or_a_bad_value_is_not_re_driven() {
        let of = Operation::from_stored;
        assert_eq!(
            of(
                "AcceptAccountLinkInvitation",
                r#"{"v":2,"link_id":"link-12345678"}"#
            ),
            None
        );
        assert_eq!(
            of("GetAccountLink", r#"{"v":1,"link_id":"link-12345678"}"#),
            None
        );
        assert_eq!(
            of(
                "CreateAccountLinkInvitation",
                r#"{"v":1,"target_account_id":"1"}"#
            ),
            None
        );
        assert_eq!(
            of(
                "AcceptResourceShareInvitation",
                r#"{"v":1,"provider":"GCP","invitation_id":"i"}"#
            ),
            None
        );
        assert_eq!(of("CreateAccountLinkInvitation", "not json"), None);
    }
}
