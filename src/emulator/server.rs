//! The emulator's axum handlers: the JSON 1.1 endpoint at `POST /` and the `/_emulator/*`
//! control endpoints used by tests and by operators of the standalone emulator.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::protocol::{self, ApiError, ErrorCode, JSON_CONTENT_TYPE, Operation, REQUEST_ID_HEADER};
use super::{AccountLink, CallRecord, Emulator, Fault, FaultKind};

/// Builds the router over `emulator`.
pub(super) fn router(emulator: Emulator) -> Router {
    Router::new()
        .route("/", post(api))
        .route("/_emulator/calls", get(list_calls).delete(clear_calls))
        .route("/_emulator/faults", post(inject_fault).delete(clear_faults))
        .route("/_emulator/links", get(list_links))
        .with_state(emulator)
}

/// A request to `POST /`, read as far as it can be before it is handled. Each part keeps
/// the exception it would end with, so the call can be logged whatever is wrong with it.
#[derive(Debug)]
struct Call {
    /// The operation name for the call log and fault matching.
    label: String,
    operation: Result<Operation, ApiError>,
    caller: Result<String, ApiError>,
    input: Result<Value, ApiError>,
}

impl Call {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Self {
        let target = headers
            .get("x-amz-target")
            .and_then(|value| value.to_str().ok());
        let operation = Operation::from_target(target);
        let label = match &operation {
            Ok(op) => op.name().to_owned(),
            Err(_) => target.unwrap_or_default().to_owned(),
        };
        // An empty body is an empty input structure, as AWS JSON services read it.
        let input = if body.iter().all(u8::is_ascii_whitespace) {
            Ok(Value::Object(serde_json::Map::new()))
        } else {
            serde_json::from_slice(body).map_err(|error| {
                ApiError::serialization(format!("The request body is not valid JSON: {error}"))
            })
        };
        Self {
            label,
            operation,
            caller: protocol::caller_account(headers),
            input,
        }
    }

    /// The call log entry written when the call arrives.
    fn record(
        &self,
        seq: u64,
        request_id: &str,
        body: &[u8],
        fault: Option<FaultKind>,
    ) -> CallRecord {
        let request = match &self.input {
            Ok(value) => value.clone(),
            Err(_) => Value::String(String::from_utf8_lossy(body).into_owned()),
        };
        let client_token = request
            .get("ClientToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        CallRecord {
            seq,
            operation: self.label.clone(),
            account_id: self.caller.as_ref().ok().cloned(),
            client_token,
            request,
            error_code: None,
            request_id: request_id.to_owned(),
            fault,
        }
    }
}

impl Emulator {
    /// Logs the arrival of `call` and consumes the fault that applies to it, if any.
    fn begin_call(&self, call: &Call, request_id: &str, body: &[u8]) -> (u64, Option<FaultKind>) {
        let mut shared = self.lock();
        let fault = shared.faults.take(&call.label);
        shared.last_seq += 1;
        let seq = shared.last_seq;
        let record = call.record(seq, request_id, body, fault.clone());
        shared.calls.push(record);
        (seq, fault)
    }

    /// Records how call `seq` ended (a no-op if the log was cleared meanwhile).
    fn finish_call(&self, seq: u64, outcome: &Result<Value, ApiError>) {
        let error_code = outcome.as_ref().err().map(|e| e.code.as_str().to_owned());
        let mut shared = self.lock();
        if let Some(record) = shared.calls.iter_mut().rev().find(|r| r.seq == seq) {
            record.error_code = error_code;
        }
    }

    /// Handles a call with no fault applied: authenticates, resolves the operation, reads
    /// the input, and runs the operation against the links, in that order.
    fn handle(&self, call: &Call) -> Result<Value, ApiError> {
        let caller = call.caller.clone()?;
        let operation = call.operation.clone()?;
        let input = call.input.as_ref().map_err(Clone::clone)?;
        self.lock().links.execute(operation, &caller, input)
    }
}

