//! AWS Resource Access Manager over restJson1 (issue 12): the six operations of a
//! resource-share invitation's life, as `aws-sdk-ram` and boto3 send them.
//!
//! # Protocol
//! `POST /<operation in lowercase>` (the model's `requestUri`: `/createresourceshare`,
//! `/associateresourceshare`, `/getresourceshareinvitations`,
//! `/acceptresourceshareinvitation`, `/rejectresourceshareinvitation`,
//! `/listpendinginvitationresources`) with a JSON body of camelCase members; an empty body
//! is an empty input. Success is `200` with `Content-Type: application/json` and the
//! operation's output; timestamps are epoch seconds (JSON numbers, milliseconds as the
//! fraction), restJson1's default. Failure is the status the model gives the exception
//! (400 for every RAM exception, 429 `ThrottlingException`, 500 `ServerInternalException`,
//! 503 `ServiceUnavailableException`, 403 for the authentication failures) with
//! `x-amzn-ErrorType: <Code>` and `{"message": "..."}`; both `aws-smithy-json` and botocore
//! take the code from that header. Every response carries `x-amzn-RequestId`. A body that is
//! not a JSON object is `InvalidParameterException` (RAM declares no
//! `SerializationException`; the emulator's choice).
//!
//! # Caller identity and region
//! As for WorkSpaces (`protocol::caller_account`): the access key id of the SigV4
//! credential scope is the 12-digit account id; an unsigned call is
//! `MissingAuthenticationTokenException` (403), a non-account key
//! `UnrecognizedClientException` (403). The region of the ARNs the emulator makes is the
//! credential scope's (`Credential=<key>/<date>/<region>/ram/aws4_request`), `us-east-1` when
//! it has none. ARNs are looked up as whole strings, whatever the calling region.
//!
//! # Test hooks
//! Every call is in the emulator's call log ([`super::CallRecord`], operation = the AWS
//! name, `client_token` = the `clientToken` member) and takes the faults of
//! [`super::Fault`]: `Throttling` answers `ThrottlingException` (429),
//! `InternalServerError` answers `ServerInternalException` (500), `AwsError` any code
//! (e.g. `ServiceUnavailableException`, 503) at its model status, `Latency` and
//! `DropConnection` as for WorkSpaces. Invitations expire on an emulator clock that tests
//! move forward ([`Emulator::advance_ram_clock`], `POST /_emulator/ram/clock` with
//! `{"advance_seconds": N}`); [`Emulator::ram_invitations`] and
//! `GET /_emulator/ram/invitations` list every invitation.
//!
//! The rules themselves are in `ram/state.rs`.

mod state;

use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value};

pub(super) use self::state::RamState;
use self::state::{Caller, RamError, RamOperation, epoch_seconds};
pub use self::state::{RamInvitation, RamInvitationStatus};
use super::protocol::{self, ERROR_TYPE_HEADER, REQUEST_ID_HEADER};
use super::{CallRecord, Emulator, FaultKind};

/// `Content-Type` of restJson1 responses.
const CONTENT_TYPE: &str = "application/json";

/// Region of ARNs made for a call whose credential scope names none.
const DEFAULT_REGION: &str = "us-east-1";

/// Whether `name` is one of the RAM operations the emulator serves (for fault validation).
pub(super) fn is_operation(name: &str) -> bool {
    RamOperation::from_name(name).is_some()
}

/// The RAM routes, merged into the emulator's router: one `POST` per operation and the
/// `/_emulator/ram/*` hooks.
pub(super) fn routes() -> Router<Emulator> {
    let mut router = Router::new()
        .route("/_emulator/ram/clock", post(advance_clock))
        .route("/_emulator/ram/invitations", get(list_invitations));
    for operation in RamOperation::ALL {
        router = router.route(
            operation.path(),
            post(
                move |State(emulator): State<Emulator>, headers: HeaderMap, body: Bytes| {
                    api(emulator, operation, headers, body)
                },
            ),
        );
    }
    router
}

/// The region of the SigV4 credential scope (`Credential=<key>/<date>/<region>/...`).
fn sigv4_region(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let params = value.trim_start().strip_prefix("AWS4-HMAC-SHA256")?;
    let credential = params
        .split(',')
        .map(str::trim)
        .find_map(|part| part.strip_prefix("Credential="))?;
    credential.split('/').nth(2).filter(|r| !r.is_empty())
}

