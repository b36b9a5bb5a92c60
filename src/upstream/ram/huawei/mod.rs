//! Huawei Cloud RAM (issue 12): [`HuaweiRam`], the [`InvitationProvider`] over HTTPS with
//! AK/SK `SDK-HMAC-SHA256` signing, one credential pair per acting account (domain).
//!
//! # Operations
//! - `list`: `POST /v1/resource-share-invitations/search` with
//!   `{resource_share_ids, resource_share_invitation_ids, status, limit, marker}`; the next
//!   page's token is `page_info.next_marker`.
//! - `get`: the same search with `resource_share_invitation_ids: [id]`; no match is
//!   `ResourceNotFound`.
//! - `respond`: `POST /v1/resource-share-invitations/{id}/accept` or `/reject`, answered
//!   with `{"resource_share_invitation": {...}}`. Huawei has no client token: the service's
//!   dedup record is the only protection against a repeated call (DESIGN §13).
//!
//! Every request carries `Host`, `Content-Type: application/json`, `X-Domain-Id: <acting>`
//! (as the SDKs' `GlobalCredentials` send for global services such as RAM), `X-Sdk-Date`,
//! `X-Security-Token` for temporary credentials, and the `Authorization` signature over all
//! of them but `Content-Type` ([`signer`]).
//!
//! # Errors and retries
//! Errors are classified by HTTP status first, then by the `error_code` of
//! `{"error_code": "RAM.xxxx", "error_msg": "..."}` ([`classify`]). `aws_error_code` carries
//! Huawei's `error_code` and `aws_request_id` the `X-Request-Id` response header. There are
//! no retries here (`attempts` is always 1): the service's client-token pipeline re-drives
//! retryable outcomes, and a blind retry of accept/reject could hide its outcome.
//!
//! # Dev convention
//! With [`HuaweiRamSettings::dev`], any well-formed domain id ([`parse_domain_id`]) that is
//! not configured acts with access key id = the domain id and secret
//! [`DEV_SECRET_ACCESS_KEY`], which the emulator accepts as that domain.
//!
//! # Layout
//! - `signer`: `SDK-HMAC-SHA256` signing and verification.
//! - `model`: the wire shapes, shared with the emulator.

pub mod model;
pub mod signer;

#[cfg(test)]
mod emulator_tests;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use self::model::{ErrorBody, Invitation, RespondResponse, SearchRequest, SearchResponse};
pub use self::signer::Credentials;
use super::InvitationProvider;
use crate::domain::{
    InvitationMutation, InvitationStatus, ListInvitationsInput, ListInvitationsPage, Provider,
    ResourceShareInvitation,
};
use crate::upstream::{UpstreamError, UpstreamErrorKind, UpstreamOutput};

/// The global RAM endpoint (API reference, "Endpoints": RAM is a global service).
pub const DEFAULT_ENDPOINT: &str = "https://ram.myhuaweicloud.com";
/// The default deadline of one call, response body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The secret access key of every `--dev` account: the emulator takes an access key id
/// that is a domain id, signed with this secret, as that domain.
pub const DEV_SECRET_ACCESS_KEY: &str = "account-link-service-huawei-dev-secret";
/// The response header carrying the request id (API reference, "Responses").
pub const REQUEST_ID_HEADER: &str = "X-Request-Id";
/// The header naming the acting account (SDK `GlobalCredentials`).
pub const DOMAIN_ID_HEADER: &str = "X-Domain-Id";

