//! AWS STS `AssumeRole` over the AWS query protocol (awsQuery), enough for
//! `aws_config::sts::AssumeRoleProvider` to act as other accounts against the emulator.
//!
//! A request is `POST /` with a form body (`application/x-www-form-urlencoded`):
//! `Action=AssumeRole&Version=2011-06-15&RoleArn=…&RoleSessionName=…[&ExternalId=…]
//! [&DurationSeconds=…]`. A success is `200` with
//! `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">` holding
//! `AssumeRoleResult/{Credentials, AssumedRoleUser}` and `ResponseMetadata/RequestId`; a
//! failure is `ErrorResponse/{Error/{Type, Code, Message}, RequestId}` with the status of the
//! code (400, 403 for the authentication and authorization failures, 500 for
//! `InternalFailure`). Both carry `x-amzn-RequestId` and `Content-Type: text/xml`.
//!
//! Sources: the STS API reference (`AssumeRole` parameters, constraints and example response,
//! "Common Errors"); the `aws-sdk-sts` 1.124 deserializers (the root element must be
//! `AssumeRoleResponse` then `AssumeRoleResult`; `Expiration` is an RFC 3339 date-time; error
//! metadata is read from `ErrorResponse/Error/{Code, Message}`) and botocore's query parser,
//! which reads the same elements.
//!
//! The returned `AccessKeyId` is the role's 12-digit account id, so WorkSpaces calls signed
//! with the assumed credentials are made as the role's account (the LocalStack convention the
//! emulator uses for callers, DESIGN.md §8). Every well-formed role ARN names an assumable
//! role; a role may require an `ExternalId` ([`Roles::require_external_id`]).

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::protocol::{self, REQUEST_ID_HEADER, is_account_id};

/// The one action the emulator serves over the query protocol.
pub(super) const ASSUME_ROLE: &str = "AssumeRole";

/// The STS API version a request must name in `Version`.
const API_VERSION: &str = "2011-06-15";

/// The XML namespace of STS responses.
const XML_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// `Content-Type` of every STS response body.
pub(super) const XML_CONTENT_TYPE: &str = "text/xml";

/// Default and bounds of `DurationSeconds`, in seconds (the API reference: 15 minutes to the
/// role's maximum session duration, at most 12 hours; emulated roles allow 12 hours).
const DEFAULT_DURATION_SECS: i64 = 3600;
const MIN_DURATION_SECS: i64 = 900;
const MAX_DURATION_SECS: i64 = 43_200;

/// Form fields written to the call log as `"<redacted>"`: they gate access to a role.
const REDACTED_FIELDS: [&str; 2] = ["ExternalId", "TokenCode"];

/// The STS errors the emulator sends, each with its HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum StsErrorCode {
    /// `AccessDenied` (403): the role requires another `ExternalId`.
    AccessDenied,
    /// `ValidationError` (400): a parameter violates its constraint, or a malformed role ARN.
    ValidationError,
    /// `MissingAuthenticationToken` (403): no parseable SigV4 `Authorization` header.
    MissingAuthenticationToken,
    /// `InvalidClientTokenId` (403): the SigV4 credential scope has an empty access key id.
    InvalidClientTokenId,
    /// `InvalidAction` (400): an action other than `AssumeRole`, or another API version.
    InvalidAction,
    /// `Throttling` (400): only produced by fault injection.
    Throttling,
    /// `InternalFailure` (500): only produced by fault injection.
    InternalFailure,
    /// Any other code (400), only produced by an injected `AwsError` fault.
    Other(String),
}

impl StsErrorCode {
    /// Every named code, for looking one up by name.
    const NAMED: [StsErrorCode; 7] = [
        StsErrorCode::AccessDenied,
        StsErrorCode::ValidationError,
        StsErrorCode::MissingAuthenticationToken,
        StsErrorCode::InvalidClientTokenId,
        StsErrorCode::InvalidAction,
        StsErrorCode::Throttling,
        StsErrorCode::InternalFailure,
    ];

    /// The code named `name`: a named variant when there is one, else [`StsErrorCode::Other`].
    pub(super) fn from_name(name: &str) -> Self {
        Self::NAMED
            .into_iter()
            .find(|code| code.as_str() == name)
            .unwrap_or_else(|| StsErrorCode::Other(name.to_owned()))
    }