/// One RAM request, read as far as it can be before it is handled.
#[derive(Debug)]
struct RamCall {
    operation: RamOperation,
    caller: Result<String, RamError>,
    region: String,
    input: Result<Map<String, Value>, RamError>,
    /// The body as the call log keeps it: the JSON value, else the raw text.
    logged: Value,
}

impl RamCall {
    fn parse(operation: RamOperation, headers: &HeaderMap, body: &[u8]) -> Self {
        let caller = protocol::caller_account(headers)
            .map_err(|e| RamError::new(e.code.as_str(), e.message));
        let region = sigv4_region(headers).unwrap_or(DEFAULT_REGION).to_owned();
        let (input, logged) = if body.iter().all(u8::is_ascii_whitespace) {
            (Ok(Map::new()), Value::Object(Map::new()))
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => (Ok(map.clone()), Value::Object(map)),
                Ok(other) => (
                    Err(RamError::new(
                        "InvalidParameterException",
                        "The request body must be a JSON object.",
                    )),
                    other,
                ),
                Err(error) => (
                    Err(RamError::new(
                        "InvalidParameterException",
                        format!("The request body is not valid JSON: {error}"),
                    )),
                    Value::String(String::from_utf8_lossy(body).into_owned()),
                ),
            }
        };
        Self {
            operation,
            caller,
            region,
            input,
            logged,
        }
    }

    /// The failure an injected fault answers with instead of handling the call, if any.
    fn injected(fault: Option<&FaultKind>) -> Option<RamError> {
        match fault? {
            FaultKind::Throttling => Some(RamError::new("ThrottlingException", "Rate exceeded")),
            FaultKind::InternalServerError => Some(RamError::new(
                "ServerInternalException",
                "The service encountered an internal error (injected fault).",
            )),
            FaultKind::AwsError { code, message } => Some(RamError::new(code, message.clone())),
            FaultKind::Latency { .. } | FaultKind::DropConnection => None,
        }
    }
}

impl Emulator {
    /// Every AWS RAM invitation ever sent, in sending order, with its status at the emulator
    /// clock's current time (a `PENDING` one sent 7 days ago or more reads `EXPIRED`).
    pub fn ram_invitations(&self) -> Vec<RamInvitation> {
        let ram = self.ram();
        ram.invitations(ram.now())
    }

    /// Moves the RAM emulator clock forward by `by` (it starts at the system clock and runs
    /// with it). Invitations sent 7 days or more before the new time and still pending are
    /// then expired. Only RAM uses this clock.
    pub fn advance_ram_clock(&self, by: Duration) {
        self.ram().advance_clock(by);
    }

    /// The RAM emulator clock's current time.
    pub fn ram_now(&self) -> time::OffsetDateTime {
        self.ram().now()
    }

    /// The RAM state; a panic while it was held does not make it unusable.
    fn ram(&self) -> MutexGuard<'_, RamState> {
        self.ram.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs the arrival of `call` and consumes the fault that applies to it, if any.
    fn begin_ram_call(&self, call: &RamCall, request_id: &str) -> (u64, Option<FaultKind>) {
        let mut shared = self.lock();
        let fault = shared.faults.take(call.operation.name());
        shared.last_seq += 1;
        let seq = shared.last_seq;
        let client_token = call
            .logged
            .get("clientToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        shared.calls.push(CallRecord {
            seq,
            operation: call.operation.name().to_owned(),
            account_id: call.caller.as_ref().ok().cloned(),
            client_token,
            request: call.logged.clone(),
            error_code: None,
            request_id: request_id.to_owned(),
            fault: fault.clone(),
        });
        (seq, fault)
    }

    /// Records how call `seq` ended (a no-op if the log was cleared meanwhile).
    fn finish_ram_call(&self, seq: u64, outcome: &Result<Value, RamError>) {
        let error_code = outcome.as_ref().err().map(|e| e.code.clone());
        let mut shared = self.lock();
        if let Some(record) = shared.calls.iter_mut().rev().find(|r| r.seq == seq) {
            record.error_code = error_code;
        }
    }

    /// Authenticates and runs a call against the RAM state, under its lock.
    fn handle_ram(&self, call: &RamCall) -> Result<Value, RamError> {
        let account = call.caller.as_deref().map_err(Clone::clone)?;
        let input = call.input.as_ref().map_err(Clone::clone)?;
        let caller = Caller {
            account,
            region: &call.region,
        };
        let mut ram = self.ram();
        let now = ram.now();
        ram.execute(call.operation, &caller, input, now)
    }
}

