//! The AWS JSON 1.1 wire protocol as the emulator speaks it: which operation a request names
//! (`X-Amz-Target`), which account is calling (the SigV4 `Authorization` header), and how
//! successes and errors are written back.
//!
//! The error envelope follows what both clients parse: the Rust SDK (`aws-smithy-json`
//! `protocol/error.rs`) takes the code from `x-amzn-errortype`, else from the body's `code` /
//! `__type`, and the message from `message` / `Message`; botocore's JSON parser takes the code
//! from `__type` and the message from `message` / `Message`. Both strip a `namespace#` prefix
//! and a `:url` suffix, so the plain exception name is sent in both places.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// Prefix of `X-Amz-Target`: the Smithy service shape name of Amazon WorkSpaces.
pub(super) const TARGET_PREFIX: &str = "WorkspacesService.";

/// `Content-Type` of every JSON 1.1 request and response body.
pub(super) const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Response header carrying the request id (read by `aws-types` `request_id.rs` and botocore).
pub(super) const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-amzn-requestid");

/// Response header naming the exception of an error response.
pub(super) const ERROR_TYPE_HEADER: HeaderName = HeaderName::from_static("x-amzn-errortype");

/// One of the six account-link operations of the WorkSpaces API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Operation {
    /// `CreateAccountLinkInvitation`: the source invites a target account.
    CreateAccountLinkInvitation,
    /// `AcceptAccountLinkInvitation`: the target accepts.
    AcceptAccountLinkInvitation,
    /// `RejectAccountLinkInvitation`: the target rejects.
    RejectAccountLinkInvitation,
    /// `DeleteAccountLinkInvitation`: the source withdraws an invitation.
    DeleteAccountLinkInvitation,
    /// `GetAccountLink`: either party reads one link.
    GetAccountLink,
    /// `ListAccountLinks`: either party lists its links.
    ListAccountLinks,
}

impl Operation {
    /// Every operation, in the order of the API reference.
    pub(super) const ALL: [Operation; 6] = [
        Operation::CreateAccountLinkInvitation,
        Operation::AcceptAccountLinkInvitation,
        Operation::RejectAccountLinkInvitation,
        Operation::DeleteAccountLinkInvitation,
        Operation::GetAccountLink,
        Operation::ListAccountLinks,
    ];

    /// The operation name as AWS spells it (the part of `X-Amz-Target` after the dot).
    pub(super) fn name(self) -> &'static str {
        match self {
            Operation::CreateAccountLinkInvitation => "CreateAccountLinkInvitation",
            Operation::AcceptAccountLinkInvitation => "AcceptAccountLinkInvitation",
            Operation::RejectAccountLinkInvitation => "RejectAccountLinkInvitation",
            Operation::DeleteAccountLinkInvitation => "DeleteAccountLinkInvitation",
            Operation::GetAccountLink => "GetAccountLink",
            Operation::ListAccountLinks => "ListAccountLinks",
        }
    }

    /// Whether the operation only reads links (`GetAccountLink`, `ListAccountLinks`).
    pub(super) fn is_read_only(self) -> bool {
        matches!(
            self,
            Operation::GetAccountLink | Operation::ListAccountLinks
        )
    }

    /// Looks an operation up by its AWS name (case-sensitive, as AWS matches it).
    pub(super) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Resolves the operation of a request from its `X-Amz-Target` header value.
    ///
    /// # Errors
    /// `UnknownOperationException` when the header is missing, has another service prefix, or
    /// names an operation the emulator does not implement.
    pub(super) fn from_target(target: Option<&str>) -> Result<Self, ApiError> {
        target
            .and_then(|t| t.strip_prefix(TARGET_PREFIX))
            .and_then(Self::from_name)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnknownOperation,
                    format!(
                        "Unknown operation: {}",
                        target.unwrap_or("<missing X-Amz-Target>")
                    ),
                )
            })
    }
}