    /// The code written to `Error/Code`.
    pub(super) fn as_str(&self) -> &str {
        match self {
            StsErrorCode::AccessDenied => "AccessDenied",
            StsErrorCode::ValidationError => "ValidationError",
            StsErrorCode::MissingAuthenticationToken => "MissingAuthenticationToken",
            StsErrorCode::InvalidClientTokenId => "InvalidClientTokenId",
            StsErrorCode::InvalidAction => "InvalidAction",
            StsErrorCode::Throttling => "Throttling",
            StsErrorCode::InternalFailure => "InternalFailure",
            StsErrorCode::Other(name) => name,
        }
    }

    /// The HTTP status of the error response (the STS "Common Errors" page).
    pub(super) fn status(&self) -> StatusCode {
        match self {
            StsErrorCode::AccessDenied
            | StsErrorCode::MissingAuthenticationToken
            | StsErrorCode::InvalidClientTokenId => StatusCode::FORBIDDEN,
            StsErrorCode::InternalFailure => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An STS error on its way to the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub(super) struct StsError {
    pub(super) code: StsErrorCode,
    pub(super) message: String,
}

impl StsError {
    pub(super) fn new(code: StsErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        Self::new(StsErrorCode::ValidationError, message)
    }

    /// The `ErrorResponse` document; `Type` is `Receiver` for a 5xx, else `Sender`.
    fn to_xml(&self, request_id: &str) -> String {
        let kind = if self.code.status().is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        format!(
            "<ErrorResponse xmlns=\"{XML_NAMESPACE}\">\n  <Error>\n    <Type>{kind}</Type>\n    \
             <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  \
             <RequestId>{}</RequestId>\n</ErrorResponse>\n",
            escape(self.code.as_str()),
            escape(&self.message),
            escape(request_id),
        )
    }
}

/// The roles the emulator knows something about: so far, the `ExternalId` each requires.
#[derive(Debug, Default)]
pub(super) struct Roles {
    /// Role ARN -> the `ExternalId` its trust policy requires.
    external_ids: HashMap<String, String>,
}

impl Roles {
    /// Makes `role_arn` assumable only with `external_id` (replacing any earlier requirement).
    pub(super) fn require_external_id(&mut self, role_arn: String, external_id: String) {
        self.external_ids.insert(role_arn, external_id);
    }
}

/// An STS request to `POST /`: its form fields and the caller's access key id.
#[derive(Debug)]
pub(super) struct StsCall {
    /// The decoded form fields, in body order.
    fields: Vec<(String, String)>,
    /// The access key id of the SigV4 credential scope, or the error the call ends with.
    caller: Result<String, StsError>,
}

impl StsCall {
    /// Reads the call if it is one: a request with no `X-Amz-Target` whose body is a form
    /// with an `Action` field. `None` for anything else (a JSON 1.1 call).
    pub(super) fn parse(headers: &HeaderMap, body: &[u8]) -> Option<Self> {
        if headers.contains_key("x-amz-target") {
            return None;
        }
        let fields = parse_form(body);
        if !fields.iter().any(|(name, _)| name == "Action") {
            return None;
        }
        let caller = match protocol::sigv4_access_key_id(headers) {
            None => Err(StsError::new(
                StsErrorCode::MissingAuthenticationToken,
                "Request is missing Authentication Token",
            )),
            Some("") => Err(StsError::new(
                StsErrorCode::InvalidClientTokenId,
                "The security token included in the request is invalid.",
            )),
            Some(access_key_id) => Ok(access_key_id.to_owned()),
        };
        Some(Self { fields, caller })
    }

    /// The first value of form field `name`.
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// The `Action` field, the call's operation name in the call log and for fault matching.
    pub(super) fn action(&self) -> &str {
        self.field("Action").unwrap_or_default()
    }

    /// The account of the `RoleArn` field, when it is a well-formed role ARN.
    pub(super) fn role_account(&self) -> Option<&str> {
        self.field("RoleArn")
            .and_then(RoleArn::parse)
            .map(|role| role.account_id)
    }

    /// The form fields as a JSON object (the first value of each), for the call log;
    /// `ExternalId` and `TokenCode` are `"<redacted>"`.
    pub(super) fn logged_request(&self) -> Value {
        let mut object = Map::new();
        for (name, value) in &self.fields {
            if object.contains_key(name) {
                continue;
            }
            let value = if REDACTED_FIELDS.contains(&name.as_str()) {
                "<redacted>"
            } else {
                value
            };
            object.insert(name.clone(), Value::from(value));
        }
        Value::Object(object)
    }

    /// Runs the call at `now`: authenticates, checks the action and version, validates the
    /// parameters, checks the role's `ExternalId`, and issues credentials, in that order.
    ///
    /// # Errors
    /// The caller's authentication error; `InvalidAction` for another action or a `Version`
    /// other than `2011-06-15`; `ValidationError` for the parameters (AWS's
    /// `N validation errors detected: …` format for constraint violations, then
    /// `Request ARN is invalid` for a role ARN that is not `arn:aws:iam::<12 digits>:role/…`);
    /// `AccessDenied` when the role requires an `ExternalId` and the call has another or none.
    pub(super) fn execute(
        &self,
        roles: &Roles,
        now: OffsetDateTime,
    ) -> Result<AssumedRole, StsError> {
        let caller = self.caller.clone()?;
        let action = self.action();
        let version = self.field("Version").unwrap_or_default();
        if action != ASSUME_ROLE || version != API_VERSION {
            return Err(StsError::new(
                StsErrorCode::InvalidAction,
                format!("Could not find operation {action} for version {version}"),
            ));
        }
        let input = self.validate()?;
        if let Some(required) = roles.external_ids.get(input.role_arn)
            && input.external_id != Some(required.as_str())
        {
            return Err(StsError::new(
                StsErrorCode::AccessDenied,
                format!(
                    "User: {} is not authorized to perform: sts:AssumeRole on resource: {}",
                    principal(&caller),
                    input.role_arn
                ),
            ));
        }
        Ok(AssumedRole::issue(&input, now))
    }

    /// Checks the parameters against the `AssumeRole` model constraints, then the role ARN.
    fn validate(&self) -> Result<AssumeRoleInput<'_>, StsError> {
        let mut violations = Violations::default();
        let role_arn = self.field("RoleArn");
        match role_arn {
            None => violations.push("roleArn", None, "Member must not be null"),
            Some(arn) => violations.length("roleArn", arn, 20, 2048),
        }
        let session_name = self.field("RoleSessionName");
        match session_name {
            None => violations.push("roleSessionName", None, "Member must not be null"),
            Some(name) => {
                violations.length("roleSessionName", name, 2, 64);
                violations.pattern("roleSessionName", name, r"[\w+=,.@-]*", is_name_char);
            }
        }
        let external_id = self.field("ExternalId");
        if let Some(id) = external_id {
            violations.length("externalId", id, 2, 1224);
            violations.pattern("externalId", id, r"[\w+=,.@:\/-]*", |c| {
                is_name_char(c) || c == ':' || c == '/'
            });
        }
        let duration_secs = match self.field("DurationSeconds") {
            None => DEFAULT_DURATION_SECS,
            Some(text) => violations
                .integer(
                    "durationSeconds",
                    text,
                    MIN_DURATION_SECS,
                    MAX_DURATION_SECS,
                )
                .unwrap_or(DEFAULT_DURATION_SECS),
        };
        violations.finish()?;
        // Both are present: a missing one is a violation.
        let role_arn = role_arn.unwrap_or_default();
        let session_name = session_name.unwrap_or_default();
        let role = RoleArn::parse(role_arn)
            .ok_or_else(|| StsError::validation("Request ARN is invalid"))?;
        Ok(AssumeRoleInput {
            role_arn,
            role,
            session_name,
            external_id,
            duration_secs,
        })
    }
}

/// The caller as an `AccessDenied` message names it: the account root for a 12-digit access
/// key id, else the access key id itself.
fn principal(access_key_id: &str) -> String {
    if is_account_id(access_key_id) {
        format!("arn:aws:iam::{access_key_id}:root")
    } else {
        access_key_id.to_owned()
    }
}

/// Whether `c` is in `[\w+=,.@-]` (`\w` being ASCII `[a-zA-Z0-9_]`, as in Java's regex).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// A role ARN as the emulator accepts it: `arn:aws:iam::<12 digits>:role/[<path>/]<name>`,
/// every path segment and the name made of `[\w+=,.@-]`, the name 1 to 64 characters (the
/// IAM role name constraints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RoleArn<'a> {
    account_id: &'a str,
    name: &'a str,
}

impl<'a> RoleArn<'a> {
    fn parse(arn: &'a str) -> Option<Self> {
        let rest = arn.strip_prefix("arn:aws:iam::")?;
        let (account_id, resource) = rest.split_once(':')?;
        let path = resource.strip_prefix("role/")?;
        let segments_ok = path
            .split('/')
            .all(|segment| !segment.is_empty() && segment.chars().all(is_name_char));
        let name = path.rsplit('/').next()?;
        (is_account_id(account_id) && segments_ok && name.chars().count() <= 64)
            .then_some(Self { account_id, name })
    }
}

/// A validated `AssumeRole` request.
#[derive(Debug)]
struct AssumeRoleInput<'a> {
    role_arn: &'a str,
    role: RoleArn<'a>,
    session_name: &'a str,
    external_id: Option<&'a str>,
    duration_secs: i64,
}

