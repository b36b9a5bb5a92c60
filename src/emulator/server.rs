//! The emulator's axum handlers: `POST /` (WorkSpaces over JSON 1.1 and STS `AssumeRole` over
//! the query protocol, told apart by the request's shape) and the `/_emulator/*` control
//! endpoints used by tests and by operators of the standalone emulator.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use time::OffsetDateTime;

use super::protocol::{self, ApiError, ErrorCode, JSON_CONTENT_TYPE, Operation, REQUEST_ID_HEADER};
use super::sts::{self, AssumedRole, StsCall, StsError, StsErrorCode};
use super::{AccountLink, CallRecord, Emulator, Fault, FaultKind};

/// Builds the router over `emulator`.
pub(super) fn router(emulator: Emulator) -> Router {
    Router::new()
        .route("/", post(api))
        .route("/_emulator/calls", get(list_calls).delete(clear_calls))
        .route("/_emulator/faults", post(inject_fault).delete(clear_faults))
        .route("/_emulator/links", get(list_links))
        .merge(super::ram::routes())
        .merge(super::huawei::routes())
        .with_state(emulator)
}

/// A request to `POST /` in the protocol it speaks.
#[derive(Debug)]
enum Call {
    /// AWS JSON 1.1 (`X-Amz-Target`): a WorkSpaces account-link operation.
    Workspaces(WorkspacesCall),
    /// AWS query (a form body with `Action=`, no `X-Amz-Target`): STS `AssumeRole`.
    Sts(StsCall),
}

/// How a call ended, in its protocol's terms.
#[derive(Debug)]
enum Outcome {
    Workspaces(Result<Value, ApiError>),
    Sts(Result<AssumedRole, StsError>),
}

impl Call {
    /// Reads a request: an STS query call when it is one (see [`StsCall::parse`]), else a
    /// JSON 1.1 call (an unknown or missing `X-Amz-Target` included).
    fn parse(headers: &HeaderMap, body: &[u8]) -> Self {
        match StsCall::parse(headers, body) {
            Some(call) => Call::Sts(call),
            None => Call::Workspaces(WorkspacesCall::parse(headers, body)),
        }
    }

    /// The operation name for the call log and fault matching.
    fn label(&self) -> &str {
        match self {
            Call::Workspaces(call) => &call.label,
            Call::Sts(call) => call.action(),
        }
    }

    /// The account the call log names: the caller's for WorkSpaces, the role's for STS.
    fn account_id(&self) -> Option<&str> {
        match self {
            Call::Workspaces(call) => call.caller.as_deref().ok(),
            Call::Sts(call) => call.role_account(),
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
        let request = match self {
            Call::Workspaces(call) => call.logged_request(body),
            Call::Sts(call) => call.logged_request(),
        };
        let client_token = match self {
            Call::Workspaces(_) => request
                .get("ClientToken")
                .and_then(Value::as_str)
                .map(str::to_owned),
            Call::Sts(_) => None,
        };
        CallRecord {
            seq,
            operation: self.label().to_owned(),
            account_id: self.account_id().map(str::to_owned),
            client_token,
            request,
            error_code: None,
            request_id: request_id.to_owned(),
            fault,
        }
    }

    /// The failure an injected fault answers with instead of handling the call, if it does.
    fn injected(&self, fault: Option<&FaultKind>) -> Option<Outcome> {
        let (code, message) = match fault? {
            FaultKind::Throttling => match self {
                Call::Workspaces(_) => (ErrorCode::Throttling.as_str(), "Rate exceeded"),
                Call::Sts(_) => (StsErrorCode::Throttling.as_str(), "Rate exceeded"),
            },
            FaultKind::InternalServerError => match self {
                Call::Workspaces(_) => (
                    ErrorCode::InternalServer.as_str(),
                    "Unexpected server error occured (injected fault).",
                ),
                Call::Sts(_) => (
                    StsErrorCode::InternalFailure.as_str(),
                    "An internal error occurred (injected fault).",
                ),
            },
            FaultKind::AwsError { code, message } => (code.as_str(), message.as_str()),
            FaultKind::Latency { .. } | FaultKind::DropConnection => return None,
        };
        Some(match self {
            Call::Workspaces(call) => {
                Outcome::Workspaces(Err(call.injected_error(code, message.to_owned())))
            }
            Call::Sts(_) => {
                Outcome::Sts(Err(StsError::new(StsErrorCode::from_name(code), message)))
            }
        })
    }

    /// The outcome of a call whose handling task failed.
    fn internal_failure(&self) -> Outcome {
        let message = "The emulator failed while handling the request.";
        match self {
            Call::Workspaces(_) => {
                Outcome::Workspaces(Err(ApiError::new(ErrorCode::InternalServer, message)))
            }
            Call::Sts(_) => {
                Outcome::Sts(Err(StsError::new(StsErrorCode::InternalFailure, message)))
            }
        }
    }

    /// `Content-Type` of the call's responses.
    fn content_type(&self) -> &'static str {
        match self {
            Call::Workspaces(_) => JSON_CONTENT_TYPE,
            Call::Sts(_) => sts::XML_CONTENT_TYPE,
        }
    }
}