/// The exceptions the emulator sends, each with the HTTP status AWS uses for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ErrorCode {
    /// `AccessDeniedException` (400): the caller is a party to the link but not the one allowed.
    AccessDenied,
    /// `ConflictException` (400): the link or target is in the wrong state.
    Conflict,
    /// `InternalServerException` (500 here; the API reference lists 400, but a 5xx is what the
    /// SDKs classify as a transient server error, which is what tests inject it for).
    InternalServer,
    /// `ResourceNotFoundException` (400): no such link visible to the caller.
    ResourceNotFound,
    /// `ValidationException` (400): input violates the model's constraints or a business rule.
    Validation,
    /// `ThrottlingException` (400): common error, only produced by fault injection.
    Throttling,
    /// `UnknownOperationException` (400): `X-Amz-Target` names nothing the emulator serves.
    UnknownOperation,
    /// `SerializationException` (400): the body is not a JSON object of the right member types.
    Serialization,
    /// `MissingAuthenticationTokenException` (403): no parseable SigV4 `Authorization` header.
    MissingAuthenticationToken,
    /// `UnrecognizedClientException` (403): the access key id is not a 12-digit account id.
    UnrecognizedClient,
    /// Any other code (400), only produced by an injected `AwsError` fault.
    Other(String),
}

impl ErrorCode {
    /// Every named code, for looking one up by name.
    const NAMED: [ErrorCode; 10] = [
        ErrorCode::AccessDenied,
        ErrorCode::Conflict,
        ErrorCode::InternalServer,
        ErrorCode::ResourceNotFound,
        ErrorCode::Validation,
        ErrorCode::Throttling,
        ErrorCode::UnknownOperation,
        ErrorCode::Serialization,
        ErrorCode::MissingAuthenticationToken,
        ErrorCode::UnrecognizedClient,
    ];

    /// The code named `name`: a named variant when there is one, else [`ErrorCode::Other`].
    pub(super) fn from_name(name: &str) -> Self {
        Self::NAMED
            .into_iter()
            .find(|code| code.as_str() == name)
            .unwrap_or_else(|| ErrorCode::Other(name.to_owned()))
    }

    /// The exception name written to `__type` and `x-amzn-ErrorType`.
    pub(super) fn as_str(&self) -> &str {
        match self {
            ErrorCode::AccessDenied => "AccessDeniedException",
            ErrorCode::Conflict => "ConflictException",
            ErrorCode::InternalServer => "InternalServerException",
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
            ErrorCode::Validation => "ValidationException",
            ErrorCode::Throttling => "ThrottlingException",
            ErrorCode::UnknownOperation => "UnknownOperationException",
            ErrorCode::Serialization => "SerializationException",
            ErrorCode::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorCode::UnrecognizedClient => "UnrecognizedClientException",
            ErrorCode::Other(name) => name,
        }
    }

    /// The HTTP status of the error response.
    ///
    /// The WorkSpaces API reference gives 400 for every modeled exception; the AWS "Common
    /// Errors" page gives 403 for the authentication failures and 500 for internal failures.
    pub(super) fn status(&self) -> StatusCode {
        match self {
            ErrorCode::InternalServer => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::MissingAuthenticationToken | ErrorCode::UnrecognizedClient => {
                StatusCode::FORBIDDEN
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An AWS exception on its way to the client: code, message and, for
/// `ResourceNotFoundException`, the `ResourceId` member the WorkSpaces model defines.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub(super) struct ApiError {
    pub(super) code: ErrorCode,
    pub(super) message: String,
    pub(super) resource_id: Option<String>,
}

impl ApiError {
    /// An exception with a message and no extra members.
    pub(super) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            resource_id: None,
        }
    }

    /// A `ValidationException`.
    pub(super) fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Validation, message)
    }

    /// A `SerializationException` for a body that cannot be read as the operation's input.
    pub(super) fn serialization(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Serialization, message)
    }

    /// A `ResourceNotFoundException` naming the resource (a link id or an account id).
    pub(super) fn not_found(resource_id: &str) -> Self {
        Self {
            code: ErrorCode::ResourceNotFound,
            message: "The resource could not be found.".to_owned(),
            resource_id: Some(resource_id.to_owned()),
        }
    }

    /// The JSON error body: `{"__type": <code>, "message": <text>, "ResourceId"?: <id>}`.
    pub(super) fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("__type".to_owned(), Value::from(self.code.as_str()));
        body.insert("message".to_owned(), Value::from(self.message.clone()));
        if let Some(resource_id) = &self.resource_id {
            body.insert("ResourceId".to_owned(), Value::from(resource_id.clone()));
        }
        Value::Object(body)
    }
}