/// The constraint violations of one request, reported together the way AWS does:
/// `2 validation errors detected: Value '…' at 'roleSessionName' failed to satisfy
/// constraint: …; …`.
#[derive(Debug, Default)]
struct Violations(Vec<String>);

impl Violations {
    fn push(&mut self, member: &str, value: Option<&str>, constraint: impl std::fmt::Display) {
        let value = match value {
            Some(value) => format!("'{value}'"),
            None => "null".to_owned(),
        };
        self.0.push(format!(
            "Value {value} at '{member}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// Records a violation when `value` has fewer than `min` or more than `max` characters.
    fn length(&mut self, member: &str, value: &str, min: usize, max: usize) {
        let count = value.chars().count();
        if count < min {
            self.push(
                member,
                Some(value),
                format_args!("Member must have length greater than or equal to {min}"),
            );
        } else if count > max {
            self.push(
                member,
                Some(value),
                format_args!("Member must have length less than or equal to {max}"),
            );
        }
    }

    /// Reads `text` as an integer in `min..=max`, recording a violation when it is not one.
    fn integer(&mut self, member: &str, text: &str, min: i64, max: i64) -> Option<i64> {
        let Ok(value) = text.parse::<i64>() else {
            self.push(member, Some(text), "Member must be an integer");
            return None;
        };
        if value < min {
            self.push(
                member,
                Some(text),
                format_args!("Member must have value greater than or equal to {min}"),
            );
            None
        } else if value > max {
            self.push(
                member,
                Some(text),
                format_args!("Member must have value less than or equal to {max}"),
            );
            None
        } else {
            Some(value)
        }
    }

    /// Records a violation when a character of `value` is outside `allowed` (the regular
    /// expression `pattern` of the model).
    fn pattern(&mut self, member: &str, value: &str, pattern: &str, allowed: fn(char) -> bool) {
        if !value.chars().all(allowed) {
            self.push(
                member,
                Some(value),
                format_args!("Member must satisfy regular expression pattern: {pattern}"),
            );
        }
    }

    /// `Ok` when nothing was violated, else the `ValidationError` listing every violation.
    fn finish(self) -> Result<(), StsError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(StsError::validation(format!(
                "1 validation error detected: {}",
                self.0.join("; ")
            ))),
            n => Err(StsError::validation(format!(
                "{n} validation errors detected: {}",
                self.0.join("; ")
            ))),
        }
    }
}

/// The temporary credentials and identity `AssumeRole` returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct AssumedRole {
    /// The role's 12-digit account id (what the emulator identifies WorkSpaces callers by).
    access_key_id: String,
    /// 40 random characters.
    secret_access_key: String,
    /// A random token.
    session_token: String,
    /// When the credentials expire: the call's time plus `DurationSeconds`, whole seconds.
    expiration: OffsetDateTime,
    /// `AROA<17 characters derived from the role ARN>:<session name>`.
    assumed_role_id: String,
    /// `arn:aws:sts::<account>:assumed-role/<role name>/<session name>`.
    arn: String,
}