/// One RAM call: logged on arrival, the next matching fault consumed, and the work run in
/// its own task so that it completes even if the client goes away (as the WorkSpaces path
/// does).
async fn api(
    emulator: Emulator,
    operation: RamOperation,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let call = Arc::new(RamCall::parse(operation, &headers, &body));
    let (seq, fault) = emulator.begin_ram_call(&call, &request_id);

    let worker = emulator.clone();
    let task_call = Arc::clone(&call);
    let task_fault = fault.clone();
    let task = tokio::spawn(async move {
        let outcome = match RamCall::injected(task_fault.as_ref()) {
            Some(error) => Err(error),
            None => {
                if let Some(FaultKind::Latency { millis }) = task_fault {
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                }
                worker.handle_ram(&task_call)
            }
        };
        worker.finish_ram_call(seq, &outcome);
        tracing::debug!(
            seq,
            operation = task_call.operation.name(),
            error_code = outcome.as_ref().err().map(|e| e.code.as_str()),
            "emulator ram call handled"
        );
        outcome
    });
    let outcome = match task.await {
        Ok(outcome) => outcome,
        Err(error) => {
            tracing::error!(%error, seq, "emulator ram call task failed");
            let outcome = Err(RamError::new(
                "ServerInternalException",
                "The emulator failed while handling the request.",
            ));
            emulator.finish_ram_call(seq, &outcome);
            outcome
        }
    };
    if fault == Some(FaultKind::DropConnection) {
        return super::server::dropped_response(&request_id, CONTENT_TYPE);
    }
    match outcome {
        Ok(body) => response(StatusCode::OK, &request_id, None, &body),
        Err(error) => {
            let status =
                StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::json!({ "message": error.message });
            response(status, &request_id, Some(&error.code), &body)
        }
    }
}

fn response(
    status: StatusCode,
    request_id: &str,
    error_type: Option<&str>,
    body: &Value,
) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    if let Some(Ok(value)) = error_type.map(HeaderValue::from_str) {
        headers.insert(ERROR_TYPE_HEADER, value);
    }
    response
}

/// Body of `POST /_emulator/ram/clock`.
#[derive(Debug, Deserialize)]
struct AdvanceClock {
    /// Seconds to move the clock forward.
    advance_seconds: u64,
}

/// `POST /_emulator/ram/clock` with `{"advance_seconds": N}`: moves the RAM clock forward;
/// `200` with `{"now": <epoch seconds>}` (axum rejects malformed JSON itself).
async fn advance_clock(
    State(emulator): State<Emulator>,
    Json(advance): Json<AdvanceClock>,
) -> Json<Value> {
    emulator.advance_ram_clock(Duration::from_secs(advance.advance_seconds));
    Json(serde_json::json!({ "now": epoch_seconds(emulator.ram_now()) }))
}