/// Error codes this module and the emulator name.
///
/// Sources: the RAM API reference "Error Codes"
/// (<https://support.huaweicloud.com/intl/en-us/api-ram/ErrorCode.html>) for `RAM.1001`
/// through `RAM.1004`; the API gateway's error codes (API Request Signing Guide, "Error
/// Codes", and its FAQ "Common Errors Related to IAM Authentication Information") for
/// `APIGW.*`. The part of RAM's table that could be read for this work lists no code for an
/// unknown invitation or for answering an invitation that is no longer pending, so
/// [`codes::INVITATION_NOT_FOUND`] and [`codes::INVITATION_NOT_PENDING`] are this project's
/// names, used by the emulator and recognised by [`classify`]; the real service's codes for
/// these cases are still to be confirmed (an unknown 400 code classifies as `Validation`,
/// final too).
pub mod codes {
    /// 401: `Incorrect IAM authentication information: ...` (bad or missing signature,
    /// unknown AK, expired token).
    pub const APIGW_AUTH: &str = "APIGW.0301";
    /// 403: the IAM user is not authorized to call the API.
    pub const APIGW_NOT_AUTHORIZED: &str = "APIGW.0302";
    /// 429: the API gateway's throttling threshold was reached.
    pub const APIGW_THROTTLED: &str = "APIGW.0308";
    /// 400: the domain id in the header or the token is invalid.
    pub const INVALID_DOMAIN_OR_TOKEN: &str = "RAM.1001";
    /// 400: the domain id in the header (`X-Domain-Id`) is invalid.
    pub const INVALID_DOMAIN_HEADER: &str = "RAM.1002";
    /// 400: the token is invalid.
    pub const INVALID_TOKEN: &str = "RAM.1003";
    /// 400: an account id (principal) is invalid.
    pub const INVALID_ACCOUNT_ID: &str = "RAM.1004";
    /// 404 (this project's name): no invitation with that id is visible to the caller.
    pub const INVITATION_NOT_FOUND: &str = "RAM.InvitationNotFound";
    /// 400 (this project's name): the invitation was already accepted or rejected.
    pub const INVITATION_NOT_PENDING: &str = "RAM.InvitationNotPending";
    /// 400 (this project's name): a request member is out of its range or malformed.
    pub const INVALID_PARAMETER: &str = "RAM.InvalidParameter";
    /// 500 (this project's name): the service failed.
    pub const INTERNAL_ERROR: &str = "RAM.InternalError";
}

/// Checks a Huawei account (domain) id: exactly 32 lowercase hexadecimal characters, e.g.
/// `d78cbac186b744899480f25bd022f468`, and returns it.
///
/// The format is observed (IAM's "My Credentials" page, the `domain_id` of API examples),
/// not documented as a rule by Huawei.
///
/// # Errors
/// A message naming the expected format.
pub fn parse_domain_id(s: &str) -> Result<String, String> {
    if s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "invalid huawei account (domain) id {s:?}: expected 32 lowercase hexadecimal characters"
        ))
    }
}

/// One configured acting account and its credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct HuaweiAccount {
    /// The account (domain) id, 32 lowercase hex characters.
    pub domain_id: String,
    /// The access key id (AK).
    pub access_key_id: String,
    /// The secret access key (SK).
    pub secret_access_key: String,
    /// The security token of temporary credentials (sent as `X-Security-Token`).
    pub security_token: Option<String>,
}

impl fmt::Debug for HuaweiAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HuaweiAccount")
            .field("domain_id", &self.domain_id)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Settings of [`HuaweiRam`].
#[derive(Debug, Clone)]
pub struct HuaweiRamSettings {
    /// `https://ram.myhuaweicloud.com` ([`DEFAULT_ENDPOINT`]), or the emulator's
    /// `http://127.0.0.1:<port>`; scheme and authority, optionally a base path.
    pub endpoint: String,
    /// Deadline of one call, response body included.
    pub timeout: Duration,
    /// The configured acting accounts.
    pub accounts: Vec<HuaweiAccount>,
    /// `--dev`: any well-formed domain id may act, with [`DEV_SECRET_ACCESS_KEY`].
    pub dev: bool,
}

impl Default for HuaweiRamSettings {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            accounts: Vec::new(),
            dev: false,
        }
    }
}