impl AssumedRole {
    fn issue(input: &AssumeRoleInput<'_>, now: OffsetDateTime) -> Self {
        let random = || uuid::Uuid::new_v4().simple().to_string();
        let secret_access_key: String = (random() + &random()).chars().take(40).collect();
        let session_token = format!("EmulatorSessionToken{}{}", random(), random());
        let role_id: String = hex::encode_upper(Sha256::digest(input.role_arn.as_bytes()))
            .chars()
            .take(17)
            .collect();
        let expiration = (now + time::Duration::seconds(input.duration_secs))
            .replace_nanosecond(0)
            .unwrap_or(now);
        Self {
            access_key_id: input.role.account_id.to_owned(),
            secret_access_key,
            session_token,
            expiration,
            assumed_role_id: format!("AROA{role_id}:{}", input.session_name),
            arn: format!(
                "arn:aws:sts::{}:assumed-role/{}/{}",
                input.role.account_id, input.role.name, input.session_name
            ),
        }
    }

    /// The `AssumeRoleResponse` document.
    fn to_xml(&self, request_id: &str) -> String {
        let mut xml = String::new();
        // Writing to a String cannot fail.
        let _ = write!(
            xml,
            "<AssumeRoleResponse xmlns=\"{XML_NAMESPACE}\">\n  <AssumeRoleResult>\n    \
             <AssumedRoleUser>\n      <AssumedRoleId>{}</AssumedRoleId>\n      \
             <Arn>{}</Arn>\n    </AssumedRoleUser>\n    <Credentials>\n      \
             <AccessKeyId>{}</AccessKeyId>\n      <SecretAccessKey>{}</SecretAccessKey>\n      \
             <SessionToken>{}</SessionToken>\n      <Expiration>{}</Expiration>\n    \
             </Credentials>\n  </AssumeRoleResult>\n  <ResponseMetadata>\n    \
             <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</AssumeRoleResponse>\n",
            escape(&self.assumed_role_id),
            escape(&self.arn),
            escape(&self.access_key_id),
            escape(&self.secret_access_key),
            escape(&self.session_token),
            rfc3339_utc(self.expiration),
            escape(request_id),
        );
        xml
    }
}