impl Outcome {
    /// The error code the call ended with, `None` on success.
    fn error_code(&self) -> Option<&str> {
        match self {
            Outcome::Workspaces(result) => result.as_ref().err().map(|e| e.code.as_str()),
            Outcome::Sts(result) => result.as_ref().err().map(|e| e.code.as_str()),
        }
    }

    fn into_response(self, request_id: &str) -> Response {
        match self {
            Outcome::Workspaces(Ok(body)) => protocol::success_response(request_id, &body),
            Outcome::Workspaces(Err(error)) => protocol::error_response(request_id, &error),
            Outcome::Sts(Ok(role)) => sts::success_response(request_id, &role),
            Outcome::Sts(Err(error)) => sts::error_response(request_id, &error),
        }
    }
}

/// A JSON 1.1 request to `POST /`, read as far as it can be before it is handled. Each part
/// keeps the exception it would end with, so the call can be logged whatever is wrong with it.
#[derive(Debug)]
struct WorkspacesCall {
    /// The operation name for the call log and fault matching.
    label: String,
    operation: Result<Operation, ApiError>,
    caller: Result<String, ApiError>,
    input: Result<Value, ApiError>,
}

impl WorkspacesCall {
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

    /// The request body as the call log keeps it: the JSON value, else the raw text.
    fn logged_request(&self, body: &[u8]) -> Value {
        match &self.input {
            Ok(value) => value.clone(),
            Err(_) => Value::String(String::from_utf8_lossy(body).into_owned()),
        }
    }