/// Identifies the calling account from the SigV4 `Authorization` header.
///
/// The header looks like `AWS4-HMAC-SHA256 Credential=<AKID>/<date>/<region>/<service>/aws4_request,
/// SignedHeaders=..., Signature=...`; the access key id *is* the account id when it is 12
/// digits (the LocalStack convention, DESIGN.md §8). Signatures are not verified.
///
/// # Errors
/// - `MissingAuthenticationTokenException` (403) when the header is missing, not SigV4, or has
///   no `Credential=<AKID>/...` part.
/// - `UnrecognizedClientException` (403) when the access key id is not 12 ASCII digits.
pub(super) fn caller_account(headers: &HeaderMap) -> Result<String, ApiError> {
    let access_key_id = sigv4_access_key_id(headers).ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingAuthenticationToken,
            "Missing Authentication Token",
        )
    })?;
    if is_account_id(access_key_id) {
        Ok(access_key_id.to_owned())
    } else {
        Err(ApiError::new(
            ErrorCode::UnrecognizedClient,
            "The security token included in the request is invalid.",
        ))
    }
}

/// The access key id of the SigV4 `Authorization` header's credential scope
/// (`AWS4-HMAC-SHA256 Credential=<AKID>/<date>/<region>/<service>/aws4_request, ...`), possibly
/// empty; `None` when the header is missing, not SigV4, or has no `Credential=<AKID>/...` part.
pub(super) fn sigv4_access_key_id(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let params = value.trim_start().strip_prefix("AWS4-HMAC-SHA256")?;
    let credential = params
        .split(',')
        .map(str::trim)
        .find_map(|part| part.strip_prefix("Credential="))?;
    let (access_key_id, _scope) = credential.split_once('/')?;
    Some(access_key_id)
}

/// Whether `value` matches the model's account id pattern `^\d{12}$`.
pub(super) fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

/// A `200 OK` JSON 1.1 response with `body` and the request id header.
pub(super) fn success_response(request_id: &str, body: &Value) -> Response {
    json_response(StatusCode::OK, request_id, None, body)
}

/// The error response for `error`: its status, `x-amzn-ErrorType`, and the JSON envelope.
pub(super) fn error_response(request_id: &str, error: &ApiError) -> Response {
    json_response(
        error.code.status(),
        request_id,
        Some(error.code.as_str()),
        &error.body(),
    )
}

fn json_response(
    status: StatusCode,
    request_id: &str,
    error_type: Option<&str>,
    body: &Value,
) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    if let Some(Ok(value)) = error_type.map(HeaderValue::from_str) {
        headers.insert(ERROR_TYPE_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("test header is valid"),
        );
        headers
    }

    #[test]
    fn caller_is_the_access_key_id_of_the_credential_scope() {
        let headers = auth(
            "AWS4-HMAC-SHA256 Credential=111111111111/20240101/us-east-1/workspaces/aws4_request, SignedHeaders=host, Signature=abc",
        );
        assert_eq!(caller_account(&headers), Ok("111111111111".to_owned()));
    }

    #[test]
    fn missing_or_unparseable_authorization_is_missing_token() {
        for headers in [
            HeaderMap::new(),
            auth("Bearer abc"),
            auth("AWS4-HMAC-SHA256 SignedHeaders=host"),
            auth("AWS4-HMAC-SHA256 Credential=111111111111"),
        ] {
            let error = caller_account(&headers).expect_err("must be rejected");
            assert_eq!(error.code, ErrorCode::MissingAuthenticationToken);
        }
    }

    #[test]
    fn non_account_access_key_is_unrecognized_client() {
        let headers = auth(
            "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/workspaces/aws4_request",
        );
        let error = caller_account(&headers).expect_err("must be rejected");
        assert_eq!(error.code, ErrorCode::UnrecognizedClient);
    }

    #[test]
    fn target_must_name_a_workspaces_account_link_operation() {
        assert_eq!(
            Operation::from_target(Some("WorkspacesService.GetAccountLink")),
            Ok(Operation::GetAccountLink)
        );
        for target in [
            None,
            Some("WorkspacesService.DescribeWorkspaces"),
            Some("GetAccountLink"),
        ] {
            let error = Operation::from_target(target).expect_err("must be rejected");
            assert_eq!(error.code, ErrorCode::UnknownOperation);
        }
    }
}
