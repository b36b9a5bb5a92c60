//! Huawei Cloud RAM (issue 12): the three resource-share invitation operations behind a
//! model of Huawei's API gateway, so [`crate::upstream::ram::huawei::HuaweiRam`] and the
//! official Python SDK (`huaweicloudsdkram`, with an endpoint override) talk to it unchanged.
//!
//! # Protocol
//! - `POST /v1/resource-share-invitations/search` (`SearchResourceShareInvitation`): the
//!   caller's received invitations, filtered by `resource_share_ids`,
//!   `resource_share_invitation_ids` and `status`, `limit` (1..=2000, default 2000) per page
//!   in creation order; `page_info.next_marker` is the last returned invitation's id while
//!   more follow.
//! - `POST /v1/resource-share-invitations/{id}/accept` (`AcceptResourceShareInvitation`) and
//!   `/reject` (`RejectResourceShareInvitation`): `{"resource_share_invitation": {...}}`.
//!
//! Wire shapes: [`crate::upstream::ram::huawei::model`]. Success is `200` with
//! `Content-Type: application/json`; failure is `{"error_code", "error_msg", "request_id"}`
//! with the status of its code. Every response carries `X-Request-Id`.
//!
//! # Authentication
//! Every call must carry a valid `SDK-HMAC-SHA256` signature
//! ([`crate::upstream::ram::huawei::signer::verify`]); a missing, malformed, stale (more than
//! 15 minutes off) or wrong one, an unknown access key, or a security token that is not the
//! one registered with the key, is `401` `APIGW.0301` `Incorrect IAM authentication
//! information: <detail>`, as Huawei's API gateway answers (API Request Signing Guide, FAQ
//! "Common Errors Related to IAM Authentication Information"). The caller is the domain the
//! access key was registered for ([`Emulator::huawei_register_credentials`]); by the dev
//! convention an access key id that is itself a domain id (32 lowercase hex), signed with
//! [`HUAWEI_DEV_SECRET_ACCESS_KEY`], is that domain. An `X-Domain-Id` header naming another
//! domain is `400` `RAM.1002`.
//!
//! # Lifecycle
//! Only the receiver sees or answers an invitation: anyone else gets `404`
//! [`codes::INVITATION_NOT_FOUND`], as for an unknown id. `pending` goes to `accepted` or
//! `rejected`, both final: answering again is `400` [`codes::INVITATION_NOT_PENDING`].
//! A malformed body, `limit` out of range, an unknown `status` or `marker` is `400`
//! [`codes::INVALID_PARAMETER`]. (The real service's codes for these three cases are not in
//! the part of its error table this work could read; see [`codes`].)
//!
//! # Test hooks
//! Calls go to the shared call log (operation names as above) and take the shared faults
//! ([`super::Fault::only_for`] with those names): throttling is `429` `APIGW.0308`, internal
//! errors `500` `RAM.InternalError`, an `AwsError` fault sends its code with the status the
//! emulator uses for it (else 400), latency and dropped connections as for WorkSpaces.
//! Invitations are created with [`Emulator::huawei_create_invitation`] or
//! `POST /_emulator/huawei/invitations` `{"sender_account_id", "receiver_account_id",
//! "resource_share_name"}` and listed with [`Emulator::huawei_invitations`] or
//! `GET /_emulator/huawei/invitations`.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

use super::{CallRecord, Emulator, FaultKind};
use crate::upstream::ram::huawei::model::{
    self, ErrorBody, Invitation, PageInfo, RespondResponse, SearchRequest, SearchResponse,
};
use crate::upstream::ram::huawei::{codes, parse_domain_id, signer};

/// The secret of the dev convention: an access key id that is a domain id, signed with this
/// secret, acts as that domain.
pub const HUAWEI_DEV_SECRET_ACCESS_KEY: &str = crate::upstream::ram::huawei::DEV_SECRET_ACCESS_KEY;

/// The operation names the call log records and faults may name.
pub(super) const OPERATIONS: [&str; 3] = [
    model::SEARCH_OPERATION,
    model::ACCEPT_OPERATION,
    model::REJECT_OPERATION,
];