/// `POST /`: one JSON 1.1 call.
///
/// The call is logged on arrival, the next matching fault is consumed, and the work runs in
/// its own task so that it completes (and its state change sticks) even if the client has
/// gone away, as it would on AWS.
async fn api(State(emulator): State<Emulator>, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let call = Call::parse(&headers, &body);
    let (seq, fault) = emulator.begin_call(&call, &request_id, &body);

    let worker = emulator.clone();
    let task_fault = fault.clone();
    let task = tokio::spawn(async move {
        let outcome = match task_fault {
            Some(FaultKind::Throttling) => {
                Err(ApiError::new(ErrorCode::Throttling, "Rate exceeded"))
            }
            Some(FaultKind::InternalServerError) => Err(ApiError::new(
                ErrorCode::InternalServer,
                "Unexpected server error occured (injected fault).",
            )),
            Some(FaultKind::AwsError { code, message }) => {
                Err(injected_error(&call, &code, message))
            }
            Some(FaultKind::Latency { millis }) => {
                tokio::time::sleep(Duration::from_millis(millis)).await;
                worker.handle(&call)
            }
            Some(FaultKind::DropConnection) | None => worker.handle(&call),
        };
        worker.finish_call(seq, &outcome);
        tracing::debug!(
            seq,
            operation = %call.label,
            account_id = call.caller.as_deref().ok(),
            error_code = outcome.as_ref().err().map(|e| e.code.as_str()),
            "emulator call handled"
        );
        outcome
    });
    let outcome = match task.await {
        Ok(outcome) => outcome,
        Err(error) => {
            tracing::error!(%error, seq, "emulator call task failed");
            let outcome = Err(ApiError::new(
                ErrorCode::InternalServer,
                "The emulator failed while handling the request.",
            ));
            emulator.finish_call(seq, &outcome);
            outcome
        }
    };

    if fault == Some(FaultKind::DropConnection) {
        return dropped_response(&request_id);
    }
    match outcome {
        Ok(body) => protocol::success_response(&request_id, &body),
        Err(error) => protocol::error_response(&request_id, &error),
    }
}

/// The exception an `AwsError` fault answers with; a `ResourceNotFoundException` names the
/// request's `LinkId` (else `LinkedAccountId`) as its `ResourceId`, like a real one would.
fn injected_error(call: &Call, code: &str, message: String) -> ApiError {
    let code = ErrorCode::from_name(code);
    let resource_id = match (&code, &call.input) {
        (ErrorCode::ResourceNotFound, Ok(input)) => ["LinkId", "LinkedAccountId"]
            .iter()
            .find_map(|member| input.get(*member).and_then(Value::as_str))
            .map(str::to_owned),
        _ => None,
    };
    ApiError {
        code,
        message,
        resource_id,
    }
}

/// A response the server cannot finish, so that the connection is closed without the client
/// receiving a complete response.
///
/// The body claims one byte (`Content-Length: 1`) but its stream ends with none. hyper
/// detects the short body when it finishes the message (`NotEof`), abandons it and closes
/// the connection without flushing the buffered head, so the client sees the connection
/// closed before any response arrived. `aws-sdk-workspaces` reports that as
/// `SdkError::DispatchFailure` with a connector error of kind "other" (transient) wrapping
/// hyper's `IncompleteMessage`; hyper does not retry it on a pooled connection because the
/// request was fully sent.
fn dropped_response(request_id: &str) -> Response {
    let body = Body::from_stream(Body::empty().into_data_stream());
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("1"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// `GET /_emulator/calls`: the call log as a JSON array of [`CallRecord`].
async fn list_calls(State(emulator): State<Emulator>) -> Json<Vec<CallRecord>> {
    Json(emulator.calls())
}

/// `DELETE /_emulator/calls`: empties the call log; `204`.
async fn clear_calls(State(emulator): State<Emulator>) -> StatusCode {
    emulator.clear_calls();
    StatusCode::NO_CONTENT
}

/// `POST /_emulator/faults` with a JSON [`Fault`]: queues it; `204`, or `400` with
/// `{"message": ...}` when it could never fire (axum rejects malformed JSON itself).
async fn inject_fault(State(emulator): State<Emulator>, Json(fault): Json<Fault>) -> Response {
    match emulator.try_inject_fault(fault) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "message": error.to_string() })),
        )
            .into_response(),
    }
}

/// `DELETE /_emulator/faults`: drops every waiting fault; `204`.
async fn clear_faults(State(emulator): State<Emulator>) -> StatusCode {
    emulator.clear_faults();
    StatusCode::NO_CONTENT
}

/// `GET /_emulator/links`: every link, in creation order, as `AccountLink` JSON objects.
async fn list_links(State(emulator): State<Emulator>) -> Json<Vec<AccountLink>> {
    Json(emulator.links())
}
