//! Per-RPC context: who called, the request id, timing, and the audit
//! event that every RPC ends with.

use std::time::Instant;

use serde_json::Value;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status};
use tonic_types::StatusExt;
use uuid::Uuid;

use crate::auth::{ANONYMOUS, AuthError, Authenticator};
use crate::error::{ApiError, code_name};
use crate::grpc::Malformed;
use crate::grpc::malformed::Arrived;
use crate::store::{AuditEvent, IdempotencyOutcome};
use crate::upstream::{UpstreamError, UpstreamErrorKind};

/// Metadata key of the request id, accepted from the caller or generated,
/// and echoed on every answer.
pub const REQUEST_ID_METADATA: &str = "x-request-id";

/// Response metadata set on replays of a completed client token (DESIGN §5).
pub const REPLAYED_METADATA: &str = "idempotent-replayed";

/// Longest accepted caller-supplied request id.
const MAX_REQUEST_ID_LEN: usize = 128;

/// What one RPC knows about its caller before it runs.
#[derive(Debug)]
pub(crate) struct CallContext {
    pub(crate) method: &'static str,
    read_only: bool,
    pub(crate) principal: String,
    /// Why authentication failed; the principal is then `anonymous`.
    pub(crate) auth_error: Option<AuthError>,
    /// Why the request message could not be decoded, if it could not.
    pub(crate) malformed: Option<Malformed>,
    source_ip: Option<String>,
    user_agent: Option<String>,
    pub(crate) request_id: String,
    started: Instant,
    /// When the RPC's deadline passes: the caller's `grpc-timeout` (less
    /// [`answer_margin`], from [`Arrived`]) or the configured default,
    /// whichever is sooner.
    deadline: tokio::time::Instant,
    /// The RPC's span: method, principal, request id, then the acting
    /// account, the code and the duration as they become known.
    span: tracing::Span,
}

/// The parts of an audit event a handler learns while it runs.
#[derive(Debug)]
pub(crate) struct AuditDraft {
    pub(crate) account_id: Option<String>,
    request_parameters: Value,
    pub(crate) response_elements: Option<Value>,
    pub(crate) upstream_request_id: Option<String>,
    pub(crate) upstream_attempts: u32,
    pub(crate) idempotency_outcome: IdempotencyOutcome,
    pub(crate) client_token_sha256: Option<String>,
}

impl AuditDraft {
    /// Replaces the request parameters (e.g. when the message was
    /// undecodable and its fields mean nothing).
    pub(crate) fn set_parameters(&mut self, request_parameters: Value) {
        self.request_parameters = request_parameters;
    }

    /// A draft with the (already redacted) request parameters.
    pub(crate) fn new(request_parameters: Value) -> Self {
        Self {
            account_id: None,
            request_parameters,
            response_elements: None,
            upstream_request_id: None,
            upstream_attempts: 0,
            idempotency_outcome: IdempotencyOutcome::None,
            client_token_sha256: None,
        }
    }
}