/// `GET /_emulator/ram/invitations`: every invitation, in sending order, as
/// [`RamInvitation`] JSON objects.
async fn list_invitations(State(emulator): State<Emulator>) -> Json<Vec<RamInvitation>> {
    Json(emulator.ram_invitations())
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    use super::state::INVITATION_LIFETIME;
    use super::*;
    use crate::emulator::Fault;

    fn auth(account: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={account}/20240101/ap-southeast-2/ram/aws4_request, SignedHeaders=host, Signature=abc"
        )
    }

    /// Sends one request through the router; returns status, error type header and body.
    async fn call(
        emulator: &Emulator,
        path: &str,
        account: Option<&str>,
        body: Value,
    ) -> (StatusCode, Option<String>, Value) {
        let mut request = Request::post(path).header("content-type", "application/json");
        if let Some(account) = account {
            request = request.header("authorization", auth(account));
        }
        let request = request
            .body(Body::from(body.to_string()))
            .expect("valid request");
        let response = emulator
            .router()
            .oneshot(request)
            .await
            .expect("router is infallible");
        let status = response.status();
        assert!(response.headers().contains_key(REQUEST_ID_HEADER));
        let error_type = response
            .headers()
            .get(ERROR_TYPE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body reads");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, error_type, body)
    }

    #[tokio::test]
    async fn the_flow_over_http_logs_calls_and_uses_the_credential_scope_region() {
        let emulator = Emulator::new();
        let (status, _, body) = call(
            &emulator,
            "/createresourceshare",
            Some("111111111111"),
            serde_json::json!({ "name": "s", "principals": ["222222222222"] }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body["resourceShare"]["resourceShareArn"]
                .as_str()
                .is_some_and(|a| a.starts_with("arn:aws:ram:ap-southeast-2:111111111111:"))
        );
        assert!(body["resourceShare"]["creationTime"].is_f64());
        let invitation = emulator.ram_invitations().remove(0);
        let arn = invitation.resource_share_invitation_arn;

        let (status, error, body) = call(
            &emulator,
            "/acceptresourceshareinvitation",
            None,
            serde_json::json!({ "resourceShareInvitationArn": arn }),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            error.as_deref(),
            Some("MissingAuthenticationTokenException")
        );
        assert!(body["message"].is_string());

        let (status, error, _) = call(
            &emulator,
            "/acceptresourceshareinvitation",
            Some("222222222222"),
            serde_json::json!({ "resourceShareInvitationArn": arn, "clientToken": "t1" }),
        )
        .await;
        assert_eq!((status, error), (StatusCode::OK, None));

        let calls = emulator.calls();
        let logged: Vec<_> = calls
            .iter()
            .map(|c| {
                (
                    c.operation.as_str(),
                    c.account_id.as_deref(),
                    c.error_code.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            logged,
            [
                ("CreateResourceShare", Some("111111111111"), None),
                (
                    "AcceptResourceShareInvitation",
                    None,
                    Some("MissingAuthenticationTokenException")
                ),
                ("AcceptResourceShareInvitation", Some("222222222222"), None),
            ]
        );
        assert_eq!(calls[2].client_token.as_deref(), Some("t1"));
    }

    #[tokio::test]
    async fn faults_answer_with_ram_codes_and_statuses() {
        let emulator = Emulator::new();
        let op = "GetResourceShareInvitations";
        emulator
            .try_inject_fault(Fault::new(FaultKind::Throttling, 1).only_for(op))
            .expect("ram operations take faults");
        emulator.inject_fault(Fault::new(FaultKind::InternalServerError, 1).only_for(op));
        emulator.inject_fault(
            Fault::new(
                FaultKind::AwsError {
                    code: "ServiceUnavailableException".to_owned(),
                    message: "down".to_owned(),
                },
                1,
            )
            .only_for(op),
        );
        let mut seen = Vec::new();
        for _ in 0..4 {
            let (status, error, _) = call(
                &emulator,
                "/getresourceshareinvitations",
                Some("222222222222"),
                serde_json::json!({}),
            )
            .await;
            seen.push((status.as_u16(), error));
        }
        assert_eq!(
            seen,
            [
                (429, Some("ThrottlingException".to_owned())),
                (500, Some("ServerInternalException".to_owned())),
                (503, Some("ServiceUnavailableException".to_owned())),
                (200, None),
            ]
        );
        assert!(emulator.calls()[..3].iter().all(|c| c.fault.is_some()));
    }

    #[tokio::test]
    async fn the_clock_hook_expires_pending_invitations() {
        let emulator = Emulator::new();
        call(
            &emulator,
            "/createresourceshare",
            Some("111111111111"),
            serde_json::json!({ "name": "s", "principals": ["222222222222"] }),
        )
        .await;
        let request = Request::post("/_emulator/ram/clock")
            .header("content-type", "application/json")
            .body(Body::from(
                serde_json::json!({ "advance_seconds": INVITATION_LIFETIME.as_secs() }).to_string(),
            ))
            .expect("valid request");
        let response = emulator
            .router()
            .oneshot(request)
            .await
            .expect("router is infallible");
        assert_eq!(response.status(), StatusCode::OK);
        let request = Request::get("/_emulator/ram/invitations")
            .body(Body::empty())
            .expect("valid request");
        let response = emulator
            .router()
            .oneshot(request)
            .await
            .expect("router is infallible");
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body reads");
        let invitations: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(invitations[0]["status"], "EXPIRED");
        assert!(invitations[0]["invitationTimestamp"].is_number());
    }
}