/// Why [`HuaweiRam::new`] refused its settings.
#[derive(Debug, thiserror::Error)]
pub enum HuaweiRamError {
    /// The endpoint is not an absolute `http://` or `https://` URL.
    #[error("invalid huawei ram endpoint {0:?}: expected http(s)://host[:port][/base]")]
    Endpoint(String),
    /// A configured account's domain id is malformed, or it appears twice.
    #[error("{0}")]
    Account(String),
    /// The platform's CA certificates could not be loaded for an `https://` endpoint.
    #[error("cannot load the platform's ca certificates: {0}")]
    Tls(#[source] std::io::Error),
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The Huawei RAM invitation upstream: one pooled HTTP client (hyper 1.x, rustls with the
/// platform's roots), requests signed per acting account.
pub struct HuaweiRam {
    client: HttpsClient,
    /// Scheme and authority of the endpoint.
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// Base path without a trailing `/` (empty for the real endpoint).
    base_path: String,
    timeout: Duration,
    accounts: HashMap<String, Credentials>,
    dev: bool,
}

impl fmt::Debug for HuaweiRam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HuaweiRam")
            .field("endpoint", &format!("{}://{}", self.scheme, self.authority))
            .field("accounts", &self.accounts.keys().collect::<Vec<_>>())
            .field("dev", &self.dev)
            .finish_non_exhaustive()
    }
}

impl HuaweiRam {
    /// Checks the settings and builds the HTTP client.
    ///
    /// # Errors
    /// [`HuaweiRamError`] for a malformed endpoint, a malformed or repeated domain id, or
    /// (for an `https://` endpoint) CA certificates that cannot be loaded.
    pub fn new(settings: &HuaweiRamSettings) -> Result<Self, HuaweiRamError> {
        let endpoint_error = || HuaweiRamError::Endpoint(settings.endpoint.clone());
        let uri: Uri = settings.endpoint.parse().map_err(|_| endpoint_error())?;
        let scheme = uri.scheme().cloned().ok_or_else(endpoint_error)?;
        if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
            return Err(endpoint_error());
        }
        let authority = uri.authority().cloned().ok_or_else(endpoint_error)?;
        if uri.query().is_some() {
            return Err(endpoint_error());
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();

        let mut accounts = HashMap::new();
        for account in &settings.accounts {
            let domain = parse_domain_id(&account.domain_id).map_err(HuaweiRamError::Account)?;
            let credentials = Credentials {
                access_key_id: account.access_key_id.clone(),
                secret_access_key: account.secret_access_key.clone(),
                security_token: account.security_token.clone(),
            };
            if accounts.insert(domain, credentials).is_some() {
                return Err(HuaweiRamError::Account(format!(
                    "huawei account {} is configured twice",
                    account.domain_id
                )));
            }
        }

        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(std::sync::Arc::clone(&provider))
        {
            Ok(builder) => builder,
            Err(error) if scheme == http::uri::Scheme::HTTPS => {
                return Err(HuaweiRamError::Tls(error));
            }
            // Plain http (the emulator): TLS is never used, an empty root store will do.
            Err(_) => {
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| HuaweiRamError::Tls(std::io::Error::other(e)))?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
            }
        };
        let connector = builder.https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Self {
            client,
            scheme,
            authority,
            base_path,
            timeout: settings.timeout,
            accounts,
            dev: settings.dev,
        })
    }

    /// Whether `domain_id` may act: configured, or well-formed in `--dev`.
    pub fn accepts(&self, domain_id: &str) -> bool {
        self.accounts.contains_key(domain_id) || (self.dev && parse_domain_id(domain_id).is_ok())
    }

    /// The configured domain ids, sorted.
    pub fn domain_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.accounts.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The credentials `acting` signs with.
    fn credentials(&self, acting: &str) -> Result<Credentials, UpstreamError> {
        if let Some(credentials) = self.accounts.get(acting) {
            return Ok(credentials.clone());
        }
        if self.dev && parse_domain_id(acting).is_ok() {
            return Ok(Credentials {
                access_key_id: acting.to_owned(),
                secret_access_key: DEV_SECRET_ACCESS_KEY.to_owned(),
                security_token: None,
            });
        }
        Err(UpstreamError::internal(format!(
            "no huawei credentials for account {acting}"
        )))
    }

    /// [`HuaweiRam::exchange`], recorded in the upstream metrics as `operation` (the SDK's
    /// operation name) with Huawei's error code (`transport` when none came back), as
    /// `SdkUpstream` records its AWS calls.
    async fn call<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        acting: &str,
        path: &str,
        body: Vec<u8>,
        mutating: bool,
    ) -> Result<(T, Option<String>), UpstreamError> {
        let started = std::time::Instant::now();
        let result = self.exchange(acting, path, body, mutating).await;
        let code = match &result {
            Ok(_) => "none".to_owned(),
            Err(e) => e
                .aws_error_code
                .clone()
                .unwrap_or_else(|| "transport".to_owned()),
        };
        metrics::counter!(crate::metrics::UPSTREAM_REQUESTS, "operation" => operation, "aws_error_code" => code)
            .increment(1);
        metrics::histogram!(crate::metrics::UPSTREAM_DURATION, "operation" => operation)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Signs and sends one `POST` with a JSON body and reads the JSON answer.
    ///
    /// `mutating` decides how a failure without an answer classifies: a request that may
    /// have reached RAM is `OutcomeUnknown` for accept/reject, `Unavailable` for a search
    /// (nothing changed either way); one that never connected is `Unavailable`.
    async fn exchange<T: DeserializeOwned>(
        &self,
        acting: &str,
        path: &str,
        body: Vec<u8>,
        mutating: bool,
    ) -> Result<(T, Option<String>), UpstreamError> {
        let credentials = self.credentials(acting)?;
        let path_and_query = format!("{}{path}", self.base_path);
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query.as_str())
            .build()
            .map_err(|e| UpstreamError::internal(format!("cannot build the request uri: {e}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            HOST,
            HeaderValue::from_str(self.authority.as_str())
                .map_err(|e| UpstreamError::internal(format!("invalid host header: {e}")))?,
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            http::header::HeaderName::from_static("x-domain-id"),
            HeaderValue::from_str(acting)
                .map_err(|e| UpstreamError::internal(format!("invalid domain id header: {e}")))?,
        );
        signer::sign(
            &Method::POST,
            &uri,
            &mut headers,
            &body,
            &credentials,
            OffsetDateTime::now_utc(),
        )
        .map_err(|e| UpstreamError::internal(format!("cannot sign the request: {e}")))?;
        let mut request = Request::post(uri)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| UpstreamError::internal(format!("cannot build the request: {e}")))?;
        *request.headers_mut() = headers;

        let no_answer = |message: String, connected: bool| UpstreamError {
            kind: if mutating && connected {
                UpstreamErrorKind::OutcomeUnknown
            } else {
                UpstreamErrorKind::Unavailable
            },
            aws_error_code: None,
            message,
            aws_request_id: None,
            attempts: 1,
        };
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                let connected = !e.is_connect();
                no_answer(
                    format!(
                        "huawei ram transport failure: {}",
                        crate::telemetry::error_chain(&e)
                    ),
                    connected,
                )
            })?;
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.map_err(|e| {
                no_answer(format!("huawei ram response body unreadable: {e}"), true)
            })?;
            Ok::<_, UpstreamError>((parts, bytes.to_bytes()))
        };
        let (parts, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| no_answer("huawei ram call timed out".to_owned(), true))??;
        let request_id = parts
            .headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if !parts.status.is_success() {
            return Err(error_from_response(parts.status, &bytes, request_id));
        }
        serde_json::from_slice(&bytes)
            .map(|value| (value, request_id.clone()))
            .map_err(|e| UpstreamError {
                aws_request_id: request_id,
                ..no_answer(format!("huawei ram response unreadable: {e}"), true)
            })
    }

    /// One search page.
    async fn search(
        &self,
        acting: &str,
        request: &SearchRequest,
    ) -> Result<(SearchResponse, Option<String>), UpstreamError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| UpstreamError::internal(format!("cannot encode the search: {e}")))?;
        self.call(
            model::SEARCH_OPERATION,
            acting,
            model::SEARCH_PATH,
            body,
            false,
        )
        .await
    }
}