/// Wire time layout, `2022-08-22T12:28:26.631Z` as in the API reference's examples.
const WIRE_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// One invitation the emulator holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HuaweiInvitation {
    /// `resource_share_invitation_id` (a UUID).
    pub invitation_id: String,
    /// `resource_share_id` (a UUID, one share per invitation).
    pub resource_share_id: String,
    /// `resource_share_name`.
    pub resource_share_name: String,
    /// The inviting domain.
    pub sender_account_id: String,
    /// The invited domain, the only one that sees and answers it.
    pub receiver_account_id: String,
    /// `pending`, `accepted` or `rejected`.
    pub status: String,
    /// Creation time (UTC).
    pub created_at: OffsetDateTime,
    /// Last change (UTC).
    pub updated_at: OffsetDateTime,
}

impl HuaweiInvitation {
    /// The wire form.
    fn to_wire(&self) -> Invitation {
        let time = |t: OffsetDateTime| t.format(WIRE_TIME).ok();
        Invitation {
            receiver_account_id: Some(self.receiver_account_id.clone()),
            resource_share_id: Some(self.resource_share_id.clone()),
            resource_share_name: Some(self.resource_share_name.clone()),
            resource_share_invitation_id: Some(self.invitation_id.clone()),
            sender_account_id: Some(self.sender_account_id.clone()),
            status: Some(self.status.clone()),
            created_at: time(self.created_at),
            updated_at: time(self.updated_at),
        }
    }
}

/// Credentials registered with [`Emulator::huawei_register_credentials`].
#[derive(Debug, Clone)]
struct Registered {
    secret_access_key: String,
    security_token: Option<String>,
    domain_id: String,
}

/// The Huawei RAM emulator's state: registered credentials and invitations.
#[derive(Debug, Default)]
pub(super) struct HuaweiState {
    credentials: HashMap<String, Registered>,
    /// In creation order.
    invitations: Vec<HuaweiInvitation>,
}

/// A Huawei error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HuaweiError {
    status: StatusCode,
    code: String,
    message: String,
}

impl HuaweiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::INVALID_PARAMETER, message)
    }

    fn auth(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            codes::APIGW_AUTH,
            format!("Incorrect IAM authentication information: {detail}"),
        )
    }

    /// The error an `AwsError` fault names, with the status the emulator uses for its code.
    fn injected(code: &str, message: &str) -> Self {
        let status = match code {
            codes::APIGW_AUTH => StatusCode::UNAUTHORIZED,
            codes::APIGW_NOT_AUTHORIZED => StatusCode::FORBIDDEN,
            codes::APIGW_THROTTLED => StatusCode::TOO_MANY_REQUESTS,
            codes::INVITATION_NOT_FOUND => StatusCode::NOT_FOUND,
            codes::INTERNAL_ERROR => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, code, message)
    }
}

/// The routes, merged into the emulator's router.
pub(super) fn routes() -> Router<Emulator> {
    Router::new()
        .route(model::SEARCH_PATH, post(search))
        .route("/v1/resource-share-invitations/{id}/accept", post(accept))
        .route("/v1/resource-share-invitations/{id}/reject", post(reject))
        .route(
            "/_emulator/huawei/invitations",
            post(create_invitation).get(list_invitations),
        )
}

/// A received call, as far as the handler needs it.
struct HuaweiCall {
    operation: &'static str,
    /// The invitation id of accept/reject.
    invitation_id: Option<String>,
    /// The authenticated domain, or why authentication failed.
    caller: Result<String, HuaweiError>,
    body: Bytes,
}

impl HuaweiCall {
    /// The request as the call log keeps it: the JSON body (else its text), plus the path's
    /// invitation id.
    fn logged_request(&self) -> Value {
        let mut value = if self.body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(serde_json::Map::new())
        } else {
            serde_json::from_slice(&self.body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into()))
        };
        if let (Some(id), Value::Object(map)) = (&self.invitation_id, &mut value) {
            map.insert(
                "resource_share_invitation_id".to_owned(),
                Value::String(id.clone()),
            );
        }
        value
    }
}