/// `2024-01-01T12:00:00Z`: RFC 3339 in UTC, whole seconds (as STS writes `Expiration`).
fn rfc3339_utc(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Escapes XML text and attribute content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Decodes an `application/x-www-form-urlencoded` body into its fields, in order (the WHATWG
/// URL standard's parser: `&`-separated, `+` is a space, `%XX` is a byte, malformed escapes
/// are kept as they are, invalid UTF-8 is replaced).
pub(super) fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|b| *b == b'=') {
            Some(eq) => (percent_decode(&pair[..eq]), percent_decode(&pair[eq + 1..])),
            None => (percent_decode(pair), String::new()),
        })
        .collect()
}

fn percent_decode(bytes: &[u8]) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let high = bytes.get(i + 1).copied().and_then(hex);
                let low = bytes.get(i + 2).copied().and_then(hex);
                if let (Some(high), Some(low)) = (high, low) {
                    // Two hex digits make at most 0xff.
                    out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `200 OK` `AssumeRoleResponse`.
pub(super) fn success_response(request_id: &str, role: &AssumedRole) -> Response {
    xml_response(StatusCode::OK, request_id, role.to_xml(request_id))
}

/// The `ErrorResponse` for `error`, with its status.
pub(super) fn error_response(request_id: &str, error: &StsError) -> Response {
    xml_response(error.code.status(), request_id, error.to_xml(request_id))
}

fn xml_response(status: StatusCode, request_id: &str, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(XML_CONTENT_TYPE),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=000000000000/20240101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=abc";
    const ROLE: &str = "arn:aws:iam::111111111111:role/linker";

    fn call(auth: Option<&str>, body: &str) -> StsCall {
        let mut headers = HeaderMap::new();
        if let Some(auth) = auth {
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(auth).expect("test header is valid"),
            );
        }
        StsCall::parse(&headers, body.as_bytes()).expect("an sts call")
    }

    fn assume(body: &str) -> Result<AssumedRole, StsError> {
        call(Some(AUTH), body).execute(&Roles::default(), OffsetDateTime::UNIX_EPOCH)
    }

    fn body(extra: &str) -> String {
        format!(
            "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName=s1{extra}",
            ROLE.replace(':', "%3A").replace('/', "%2F")
        )
    }

    #[test]
    fn form_bodies_decode_like_urlencoded_forms() {
        assert_eq!(
            parse_form(b"a=1&b=x+y%2Fz&&c&d=%zz%4"),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "x y/z".to_owned()),
                ("c".to_owned(), String::new()),
                ("d".to_owned(), "%zz%4".to_owned()),
            ]
        );
        assert_eq!(
            parse_form(b"n=%C3%A9"),
            vec![("n".to_owned(), "é".to_owned())]
        );
    }

    #[test]
    fn only_form_bodies_with_an_action_and_no_target_are_sts_calls() {
        let headers = HeaderMap::new();
        assert!(StsCall::parse(&headers, b"Action=AssumeRole").is_some());
        assert!(StsCall::parse(&headers, b"{\"LinkId\":\"link-1\"}").is_none());
        assert!(StsCall::parse(&headers, b"").is_none());
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amz-target",
            HeaderValue::from_static("WorkspacesService.GetAccountLink"),
        );
        assert!(StsCall::parse(&headers, b"Action=AssumeRole").is_none());
    }

    #[test]
    fn credentials_are_for_the_role_account() {
        let role = assume(&body("&DurationSeconds=900")).expect("assumed");
        assert_eq!(role.access_key_id, "111111111111");
        assert_eq!(role.arn, "arn:aws:sts::111111111111:assumed-role/linker/s1");
        assert!(role.assumed_role_id.starts_with("AROA"));
        assert!(role.assumed_role_id.ends_with(":s1"));
        assert_eq!(role.secret_access_key.len(), 40);
        assert_eq!(rfc3339_utc(role.expiration), "1970-01-01T00:15:00Z");
        let default = assume(&body("")).expect("assumed");
        assert_eq!(rfc3339_utc(default.expiration), "1970-01-01T01:00:00Z");
        assert_ne!(default.secret_access_key, role.secret_access_key);
        assert_ne!(default.session_token, role.session_token);
    }

    #[test]
    fn role_path_is_dropped_from_the_assumed_role_arn() {
        let body = "Action=AssumeRole&Version=2011-06-15&RoleSessionName=s1\
                    &RoleArn=arn:aws:iam::222222222222:role/team/ops/linker";
        let role = assume(body).expect("assumed");
        assert_eq!(role.arn, "arn:aws:sts::222222222222:assumed-role/linker/s1");
    }

    #[test]
    fn constraint_violations_are_reported_together() {
        let error = assume(&body("&DurationSeconds=899").replace("s1", "s")).expect_err("invalid");
        assert_eq!(error.code, StsErrorCode::ValidationError);
        assert_eq!(
            error.message,
            "2 validation errors detected: Value 's' at 'roleSessionName' failed to satisfy \
             constraint: Member must have length greater than or equal to 2; Value '899' at \
             'durationSeconds' failed to satisfy constraint: Member must have value greater \
             than or equal to 900"
        );
        let error =
            assume(&body("&DurationSeconds=43201").replace("s1", "a%20b")).expect_err("invalid");
        assert!(
            error
                .message
                .contains(r"regular expression pattern: [\w+=,.@-]*")
        );
        assert!(error.message.contains("less than or equal to 43200"));
        let error = assume("Action=AssumeRole&Version=2011-06-15").expect_err("invalid");
        assert_eq!(
            error.message,
            "2 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: \
             Member must not be null; Value null at 'roleSessionName' failed to satisfy \
             constraint: Member must not be null"
        );
        let long = body("").replace("s1", &"x".repeat(65));
        assert!(
            assume(&long)
                .expect_err("too long")
                .message
                .contains("less than or equal to 64")
        );
    }

    #[test]
    fn malformed_role_arns_are_invalid() {
        for arn in [
            "arn:aws:iam::11111111111:role/linker",
            "arn:aws:iam::111111111111:user/linker",
            "arn:aws:s3:::111111111111:role/linker",
            "arn:aws:iam::111111111111:role/",
            "arn:aws:iam::111111111111:role/a//b",
            "arn:aws:iam::111111111111:role/has space",
        ] {
            let body = format!(
                "Action=AssumeRole&Version=2011-06-15&RoleSessionName=s1&RoleArn={}",
                arn.replace(' ', "+")
            );
            let error = assume(&body).expect_err(arn);
            assert_eq!(error.code, StsErrorCode::ValidationError, "{arn}");
            assert_eq!(error.message, "Request ARN is invalid", "{arn}");
        }
    }

    #[test]
    fn required_external_id_must_match() {
        let mut roles = Roles::default();
        roles.require_external_id(ROLE.to_owned(), "ext-1".to_owned());
        let now = OffsetDateTime::UNIX_EPOCH;
        assert!(
            call(Some(AUTH), &body("&ExternalId=ext-1"))
                .execute(&roles, now)
                .is_ok()
        );
        for extra in ["", "&ExternalId=ext-2"] {
            let error = call(Some(AUTH), &body(extra))
                .execute(&roles, now)
                .expect_err("denied");
            assert_eq!(error.code, StsErrorCode::AccessDenied);
            assert_eq!(error.code.status(), StatusCode::FORBIDDEN);
            assert_eq!(
                error.message,
                format!(
                    "User: arn:aws:iam::000000000000:root is not authorized to perform: \
                     sts:AssumeRole on resource: {ROLE}"
                )
            );
        }
        // A role with no requirement accepts any external id.
        let other = body("&ExternalId=whatever").replace("111111111111", "222222222222");
        assert!(call(Some(AUTH), &other).execute(&roles, now).is_ok());
    }

    #[test]
    fn callers_must_sign_and_name_assume_role() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let roles = Roles::default();
        let error = call(None, &body(""))
            .execute(&roles, now)
            .expect_err("unsigned");
        assert_eq!(error.code, StsErrorCode::MissingAuthenticationToken);
        let empty_key = "AWS4-HMAC-SHA256 Credential=/20240101/us-east-1/sts/aws4_request";
        let error = call(Some(empty_key), &body(""))
            .execute(&roles, now)
            .expect_err("no key");
        assert_eq!(error.code, StsErrorCode::InvalidClientTokenId);
        let any_key = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/sts/aws4_request";
        assert!(call(Some(any_key), &body("")).execute(&roles, now).is_ok());
        let error = assume("Action=GetCallerIdentity&Version=2011-06-15").expect_err("unknown");
        assert_eq!(error.code, StsErrorCode::InvalidAction);
        let error = assume(&body("").replace("2011-06-15", "2099-01-01")).expect_err("version");
        assert_eq!(
            error.message,
            "Could not find operation AssumeRole for version 2099-01-01"
        );
    }

    #[test]
    fn call_log_view_names_the_role_account_and_hides_the_external_id() {
        let call = call(Some(AUTH), &body("&ExternalId=ext-1"));
        assert_eq!(call.action(), "AssumeRole");
        assert_eq!(call.role_account(), Some("111111111111"));
        assert_eq!(
            call.logged_request(),
            serde_json::json!({
                "Action": "AssumeRole",
                "Version": "2011-06-15",
                "RoleArn": ROLE,
                "RoleSessionName": "s1",
                "ExternalId": "<redacted>",
            })
        );
    }

    #[test]
    fn documents_escape_their_text() {
        let error = StsError::new(StsErrorCode::ValidationError, "Value '<a&b>'");
        let xml = error.to_xml("req-1");
        assert!(
            xml.starts_with("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">")
        );
        assert!(xml.contains("<Type>Sender</Type>"));
        assert!(xml.contains("<Code>ValidationError</Code>"));
        assert!(xml.contains("<Message>Value &apos;&lt;a&amp;b&gt;&apos;</Message>"));
        assert!(xml.contains("<RequestId>req-1</RequestId>"));
        let failure = StsError::new(StsErrorCode::InternalFailure, "boom").to_xml("r");
        assert!(failure.contains("<Type>Receiver</Type>"));
    }
}