/// Classifies a Huawei error answer: HTTP status first, then the `error_code`.
///
/// | status | code | kind |
/// |---|---|---|
/// | any | `APIGW.0301` | `Credentials` (signature, AK, token refused) |
/// | any | `APIGW.0308` | `Throttling` |
/// | 401 | any | `Credentials` |
/// | 403 | `APIGW.*` but `APIGW.0302` | `Credentials` |
/// | 403 | other (RAM or IAM permission, `APIGW.0302`) | `AccessDenied` |
/// | 400 | `RAM.1001`..`RAM.1003` (domain id or token refused) | `Credentials` |
/// | 400, 409 | [`codes::INVITATION_NOT_PENDING`], or 409 | `Conflict` |
/// | 400 | other | `Validation` |
/// | 404 | any | `ResourceNotFound` |
/// | 429 | any | `Throttling` |
/// | 5xx, other | any | `Unavailable` |
pub fn classify(status: StatusCode, error_code: Option<&str>) -> UpstreamErrorKind {
    use UpstreamErrorKind as K;
    let code = error_code.unwrap_or_default();
    match (status.as_u16(), code) {
        (_, codes::APIGW_AUTH) => K::Credentials,
        (_, codes::APIGW_THROTTLED) => K::Throttling,
        (401, _) => K::Credentials,
        (403, codes::APIGW_NOT_AUTHORIZED) => K::AccessDenied,
        (403, c) if c.starts_with("APIGW.") => K::Credentials,
        (403, _) => K::AccessDenied,
        (
            400,
            codes::INVALID_DOMAIN_OR_TOKEN | codes::INVALID_DOMAIN_HEADER | codes::INVALID_TOKEN,
        ) => K::Credentials,
        (400, codes::INVITATION_NOT_PENDING) | (409, _) => K::Conflict,
        (400, _) => K::Validation,
        (404, _) => K::ResourceNotFound,
        (429, _) => K::Throttling,
        _ => K::Unavailable,
    }
}