async fn search(
    State(emulator): State<Emulator>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    emulator
        .huawei_call(model::SEARCH_OPERATION, None, &method, &uri, &headers, body)
        .await
}

async fn accept(
    State(emulator): State<Emulator>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    emulator
        .huawei_call(
            model::ACCEPT_OPERATION,
            Some(id),
            &method,
            &uri,
            &headers,
            body,
        )
        .await
}

async fn reject(
    State(emulator): State<Emulator>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    emulator
        .huawei_call(
            model::REJECT_OPERATION,
            Some(id),
            &method,
            &uri,
            &headers,
            body,
        )
        .await
}

/// `POST /_emulator/huawei/invitations` body.
#[derive(Debug, Deserialize)]
struct CreateInvitation {
    sender_account_id: String,
    receiver_account_id: String,
    resource_share_name: String,
}

/// `POST /_emulator/huawei/invitations`: creates a pending invitation; `201` with its wire
/// form, or `400` `{"message"}` when a domain id is malformed.
async fn create_invitation(
    State(emulator): State<Emulator>,
    Json(input): Json<CreateInvitation>,
) -> Response {
    for id in [&input.sender_account_id, &input.receiver_account_id] {
        if let Err(message) = parse_domain_id(id) {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "message": message })),
            )
                .into_response();
        }
    }
    let invitation = emulator.huawei_create_invitation(
        &input.sender_account_id,
        &input.receiver_account_id,
        &input.resource_share_name,
    );
    (StatusCode::CREATED, Json(invitation.to_wire())).into_response()
}

/// `GET /_emulator/huawei/invitations`: every invitation in creation order, in wire form.
async fn list_invitations(State(emulator): State<Emulator>) -> Json<Vec<Invitation>> {
    Json(
        emulator
            .huawei_invitations()
            .iter()
            .map(HuaweiInvitation::to_wire)
            .collect(),
    )
}

fn json_response(status: StatusCode, request_id: &str, body: &impl serde::Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response
            .headers_mut()
            .insert(crate::upstream::ram::huawei::REQUEST_ID_HEADER, value);
    }
    response
}

fn error_response(request_id: &str, error: &HuaweiError) -> Response {
    let body = ErrorBody {
        error_code: Some(error.code.clone()),
        error_msg: Some(error.message.clone()),
        request_id: Some(request_id.to_owned()),
    };
    json_response(error.status, request_id, &body)
}

impl Emulator {
    /// Registers an AK/SK pair as `domain_id`'s (replacing an earlier registration of
    /// `access_key_id`): calls signed with it act as that domain.
    pub fn huawei_register_credentials(
        &self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        domain_id: impl Into<String>,
    ) {
        self.huawei_register(
            access_key_id.into(),
            secret_access_key.into(),
            None,
            domain_id.into(),
        );
    }

    /// Registers temporary credentials: as [`Emulator::huawei_register_credentials`], and
    /// calls must also send (and sign) `X-Security-Token: <security_token>`.
    pub fn huawei_register_temporary_credentials(
        &self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        security_token: impl Into<String>,
        domain_id: impl Into<String>,
    ) {
        self.huawei_register(
            access_key_id.into(),
            secret_access_key.into(),
            Some(security_token.into()),
            domain_id.into(),
        );
    }

    fn huawei_register(
        &self,
        access_key_id: String,
        secret_access_key: String,
        security_token: Option<String>,
        domain_id: String,
    ) {
        self.huawei_lock().credentials.insert(
            access_key_id,
            Registered {
                secret_access_key,
                security_token,
                domain_id,
            },
        );
    }

    /// Creates a `pending` invitation from `sender_domain_id` to `receiver_domain_id` for a
    /// new share named `share_name`, and returns it. The ids are not checked here (the HTTP
    /// hook checks them).
    pub fn huawei_create_invitation(
        &self,
        sender_domain_id: &str,
        receiver_domain_id: &str,
        share_name: &str,
    ) -> HuaweiInvitation {
        let now = now_millis();
        let invitation = HuaweiInvitation {
            invitation_id: uuid::Uuid::new_v4().to_string(),
            resource_share_id: uuid::Uuid::new_v4().to_string(),
            resource_share_name: share_name.to_owned(),
            sender_account_id: sender_domain_id.to_owned(),
            receiver_account_id: receiver_domain_id.to_owned(),
            status: "pending".to_owned(),
            created_at: now,
            updated_at: now,
        };
        self.huawei_lock().invitations.push(invitation.clone());
        invitation
    }