fn printable(value: &str, max: usize) -> Option<String> {
    (!value.is_empty()
        && value.len() <= max
        && value.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
    .then(|| value.to_owned())
}

impl CallContext {
    /// Captures and authenticates the caller of `request`. The request id
    /// is the caller's `x-request-id` when it is 1..=128 printable ASCII
    /// characters, else a new UUIDv4.
    pub(crate) fn new<T>(
        method: &'static str,
        read_only: bool,
        request: &Request<T>,
        auth: &Authenticator,
        default_timeout: std::time::Duration,
    ) -> Self {
        let caller_timeout = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        // tonic answers CANCELLED when the caller's timeout passes (its
        // timer starts at `Arrived`); end ours earlier, so the answer is
        // the audited DEADLINE_EXCEEDED.
        let deadline = match caller_timeout {
            Some(t) if t < default_timeout => {
                let arrived = request
                    .extensions()
                    .get::<Arrived>()
                    .map_or_else(tokio::time::Instant::now, |a| a.0);
                arrived + t.saturating_sub(answer_margin(t))
            }
            _ => tokio::time::Instant::now() + default_timeout,
        };
        let peer_certs = request.peer_certs();
        let authenticated =
            auth.authenticate(request.metadata(), peer_certs.as_deref().map(Vec::as_slice));
        let metadata = request.metadata();
        let text = |key: &str| metadata.get(key).and_then(|v| v.to_str().ok());
        let request_id = text(REQUEST_ID_METADATA)
            .and_then(|v| printable(v, MAX_REQUEST_ID_LEN))
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        Self {
            method,
            read_only,
            principal: authenticated
                .clone()
                .unwrap_or_else(|_| ANONYMOUS.to_owned()),
            auth_error: authenticated.err(),
            malformed: request.extensions().get::<Malformed>().cloned(),
            source_ip: request.remote_addr().map(|a| a.ip().to_string()),
            user_agent: text("user-agent").and_then(|v| printable(v, 512)),
            request_id,
            started: Instant::now(),
            deadline,
            span: tracing::Span::none(),
        }
        .with_span()
    }

    fn base_event(&self, draft: AuditDraft) -> AuditEvent {
        AuditEvent {
            event_id: AuditEvent::new_event_id(),
            event_time: crate::audit::now_micros(),
            method: self.method.to_owned(),
            read_only: self.read_only,
            principal: self.principal.clone(),
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
            account_id: draft.account_id,
            request_parameters: draft.request_parameters,
            response_elements: draft.response_elements,
            grpc_code: "OK".to_owned(),
            error_reason: None,
            error_message: None,
            upstream_request_id: draft.upstream_request_id,
            upstream_attempts: draft.upstream_attempts,
            idempotency_outcome: draft.idempotency_outcome,
            client_token_sha256: draft.client_token_sha256,
            duration_us: u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
        }
    }

    /// The audit event of this RPC ending with `outcome`. Error answers
    /// carry no `response_elements`.
    pub(crate) fn event(&self, draft: AuditDraft, outcome: Result<(), &ApiError>) -> AuditEvent {
        let mut event = self.base_event(draft);
        if let Err(err) = outcome {
            event.response_elements = None;
            event.grpc_code = code_name(err.code()).to_owned();
            event.error_reason = Some(err.reason().to_owned());
            event.error_message = Some(err.message().to_owned());
        }
        event
    }

    /// The audit event of a replayed error outcome.
    pub(crate) fn event_replayed_error(
        &self,
        draft: AuditDraft,
        status: &Status,
        reason: Option<&str>,
    ) -> AuditEvent {
        let mut event = self.base_event(draft);
        event.response_elements = None;
        event.grpc_code = code_name(status.code()).to_owned();
        event.error_reason = reason
            .map(str::to_owned)
            .or_else(|| status.get_details_error_info().map(|i| i.reason));
        event.error_message = Some(status.message().to_owned());
        event
    }

    /// Logs an event that could not be written (the database failed), so
    /// that what happened is not lost.
    pub(crate) fn log_unrecorded(&self, event: &AuditEvent) {
        tracing::error!(
            event_id = %event.event_id,
            method = %event.method,
            principal = %event.principal,
            request_id = %event.request_id,
            account_id = ?event.account_id,
            grpc_code = %event.grpc_code,
            error_reason = ?event.error_reason,
            upstream_request_id = ?event.upstream_request_id,
            idempotency_outcome = event.idempotency_outcome.as_str(),
            request_parameters = %event.request_parameters,
            response_elements = ?event.response_elements,
            "audit event could not be written"
        );
    }

    fn tag(&self, metadata: &mut MetadataMap) {
        if let Ok(value) = MetadataValue::try_from(self.request_id.as_str()) {
            metadata.insert(REQUEST_ID_METADATA, value);
        }
    }

    fn with_span(mut self) -> Self {
        self.span = tracing::info_span!(
            "rpc",
            method = self.method,
            principal = %self.principal,
            request_id = %self.request_id,
            account_id = tracing::field::Empty,
            code = tracing::field::Empty,
            duration_us = tracing::field::Empty,
        );
        self
    }

    /// The RPC's span (child spans: `upstream`, `db.*`).
    pub(crate) fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    /// Records the resolved acting account on the span.
    pub(crate) fn record_account(&self, account: &str) {
        self.span.record("account_id", account);
    }

    /// Runs an upstream call within what is left of the deadline; past it,
    /// the call is abandoned as `DeadlineExceeded` (its AWS outcome is
    /// unknown, so a client-token record stays retryable).
    pub(crate) async fn within_deadline<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, UpstreamError>>,
    ) -> Result<T, UpstreamError> {
        match tokio::time::timeout_at(self.deadline, call).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamError {
                kind: UpstreamErrorKind::DeadlineExceeded,
                aws_error_code: None,
                message: "the rpc deadline passed during the AWS call".to_owned(),
                aws_request_id: None,
                attempts: 0,
            }),
        }
    }

    /// Counts the answer and its latency (`accountlink_rpc_*`).
    fn observe(&self, code: &'static str) {
        self.span.record("code", code);
        self.span
            .record("duration_us", self.started.elapsed().as_micros() as u64);
        metrics::counter!(crate::metrics::RPC_REQUESTS, "method" => self.method, "code" => code)
            .increment(1);
        metrics::histogram!(crate::metrics::RPC_DURATION, "method" => self.method)
            .record(self.started.elapsed().as_secs_f64());
    }

    /// `status` with the request id in its metadata.
    pub(crate) fn status(&self, mut status: Status) -> Status {
        self.tag(status.metadata_mut());
        self.observe(code_name(status.code()));
        tracing::info!(
            method = self.method,
            request_id = %self.request_id,
            code = code_name(status.code()),
            duration_us = self.started.elapsed().as_micros() as u64,
            "rpc failed"
        );
        status
    }

    /// A response with the request id (and the replay marker) in its metadata.
    pub(crate) fn response<T>(&self, body: T, replayed: bool) -> Response<T> {
        let mut response = Response::new(body);
        self.tag(response.metadata_mut());
        self.observe("OK");
        if replayed {
            mark_replayed(response.metadata_mut());
        }
        tracing::info!(
            method = self.method,
            request_id = %self.request_id,
            code = "OK",
            replayed,
            duration_us = self.started.elapsed().as_micros() as u64,
            "rpc answered"
        );
        response
    }
}

/// How long before the caller's `grpc-timeout` the RPC's deadline passes:
/// a fifth of it, at most a second: time to write the audit event and
/// answer before tonic's own timer does.
fn answer_margin(timeout: std::time::Duration) -> std::time::Duration {
    (timeout / 5).min(std::time::Duration::from_secs(1))
}

/// Parses a `grpc-timeout` value (gRPC over HTTP/2: 1..8 digits and a unit
/// of `H`, `M`, `S`, `m`, `u` or `n`).
fn parse_grpc_timeout(value: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Sets `idempotent-replayed: true`.
pub(crate) fn mark_replayed(metadata: &mut MetadataMap) {
    metadata.insert(REPLAYED_METADATA, MetadataValue::from_static("true"));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn grpc_timeouts_parse_per_the_spec() {
        assert_eq!(
            super::parse_grpc_timeout("100m"),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            super::parse_grpc_timeout("2S"),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            super::parse_grpc_timeout("1H"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(super::parse_grpc_timeout("5"), None);
        assert_eq!(super::parse_grpc_timeout("123456789m"), None);
        assert_eq!(super::parse_grpc_timeout("10x"), None);
    }
}