/// The [`UpstreamError`] of a non-2xx answer (its body read leniently: a body that is not
/// the error JSON leaves the code `None`).
fn error_from_response(
    status: StatusCode,
    body: &[u8],
    request_id: Option<String>,
) -> UpstreamError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let kind = classify(status, parsed.error_code.as_deref());
    let message = parsed.error_msg.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        format!(
            "huawei ram answered {status}: {}",
            text.chars().take(200).collect::<String>()
        )
    });
    UpstreamError {
        kind,
        aws_error_code: parsed.error_code,
        message,
        aws_request_id: request_id.or(parsed.request_id),
        attempts: 1,
    }
}

/// Reads a Huawei time: RFC 3339 (`2022-08-22T12:28:26.631Z`), else `YYYY-MM-DDThh:mm:ss`
/// or `YYYY-MM-DD hh:mm:ss` taken as UTC (the layouts the Go SDK's `SdkTime` accepts).
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let t_layout = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let space_layout = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(s, t_layout)
        .or_else(|_| time::PrimitiveDateTime::parse(s, space_layout))
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// The domain invitation of a wire one.
///
/// # Errors
/// A message when the id or the status is missing or the status unknown.
pub fn to_domain(invitation: &Invitation) -> Result<ResourceShareInvitation, String> {
    let invitation_id = invitation
        .resource_share_invitation_id
        .clone()
        .filter(|id| !id.is_empty())
        .ok_or("invitation without resource_share_invitation_id")?;
    let status = invitation
        .status
        .as_deref()
        .and_then(InvitationStatus::parse)
        .ok_or_else(|| {
            format!(
                "invitation {invitation_id} has status {:?}",
                invitation.status
            )
        })?;
    Ok(ResourceShareInvitation {
        provider: Provider::HuaweiRam,
        invitation_id,
        invitation_arn: None,
        resource_share_id: invitation.resource_share_id.clone(),
        resource_share_arn: None,
        resource_share_name: invitation.resource_share_name.clone(),
        sender_account_id: invitation.sender_account_id.clone(),
        receiver_account_id: invitation.receiver_account_id.clone(),
        status,
        create_time: invitation.created_at.as_deref().and_then(parse_time),
        update_time: invitation.updated_at.as_deref().and_then(parse_time),
    })
}