    /// The exception an `AwsError` fault answers with; a `ResourceNotFoundException` names
    /// the request's `LinkId` (else `LinkedAccountId`) as its `ResourceId`, like a real one
    /// would.
    fn injected_error(&self, code: &str, message: String) -> ApiError {
        let code = ErrorCode::from_name(code);
        let resource_id = match (&code, &self.input) {
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
}

impl Emulator {
    /// Logs the arrival of `call` and consumes the fault that applies to it, if any.
    fn begin_call(&self, call: &Call, request_id: &str, body: &[u8]) -> (u64, Option<FaultKind>) {
        let mut shared = self.lock();
        let fault = shared.faults.take(call.label());
        shared.last_seq += 1;
        let seq = shared.last_seq;
        let record = call.record(seq, request_id, body, fault.clone());
        shared.calls.push(record);
        (seq, fault)
    }

    /// Records how call `seq` ended (a no-op if the log was cleared meanwhile).
    fn finish_call(&self, seq: u64, outcome: &Outcome) {
        let error_code = outcome.error_code().map(str::to_owned);
        let mut shared = self.lock();
        if let Some(record) = shared.calls.iter_mut().rev().find(|r| r.seq == seq) {
            record.error_code = error_code;
        }
    }

    /// Handles a call with no fault applied.
    fn handle(&self, call: &Call) -> Outcome {
        match call {
            Call::Workspaces(call) => Outcome::Workspaces(self.handle_workspaces(call)),
            Call::Sts(call) => {
                Outcome::Sts(call.execute(&self.lock().roles, OffsetDateTime::now_utc()))
            }
        }
    }

    /// Handles a JSON 1.1 call: authenticates, resolves the operation, reads the input, and
    /// runs the operation against the links, in that order.
    ///
    /// Only the links' lock is taken: shared by the read-only operations, exclusive for the
    /// others, and released before the response is serialized.
    fn handle_workspaces(&self, call: &WorkspacesCall) -> Result<Value, ApiError> {
        let caller = call.caller.as_deref().map_err(Clone::clone)?;
        let operation = call.operation.clone()?;
        let input = call.input.as_ref().map_err(Clone::clone)?;
        if operation.is_read_only() {
            self.read_links().query(operation, caller, input)
        } else {
            self.write_links().execute(operation, caller, input)
        }
    }
}

/// `POST /`: one JSON 1.1 (WorkSpaces) or query (STS) call.
///
/// The call is logged on arrival, the next matching fault is consumed, and the work runs in
/// its own task so that it completes (and its state change sticks) even if the client has
/// gone away, as it would on AWS.
async fn api(State(emulator): State<Emulator>, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let call = Arc::new(Call::parse(&headers, &body));
    let (seq, fault) = emulator.begin_call(&call, &request_id, &body);

    let worker = emulator.clone();
    let task_call = Arc::clone(&call);
    let task_fault = fault.clone();
    let task = tokio::spawn(async move {
        let call = task_call;
        let outcome = match call.injected(task_fault.as_ref()) {
            Some(outcome) => outcome,
            None => {
                if let Some(FaultKind::Latency { millis }) = task_fault {
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                }
                worker.handle(&call)
            }
        };
        worker.finish_call(seq, &outcome);
        tracing::debug!(
            seq,
            operation = %call.label(),
            account_id = call.account_id(),
            error_code = outcome.error_code(),
            "emulator call handled"
        );
        outcome
    });
    let outcome = match task.await {
        Ok(outcome) => outcome,
        Err(error) => {
            tracing::error!(%error, seq, "emulator call task failed");
            let outcome = call.internal_failure();
            emulator.finish_call(seq, &outcome);
            outcome
        }
    };

    if fault == Some(FaultKind::DropConnection) {
        return dropped_response(&request_id, call.content_type());
    }
    outcome.into_response(&request_id)
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
pub(super) fn dropped_response(request_id: &str, content_type: &'static str) -> Response {
    let body = Body::from_stream(Body::empty().into_data_stream());
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("1"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_config::sts::AssumeRoleProvider;
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::ProvideCredentials;
    use axum::body::to_bytes;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=000000000000/20240101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=abc";
    const ROLE: &str = "arn:aws:iam::111111111111:role/linker";
    const FORM: &str = "application/x-www-form-urlencoded";

    fn assume_role_body(extra: &str) -> String {
        format!(
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A111111111111%3Arole%2Flinker&RoleSessionName=s1{extra}"
        )
    }

    /// Sends one `POST /` through the router; returns status, content type and body text.
    async fn post(
        emulator: &Emulator,
        headers: &[(&str, &str)],
        body: String,
    ) -> (StatusCode, String, String) {
        let mut request = Request::post("/");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body)).expect("valid request");
        let response = emulator
            .router()
            .oneshot(request)
            .await
            .expect("router is infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(response.headers().contains_key(REQUEST_ID_HEADER));
        let body = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body reads");
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).expect("utf-8 body"),
        )
    }

    async fn assume_role(emulator: &Emulator, extra: &str) -> (StatusCode, String, String) {
        post(
            emulator,
            &[("authorization", AUTH), ("content-type", FORM)],
            assume_role_body(extra),
        )
        .await
    }

    #[tokio::test]
    async fn form_calls_are_sts_and_are_logged_under_the_role_account() {
        let emulator = Emulator::new();
        emulator.require_external_id(ROLE, "ext-1");
        let (status, content_type, body) = assume_role(&emulator, "&ExternalId=ext-1").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(content_type, "text/xml");
        assert!(body.starts_with(
            "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        ));
        assert!(body.contains("<AccessKeyId>111111111111</AccessKeyId>"));
        assert!(body.contains("<Arn>arn:aws:sts::111111111111:assumed-role/linker/s1</Arn>"));

        let (status, _, body) = assume_role(&emulator, "&ExternalId=wrong").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
        assert!(body.contains("<Type>Sender</Type>"), "{body}");

        let calls = emulator.calls();
        assert_eq!(calls.len(), 2);
        for call in &calls {
            assert_eq!(call.operation, "AssumeRole");
            assert_eq!(call.account_id.as_deref(), Some("111111111111"));
            assert_eq!(call.client_token, None);
            assert_eq!(call.request["ExternalId"], "<redacted>");
            assert_eq!(call.request["RoleArn"], ROLE);
        }
        assert_eq!(calls[0].error_code, None);
        assert_eq!(calls[1].error_code.as_deref(), Some("AccessDenied"));
    }

    #[tokio::test]
    async fn unsigned_sts_calls_are_rejected_and_json_calls_are_unchanged() {
        let emulator = Emulator::new();
        let (status, _, body) =
            post(&emulator, &[("content-type", FORM)], assume_role_body("")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            body.contains("<Code>MissingAuthenticationToken</Code>"),
            "{body}"
        );

        // No target and no form `Action`: still a JSON 1.1 call with no target.
        let (status, content_type, body) =
            post(&emulator, &[("authorization", AUTH)], "{}".to_owned()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(content_type, JSON_CONTENT_TYPE);
        assert!(body.contains("UnknownOperationException"), "{body}");
        // A target wins over a form body.
        let (_, content_type, body) = post(
            &emulator,
            &[
                ("authorization", AUTH),
                ("x-amz-target", "WorkspacesService.ListAccountLinks"),
            ],
            "Action=AssumeRole".to_owned(),
        )
        .await;
        assert_eq!(content_type, JSON_CONTENT_TYPE);
        assert!(body.contains("SerializationException"), "{body}");
        let operations: Vec<_> = emulator.calls().into_iter().map(|c| c.operation).collect();
        assert_eq!(operations, ["AssumeRole", "", "ListAccountLinks"]);
    }

    #[tokio::test]
    async fn faults_apply_to_assume_role_when_scoped_to_it_or_unscoped() {
        let emulator = Emulator::new();
        emulator
            .try_inject_fault(Fault::new(FaultKind::Throttling, 1).only_for("AssumeRole"))
            .expect("valid fault");
        emulator.inject_fault(Fault::new(FaultKind::InternalServerError, 1));
        emulator.inject_fault(
            Fault::new(
                FaultKind::AwsError {
                    code: "AccessDenied".to_owned(),
                    message: "nope".to_owned(),
                },
                1,
            )
            .only_for("AssumeRole"),
        );
        let (status, _, body) = assume_role(&emulator, "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("<Code>Throttling</Code>"), "{body}");
        let (status, _, body) = assume_role(&emulator, "").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("<Code>InternalFailure</Code>"), "{body}");
        assert!(body.contains("<Type>Receiver</Type>"), "{body}");
        let (status, _, body) = assume_role(&emulator, "").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("<Message>nope</Message>"), "{body}");
        let (status, _, _) = assume_role(&emulator, "").await;
        assert_eq!(status, StatusCode::OK);
        let codes: Vec<_> = emulator.calls().into_iter().map(|c| c.error_code).collect();
        assert_eq!(
            codes,
            [
                Some("Throttling".to_owned()),
                Some("InternalFailure".to_owned()),
                Some("AccessDenied".to_owned()),
                None
            ]
        );
    }

    /// Static base credentials for account `000000000000`, aimed at `endpoint_url`.
    async fn sdk_config(endpoint_url: String) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::from_static("us-east-1"))
            .endpoint_url(endpoint_url)
            .credentials_provider(Credentials::new(
                "000000000000",
                "emulator",
                None,
                None,
                "static",
            ))
            .load()
            .await
    }

    #[tokio::test]
    async fn assume_role_provider_reads_the_credentials_and_the_errors() {
        let running = Emulator::new().spawn().await.expect("emulator starts");
        running.emulator().require_external_id(ROLE, "ext-1");
        let config = sdk_config(running.endpoint_url()).await;

        let provider = AssumeRoleProvider::builder(ROLE)
            .session_name("unit")
            .external_id("ext-1")
            .session_length(Duration::from_secs(900))
            .configure(&config)
            .build()
            .await;
        let before = std::time::SystemTime::now();
        let credentials = provider.provide_credentials().await.expect("assumed");
        assert_eq!(credentials.access_key_id(), "111111111111");
        assert_eq!(credentials.secret_access_key().len(), 40);
        assert!(credentials.session_token().is_some());
        let expiry = credentials.expiry().expect("expiry set");
        let lifetime = expiry.duration_since(before).expect("in the future");
        assert!(
            (Duration::from_secs(898)..=Duration::from_secs(901)).contains(&lifetime),
            "{lifetime:?}"
        );
        assert_eq!(
            credentials.account_id().map(|id| id.as_str()),
            Some("111111111111")
        );

        let denied = AssumeRoleProvider::builder(ROLE)
            .session_name("unit")
            .configure(&config)
            .build()
            .await;
        let error = denied.provide_credentials().await.expect_err("denied");
        let text = format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(&error)
        );
        assert!(text.contains("AccessDenied"), "{text}");
        assert!(
            text.contains("is not authorized to perform: sts:AssumeRole"),
            "{text}"
        );
    }