    /// Every invitation, in creation order.
    pub fn huawei_invitations(&self) -> Vec<HuaweiInvitation> {
        self.huawei_lock().invitations.clone()
    }

    fn huawei_lock(&self) -> MutexGuard<'_, HuaweiState> {
        self.huawei.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The domain that signed the request, as the API gateway decides it.
    fn huawei_authenticate(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<String, HuaweiError> {
        let mut registered = None;
        let verified = signer::verify(
            method,
            uri,
            headers,
            body,
            |access_key_id| {
                if let Some(found) = self.huawei_lock().credentials.get(access_key_id) {
                    registered = Some(found.clone());
                    return Some(found.secret_access_key.clone());
                }
                parse_domain_id(access_key_id)
                    .ok()
                    .map(|_| HUAWEI_DEV_SECRET_ACCESS_KEY.to_owned())
            },
            OffsetDateTime::now_utc(),
        )
        .map_err(HuaweiError::auth)?;
        let domain_id = match registered {
            Some(found) => {
                if found.security_token != verified.security_token {
                    return Err(HuaweiError::auth("decrypt token fail"));
                }
                found.domain_id
            }
            None => {
                if verified.security_token.is_some() {
                    return Err(HuaweiError::auth("decrypt token fail"));
                }
                verified.access_key_id
            }
        };
        if let Some(header) = headers.get(crate::upstream::ram::huawei::DOMAIN_ID_HEADER) {
            let named = header.to_str().unwrap_or_default();
            if named != domain_id {
                return Err(HuaweiError::new(
                    StatusCode::BAD_REQUEST,
                    codes::INVALID_DOMAIN_HEADER,
                    format!("The domain id {named} in the header is invalid."),
                ));
            }
        }
        Ok(domain_id)
    }

    /// Handles one API call: authenticates, logs it, takes its fault, runs it in its own
    /// task (so a state change sticks even if the client goes away), and answers.
    async fn huawei_call(
        &self,
        operation: &'static str,
        invitation_id: Option<String>,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let caller = self.huawei_authenticate(method, uri, headers, &body);
        let call = Arc::new(HuaweiCall {
            operation,
            invitation_id,
            caller,
            body,
        });
        let (seq, fault) = {
            let mut shared = self.lock();
            let fault = shared.faults.take(operation);
            shared.last_seq += 1;
            let seq = shared.last_seq;
            shared.calls.push(CallRecord {
                seq,
                operation: operation.to_owned(),
                account_id: call.caller.as_ref().ok().cloned(),
                client_token: None,
                request: call.logged_request(),
                error_code: None,
                request_id: request_id.clone(),
                fault: fault.clone(),
            });
            (seq, fault)
        };

        let worker = self.clone();
        let task_call = Arc::clone(&call);
        let task_fault = fault.clone();
        let task = tokio::spawn(async move {
            let call = task_call;
            let outcome = match &task_fault {
                Some(FaultKind::Throttling) => Err(HuaweiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    codes::APIGW_THROTTLED,
                    "The throttling threshold has been reached: policy user over ratelimit (injected fault)",
                )),
                Some(FaultKind::InternalServerError) => Err(HuaweiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    codes::INTERNAL_ERROR,
                    "Internal server error (injected fault).",
                )),
                Some(FaultKind::AwsError { code, message }) => {
                    Err(HuaweiError::injected(code, message))
                }
                Some(FaultKind::Latency { millis }) => {
                    tokio::time::sleep(Duration::from_millis(*millis)).await;
                    worker.huawei_handle(&call)
                }
                Some(FaultKind::DropConnection) | None => worker.huawei_handle(&call),
            };
            worker.huawei_finish(seq, outcome.as_ref().err().map(|e| e.code.clone()));
            outcome
        });
        let outcome = match task.await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!(%error, seq, "huawei emulator call task failed");
                let error = HuaweiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    codes::INTERNAL_ERROR,
                    "The emulator failed while handling the request.",
                );
                self.huawei_finish(seq, Some(error.code.clone()));
                Err(error)
            }
        };
        tracing::debug!(
            seq,
            operation,
            error_code = outcome.as_ref().err().map(|e| e.code.as_str()),
            "huawei emulator call handled"
        );
        if fault == Some(FaultKind::DropConnection) {
            return super::server::dropped_response(&request_id, "application/json");
        }
        match outcome {
            Ok(body) => json_response(StatusCode::OK, &request_id, &body),
            Err(error) => error_response(&request_id, &error),
        }
    }

    /// Records how call `seq` ended (a no-op if the log was cleared meanwhile).
    fn huawei_finish(&self, seq: u64, error_code: Option<String>) {
        let mut shared = self.lock();
        if let Some(record) = shared.calls.iter_mut().rev().find(|r| r.seq == seq) {
            record.error_code = error_code;
        }
    }

    /// Runs an authenticated call against the invitations.
    fn huawei_handle(&self, call: &HuaweiCall) -> Result<Value, HuaweiError> {
        let caller = call.caller.clone()?;
        match (call.operation, &call.invitation_id) {
            (model::SEARCH_OPERATION, _) => {
                let request: SearchRequest = if call.body.iter().all(u8::is_ascii_whitespace) {
                    SearchRequest::default()
                } else {
                    serde_json::from_slice(&call.body).map_err(|e| {
                        HuaweiError::invalid(format!("The request body is invalid: {e}"))
                    })?
                };
                let response = self.huawei_lock().search(&caller, &request)?;
                to_value(&response)
            }
            (operation, Some(id)) => {
                let accept = operation == model::ACCEPT_OPERATION;
                let response = self.huawei_lock().respond(&caller, id, accept)?;
                to_value(&response)
            }
            (operation, None) => Err(HuaweiError::invalid(format!(
                "{operation} needs an invitation id"
            ))),
        }
    }
}