/// The Huawei spelling of a status: `pending`, `accepted`, `rejected` (`expired`, which
/// Huawei does not have, is sent as such and refused by RAM).
pub fn status_to_wire(status: InvitationStatus) -> String {
    status.as_aws().to_ascii_lowercase()
}

/// An answer RAM sent but this client cannot use: for a mutation its outcome is unknown.
fn unreadable(message: String, request_id: Option<String>, mutating: bool) -> UpstreamError {
    UpstreamError {
        kind: if mutating {
            UpstreamErrorKind::OutcomeUnknown
        } else {
            UpstreamErrorKind::Unavailable
        },
        aws_error_code: None,
        message: format!("huawei ram response unusable: {message}"),
        aws_request_id: request_id,
        attempts: 1,
    }
}

impl InvitationProvider for HuaweiRam {
    async fn list(
        &self,
        acting: &str,
        input: &ListInvitationsInput,
    ) -> Result<UpstreamOutput<ListInvitationsPage>, UpstreamError> {
        let request = SearchRequest {
            resource_share_ids: (!input.resource_share_ids.is_empty())
                .then(|| input.resource_share_ids.clone()),
            resource_share_invitation_ids: (!input.invitation_ids.is_empty())
                .then(|| input.invitation_ids.clone()),
            status: input.status.map(status_to_wire),
            limit: input
                .page_size
                .map(|n| n.clamp(*model::LIMIT_RANGE.start(), *model::LIMIT_RANGE.end())),
            marker: input.page_token.clone(),
        };
        let (response, request_id) = self.search(acting, &request).await?;
        let invitations = response
            .resource_share_invitations
            .iter()
            .map(to_domain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| unreadable(m, request_id.clone(), false))?;
        let next_page_token = response
            .page_info
            .and_then(|p| p.next_marker)
            .filter(|m| !m.is_empty());
        tracing::debug!(acting, count = invitations.len(), "huawei ram search");
        Ok(UpstreamOutput {
            value: ListInvitationsPage {
                invitations,
                next_page_token,
            },
            aws_request_id: request_id,
            attempts: 1,
        })
    }

    async fn get(
        &self,
        acting: &str,
        invitation_id: &str,
    ) -> Result<UpstreamOutput<ResourceShareInvitation>, UpstreamError> {
        let request = SearchRequest {
            resource_share_invitation_ids: Some(vec![invitation_id.to_owned()]),
            ..SearchRequest::default()
        };
        let (response, request_id) = self.search(acting, &request).await?;
        let found = response
            .resource_share_invitations
            .iter()
            .find(|i| i.resource_share_invitation_id.as_deref() == Some(invitation_id));
        let Some(found) = found else {
            return Err(UpstreamError {
                kind: UpstreamErrorKind::ResourceNotFound,
                aws_error_code: None,
                message: format!("resource share invitation {invitation_id} not found"),
                aws_request_id: request_id,
                attempts: 1,
            });
        };
        let value = to_domain(found).map_err(|m| unreadable(m, request_id.clone(), false))?;
        Ok(UpstreamOutput {
            value,
            aws_request_id: request_id,
            attempts: 1,
        })
    }