    /// Not a test: 20 000 `CreateAccountLinkInvitation` calls through `aws-sdk-workspaces`
    /// at concurrency 16 (16 source accounts, fresh targets), in four rounds of 5 000, so
    /// the rate shows how the emulator copes as links accumulate. Run with
    /// `cargo test --release --lib sdk_create_throughput -- --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark: run with --ignored --nocapture"]
    async fn sdk_create_throughput() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        const ROUND: usize = 5_000;
        const CONCURRENCY: usize = 16;
        let running = Emulator::new().spawn().await.expect("emulator starts");
        let config = sdk_config(running.endpoint_url()).await;
        let clients: Vec<aws_sdk_workspaces::Client> = (0..CONCURRENCY)
            .map(|s| {
                let account = format!("{:012}", 900_000_000_000_u64 + s as u64);
                let conf = aws_sdk_workspaces::config::Builder::from(&config)
                    .credentials_provider(Credentials::new(account, "x", None, None, "static"))
                    .build();
                aws_sdk_workspaces::Client::from_conf(conf)
            })
            .collect();
        let next = Arc::new(AtomicUsize::new(0));
        for round in 1..=4 {
            let end = round * ROUND;
            let started = std::time::Instant::now();
            let workers: Vec<_> = clients
                .iter()
                .cloned()
                .map(|client| {
                    let next = Arc::clone(&next);
                    tokio::spawn(async move {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= end {
                                next.fetch_sub(1, Ordering::Relaxed);
                                break;
                            }
                            client
                                .create_account_link_invitation()
                                .target_account_id(format!(
                                    "{:012}",
                                    100_000_000_000_u64 + i as u64
                                ))
                                .client_token(format!("t-{i}"))
                                .send()
                                .await
                                .expect("create succeeds");
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker.await.expect("worker finishes");
            }
            let elapsed = started.elapsed();
            println!(
                "round {round}: links {:>6}: {:.0} creates/s",
                end,
                ROUND as f64 / elapsed.as_secs_f64()
            );
        }
        assert_eq!(running.emulator().links().len(), 4 * ROUND);
    }
}