/// `value` as JSON (a failure is the emulator's bug, answered as an internal error).
fn to_value(value: &impl serde::Serialize) -> Result<Value, HuaweiError> {
    serde_json::to_value(value).map_err(|e| {
        HuaweiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_ERROR,
            e.to_string(),
        )
    })
}

impl HuaweiState {
    /// `SearchResourceShareInvitation` as `caller`.
    fn search(&self, caller: &str, request: &SearchRequest) -> Result<SearchResponse, HuaweiError> {
        let limit = request.limit.unwrap_or(*model::LIMIT_RANGE.end());
        if !model::LIMIT_RANGE.contains(&limit) {
            return Err(HuaweiError::invalid(format!(
                "The limit {limit} is invalid: it must be between 1 and 2000."
            )));
        }
        if let Some(status) = &request.status
            && !matches!(status.as_str(), "pending" | "accepted" | "rejected")
        {
            return Err(HuaweiError::invalid(format!(
                "The status {status} is invalid."
            )));
        }
        let matches = |i: &&HuaweiInvitation| {
            i.receiver_account_id == caller
                && request
                    .resource_share_ids
                    .as_ref()
                    .is_none_or(|ids| ids.is_empty() || ids.contains(&i.resource_share_id))
                && request
                    .resource_share_invitation_ids
                    .as_ref()
                    .is_none_or(|ids| ids.is_empty() || ids.contains(&i.invitation_id))
                && request.status.as_ref().is_none_or(|s| *s == i.status)
        };
        let visible: Vec<&HuaweiInvitation> = self.invitations.iter().filter(matches).collect();
        let start = match &request.marker {
            None => 0,
            Some(marker) => {
                visible
                    .iter()
                    .position(|i| i.invitation_id == *marker)
                    .ok_or_else(|| {
                        HuaweiError::invalid(format!("The marker {marker} is invalid."))
                    })?
                    + 1
            }
        };
        let page: Vec<Invitation> = visible
            .iter()
            .skip(start)
            .take(limit as usize)
            .map(|i| i.to_wire())
            .collect();
        let end = start + page.len();
        let next_marker = (end < visible.len())
            .then(|| visible.get(end - 1).map(|i| i.invitation_id.clone()))
            .flatten();
        Ok(SearchResponse {
            page_info: Some(PageInfo {
                previous_marker: request.marker.clone(),
                next_marker,
                current_count: u32::try_from(page.len()).ok(),
            }),
            resource_share_invitations: page,
        })
    }