    async fn respond(
        &self,
        acting: &str,
        mutation: &InvitationMutation,
        _client_token: &str,
    ) -> Result<UpstreamOutput<ResourceShareInvitation>, UpstreamError> {
        let accept = matches!(mutation, InvitationMutation::Accept { .. });
        // The id is one path segment: escape it so it cannot change the path.
        let id = signer::escape(mutation.invitation_id());
        let path = model::respond_path(&id, accept);
        let operation = if accept {
            model::ACCEPT_OPERATION
        } else {
            model::REJECT_OPERATION
        };
        let (response, request_id): (RespondResponse, _) = self
            .call(operation, acting, &path, b"{}".to_vec(), true)
            .await?;
        let invitation = response.resource_share_invitation.ok_or_else(|| {
            unreadable(
                "no resource_share_invitation in the answer".to_owned(),
                request_id.clone(),
                true,
            )
        })?;
        let value = to_domain(&invitation).map_err(|m| unreadable(m, request_id.clone(), true))?;
        tracing::debug!(acting, method = mutation.method(), "huawei ram respond");
        Ok(UpstreamOutput {
            value,
            aws_request_id: request_id,
            attempts: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_classify_by_status_then_code() {
        use UpstreamErrorKind as K;
        let cases = [
            (400, Some("RAM.1004"), K::Validation),
            (400, Some(codes::INVALID_PARAMETER), K::Validation),
            (400, None, K::Validation),
            (400, Some(codes::INVITATION_NOT_PENDING), K::Conflict),
            (409, Some("RAM.9999"), K::Conflict),
            (400, Some("RAM.1001"), K::Credentials),
            (400, Some("RAM.1002"), K::Credentials),
            (401, Some("APIGW.0301"), K::Credentials),
            (401, None, K::Credentials),
            (403, Some("APIGW.0301"), K::Credentials),
            (403, Some("APIGW.0305"), K::Credentials),
            (403, Some("APIGW.0302"), K::AccessDenied),
            (403, Some("RAM.1008"), K::AccessDenied),
            (403, None, K::AccessDenied),
            (404, Some(codes::INVITATION_NOT_FOUND), K::ResourceNotFound),
            (404, None, K::ResourceNotFound),
            (429, Some("APIGW.0308"), K::Throttling),
            (429, None, K::Throttling),
            (500, Some("APIGW.0308"), K::Throttling),
            (500, Some(codes::INTERNAL_ERROR), K::Unavailable),
            (502, None, K::Unavailable),
            (503, Some("APIGW.0201"), K::Unavailable),
            (418, None, K::Unavailable),
        ];
        for (status, code, kind) in cases {
            let status = StatusCode::from_u16(status).expect("valid status");
            assert_eq!(classify(status, code), kind, "{status} {code:?}");
        }
    }

    #[test]
    fn error_answers_keep_code_message_and_request_id() {
        let body = br#"{"error_code":"RAM.InvitationNotPending","error_msg":"already accepted"}"#;
        let error = error_from_response(StatusCode::BAD_REQUEST, body, Some("req-1".into()));
        assert_eq!(error.kind, UpstreamErrorKind::Conflict);
        assert_eq!(
            error.aws_error_code.as_deref(),
            Some("RAM.InvitationNotPending")
        );
        assert_eq!(error.message, "already accepted");
        assert_eq!(error.aws_request_id.as_deref(), Some("req-1"));
        assert_eq!(error.attempts, 1);

        let error = error_from_response(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>", None);
        assert_eq!(error.kind, UpstreamErrorKind::Unavailable);
        assert_eq!(error.aws_error_code, None);
        assert!(error.message.contains("bad gateway"), "{}", error.message);
    }

    #[test]
    fn domain_ids_are_32_lowercase_hex() {
        let id = "d78cbac186b744899480f25bd022f468";
        assert_eq!(parse_domain_id(id), Ok(id.to_owned()));
        for bad in [
            "",
            "d78cbac186b744899480f25bd022f46",
            "d78cbac186b744899480f25bd022f4688",
            "D78CBAC186B744899480F25BD022F468",
            "g78cbac186b744899480f25bd022f468",
            "123456789012",
        ] {
            assert!(parse_domain_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wire_invitations_map_to_the_domain() {
        let wire = Invitation {
            receiver_account_id: Some("r".repeat(32)),
            resource_share_id: Some("share-1".to_owned()),
            resource_share_name: Some("name".to_owned()),
            resource_share_invitation_id: Some("inv-1".to_owned()),
            sender_account_id: Some("s".repeat(32)),
            status: Some("accepted".to_owned()),
            created_at: Some("2022-08-22T12:28:26.631Z".to_owned()),
            updated_at: Some("2022-08-22 12:29:00".to_owned()),
        };
        let domain = to_domain(&wire).expect("maps");
        assert_eq!(domain.provider, Provider::HuaweiRam);
        assert_eq!(domain.invitation_id, "inv-1");
        assert_eq!(domain.status, InvitationStatus::Accepted);
        assert_eq!(
            domain.create_time,
            Some(time::macros::datetime!(2022-08-22 12:28:26.631 UTC))
        );
        assert_eq!(
            domain.update_time,
            Some(time::macros::datetime!(2022-08-22 12:29:00 UTC))
        );
        assert_eq!(domain.invitation_arn, None);
        assert!(
            to_domain(&Invitation {
                status: Some("bogus".into()),
                ..wire.clone()
            })
            .is_err()
        );
        assert!(
            to_domain(&Invitation {
                resource_share_invitation_id: None,
                ..wire
            })
            .is_err()
        );
        assert_eq!(status_to_wire(InvitationStatus::Pending), "pending");
    }

    /// The real endpoint is https: the default settings must find the platform's CA
    /// certificates (the runtime image installs `ca-certificates`).
    #[test]
    fn default_settings_load_the_platform_roots() {
        let ram = HuaweiRam::new(&HuaweiRamSettings::default()).expect("platform roots load");
        assert_eq!(ram.scheme, http::uri::Scheme::HTTPS);
        assert_eq!(ram.authority.as_str(), "ram.myhuaweicloud.com");
        assert_eq!(ram.base_path, "");
        assert!(ram.domain_ids().is_empty());
    }

    #[test]
    fn settings_are_checked() {
        let account = |domain: &str| HuaweiAccount {
            domain_id: domain.to_owned(),
            access_key_id: "AK".to_owned(),
            secret_access_key: "SK".to_owned(),
            security_token: None,
        };
        let ok = HuaweiRamSettings {
            endpoint: "http://127.0.0.1:1".to_owned(),
            accounts: vec![account(&"a".repeat(32))],
            ..HuaweiRamSettings::default()
        };
        let ram = HuaweiRam::new(&ok).expect("valid settings");
        assert!(ram.accepts(&"a".repeat(32)));
        assert!(!ram.accepts(&"b".repeat(32)));
        assert!(!format!("{:?}", account("x")).contains("SK\""));
        let dev = HuaweiRam::new(&HuaweiRamSettings {
            dev: true,
            ..ok.clone()
        })
        .expect("dev");
        assert!(dev.accepts(&"b".repeat(32)));
        assert!(!dev.accepts("123456789012"));
        for endpoint in ["ram.myhuaweicloud.com", "ftp://x", "http://x/?q=1"] {
            let bad = HuaweiRamSettings {
                endpoint: endpoint.to_owned(),
                ..ok.clone()
            };
            assert!(
                matches!(HuaweiRam::new(&bad), Err(HuaweiRamError::Endpoint(_))),
                "{endpoint}"
            );
        }
        let twice = HuaweiRamSettings {
            accounts: vec![account(&"a".repeat(32)), account(&"a".repeat(32))],
            ..ok.clone()
        };
        assert!(matches!(
            HuaweiRam::new(&twice),
            Err(HuaweiRamError::Account(_))
        ));
        let malformed = HuaweiRamSettings {
            accounts: vec![account("123")],
            ..ok
        };
        assert!(matches!(
            HuaweiRam::new(&malformed),
            Err(HuaweiRamError::Account(_))
        ));
    }
}