    /// `AcceptResourceShareInvitation` (`accept`) or `RejectResourceShareInvitation` of `id`
    /// as `caller`.
    fn respond(
        &mut self,
        caller: &str,
        id: &str,
        accept: bool,
    ) -> Result<RespondResponse, HuaweiError> {
        let invitation = self
            .invitations
            .iter_mut()
            .find(|i| i.invitation_id == id && i.receiver_account_id == caller)
            .ok_or_else(|| {
                HuaweiError::new(
                    StatusCode::NOT_FOUND,
                    codes::INVITATION_NOT_FOUND,
                    format!("The resource share invitation {id} does not exist."),
                )
            })?;
        if invitation.status != "pending" {
            return Err(HuaweiError::new(
                StatusCode::BAD_REQUEST,
                codes::INVITATION_NOT_PENDING,
                format!(
                    "The resource share invitation {id} has already been {}.",
                    invitation.status
                ),
            ));
        }
        invitation.status = if accept { "accepted" } else { "rejected" }.to_owned();
        invitation.updated_at = now_millis();
        Ok(RespondResponse {
            resource_share_invitation: Some(invitation.to_wire()),
        })
    }
}

/// Now, truncated to milliseconds (the wire's precision), so hook and wire times agree.
fn now_millis() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_millisecond(now.millisecond()).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, header};
    use tower::ServiceExt;

    use super::*;
    use crate::emulator::Fault;

    const SENDER: &str = "0123456789abcdef0123456789abcdef";
    const RECEIVER: &str = "fedcba9876543210fedcba9876543210";

    /// Sends a signed call through the router as `access_key_id`/`secret`.
    async fn call(
        emulator: &Emulator,
        path: &str,
        body: &str,
        access_key_id: &str,
        secret: &str,
    ) -> (StatusCode, Value, bool) {
        let uri: Uri = path.parse().expect("uri");
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("localhost"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let credentials = signer::Credentials {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret.to_owned(),
            security_token: None,
        };
        signer::sign(
            &Method::POST,
            &uri,
            &mut headers,
            body.as_bytes(),
            &credentials,
            OffsetDateTime::now_utc(),
        )
        .expect("signs");
        let mut request = Request::post(uri)
            .body(Body::from(body.to_owned()))
            .expect("request");
        *request.headers_mut() = headers;
        let response = emulator
            .router()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let has_request_id = response.headers().contains_key("x-request-id");
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value, has_request_id)
    }

    #[tokio::test]
    async fn dev_keys_act_as_their_domain_and_only_the_receiver_sees() {
        let emulator = Emulator::new();
        let invitation = emulator.huawei_create_invitation(SENDER, RECEIVER, "share");
        let dev = HUAWEI_DEV_SECRET_ACCESS_KEY;
        let (status, body, has_id) = call(&emulator, model::SEARCH_PATH, "{}", RECEIVER, dev).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(has_id);
        assert_eq!(
            body["resource_share_invitations"][0]["resource_share_invitation_id"],
            invitation.invitation_id.as_str()
        );
        let (_, body, _) = call(&emulator, model::SEARCH_PATH, "{}", SENDER, dev).await;
        assert_eq!(body["resource_share_invitations"], serde_json::json!([]));

        let accept = model::respond_path(&invitation.invitation_id, true);
        let (status, body, _) = call(&emulator, &accept, "", SENDER, dev).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error_code"], codes::INVITATION_NOT_FOUND);
        let (status, body, _) = call(&emulator, &accept, "", RECEIVER, dev).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["resource_share_invitation"]["status"], "accepted");
        let reject = model::respond_path(&invitation.invitation_id, false);
        let (status, body, _) = call(&emulator, &reject, "", RECEIVER, dev).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error_code"], codes::INVITATION_NOT_PENDING);
        assert_eq!(emulator.huawei_invitations()[0].status, "accepted");

        let (status, body, has_id) =
            call(&emulator, model::SEARCH_PATH, "{}", RECEIVER, "wrong").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(has_id);
        assert_eq!(body["error_code"], "APIGW.0301");
        assert!(
            body["error_msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("Incorrect IAM authentication information: ")),
            "{body}"
        );

        let operations: Vec<_> = emulator.calls().into_iter().map(|c| c.operation).collect();
        assert_eq!(
            operations,
            [
                "SearchResourceShareInvitation",
                "SearchResourceShareInvitation",
                "AcceptResourceShareInvitation",
                "AcceptResourceShareInvitation",
                "RejectResourceShareInvitation",
                "SearchResourceShareInvitation",
            ]
        );
        let last = emulator.calls().pop().expect("logged");
        assert_eq!(last.account_id, None);
        assert_eq!(last.error_code.as_deref(), Some("APIGW.0301"));
    }

    #[tokio::test]
    async fn search_pages_filters_and_validates() {
        let emulator = Emulator::new();
        let ids: Vec<String> = (0..5)
            .map(|n| {
                emulator
                    .huawei_create_invitation(SENDER, RECEIVER, &format!("share-{n}"))
                    .invitation_id
            })
            .collect();
        emulator.huawei_register_credentials("AK1", "SK1", RECEIVER);
        let mut seen = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let body = match &marker {
                Some(m) => format!(r#"{{"limit":2,"marker":"{m}"}}"#),
                None => r#"{"limit":2}"#.to_owned(),
            };
            let (status, page, _) = call(&emulator, model::SEARCH_PATH, &body, "AK1", "SK1").await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for i in page["resource_share_invitations"]
                .as_array()
                .expect("array")
            {
                seen.push(
                    i["resource_share_invitation_id"]
                        .as_str()
                        .expect("id")
                        .to_owned(),
                );
            }
            match page["page_info"]["next_marker"].as_str() {
                Some(m) => marker = Some(m.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, ids);

        let body = format!(
            r#"{{"resource_share_invitation_ids":["{}"],"status":"pending"}}"#,
            ids[3]
        );
        let (_, page, _) = call(&emulator, model::SEARCH_PATH, &body, "AK1", "SK1").await;
        assert_eq!(
            page["resource_share_invitations"].as_array().map(Vec::len),
            Some(1)
        );
        for bad in [
            r#"{"limit":0}"#,
            r#"{"limit":2001}"#,
            r#"{"status":"done"}"#,
            r#"{"marker":"nope"}"#,
            "[1",
        ] {
            let (status, body, _) = call(&emulator, model::SEARCH_PATH, bad, "AK1", "SK1").await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(body["error_code"], codes::INVALID_PARAMETER, "{bad}");
        }
    }

    #[tokio::test]
    async fn faults_take_huawei_shapes() {
        let emulator = Emulator::new();
        emulator
            .try_inject_fault(
                Fault::new(FaultKind::Throttling, 1).only_for(model::SEARCH_OPERATION),
            )
            .expect("huawei operations are valid fault targets");
        emulator.inject_fault(Fault::new(FaultKind::InternalServerError, 1));
        let dev = HUAWEI_DEV_SECRET_ACCESS_KEY;
        let (status, body, _) = call(&emulator, model::SEARCH_PATH, "{}", RECEIVER, dev).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error_code"], codes::APIGW_THROTTLED);
        let (status, body, _) = call(&emulator, model::SEARCH_PATH, "{}", RECEIVER, dev).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error_code"], codes::INTERNAL_ERROR);
        let (status, _, _) = call(&emulator, model::SEARCH_PATH, "{}", RECEIVER, dev).await;
        assert_eq!(status, StatusCode::OK);
        let faults: Vec<_> = emulator.calls().into_iter().map(|c| c.fault).collect();
        assert_eq!(
            faults,
            [
                Some(FaultKind::Throttling),
                Some(FaultKind::InternalServerError),
                None
            ]
        );
    }
}
