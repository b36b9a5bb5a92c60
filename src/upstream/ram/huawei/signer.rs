//! Huawei Cloud's AK/SK request signature, `SDK-HMAC-SHA256`, in both directions: [`sign`]
//! for the client adapter and [`verify`] for the emulator.
//!
//! The algorithm is the one of the official SDKs (Go `core/auth/signer/signer.go`, Python
//! `huaweicloudsdkcore/signer/signer.py`, and Huawei's "API Request Signing Guide",
//! <https://support.huaweicloud.com/intl/en-us/devg-apisign/api-sign-algorithm.html>):
//!
//! ```text
//! CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n
//!                    SignedHeaders \n HexSha256(Body)
//! StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n HexSha256(CanonicalRequest)
//! Signature        = Hex(HMAC-SHA256(SK, StringToSign))
//! Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<h1;h2>, Signature=<hex>
//! ```
//!
//! - CanonicalURI: the path split on `/`, each segment percent-decoded then escaped (every
//!   byte but `A-Z a-z 0-9 - _ . ~` as `%XX`, upper-case hex), joined by `/`, with a `/`
//!   appended when it does not end in one (so `/path` signs as `/path/`).
//! - CanonicalQuery: `key=value` pairs, both escaped as above, sorted by key then value,
//!   joined by `&` (a key without `=` has an empty value).
//! - SignedHeaders: the lower-cased names of every header sent, except those starting with
//!   `content-type` or containing `_` (Go `extractSignedHeaders`), sorted, joined by `;`.
//!   CanonicalHeaders: `name:value` (value trimmed) for each signed header, values of a
//!   repeated header sorted, each line ending in `\n`.
//! - The body hash is the `X-Sdk-Content-Sha256` header's value when one is sent (the SDKs
//!   send `UNSIGNED-PAYLOAD` for non-JSON bodies), else the hex SHA-256 of the body.
//! - `X-Sdk-Date` is `YYYYMMDDTHHMMSSZ` (UTC). Temporary credentials add
//!   `X-Security-Token`, which, as every header sent, is signed.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// The algorithm name that opens the `Authorization` header and the string to sign.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// The signing time header, `YYYYMMDDTHHMMSSZ` in UTC.
pub const DATE_HEADER: &str = "X-Sdk-Date";
/// The session token header of temporary credentials (signed like every other header).
pub const SECURITY_TOKEN_HEADER: &str = "X-Security-Token";
/// The header whose value replaces the body hash when present (`UNSIGNED-PAYLOAD`).
pub const CONTENT_SHA256_HEADER: &str = "X-Sdk-Content-Sha256";
/// How far `X-Sdk-Date` may be from the verifier's clock. Huawei's API gateway refuses a
/// request whose signing time is more than 15 minutes off (API Request Signing Guide, FAQ
/// "Incorrect IAM authentication information").
pub const MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(15);

/// `X-Sdk-Date`'s format (Go layout `20060102T150405Z`).
const DATE_FORMAT: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// An AK/SK pair, with the session token of temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (AK), sent in the clear as `Access=`.
    pub access_key_id: String,
    /// The secret access key (SK), the HMAC key; never sent.
    pub secret_access_key: String,
    /// The security token of temporary credentials, sent (and signed) as
    /// `X-Security-Token`.
    pub security_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The AK or the SK is empty (the SDKs refuse these too).
    #[error("ak and sk are required in credentials")]
    MissingKey,
    /// The security token cannot be sent as a header value.
    #[error("the security token is not a valid header value")]
    InvalidToken,
}

/// Why a request's signature was refused. The `Display` text is the detail the emulator
/// appends to `Incorrect IAM authentication information: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No `Authorization` header.
    #[error("the authorization header is missing")]
    MissingAuthorization,
    /// An `Authorization` header that is not `SDK-HMAC-SHA256 Access=…, SignedHeaders=…,
    /// Signature=…`.
    #[error("the authorization header is malformed")]
    MalformedAuthorization,
    /// No `X-Sdk-Date`, or it is not signed.
    #[error("the x-sdk-date header is missing or not signed")]
    MissingDate,
    /// `X-Sdk-Date` is not `YYYYMMDDTHHMMSSZ`.
    #[error("the x-sdk-date header is malformed")]
    MalformedDate,
    /// `X-Sdk-Date` is more than [`MAX_CLOCK_SKEW`] from the verifier's clock.
    #[error("the request time differs from the server time by more than 15 minutes")]
    ClockSkew,
    /// A header named in `SignedHeaders` was not sent, or `X-Security-Token` was sent but
    /// not signed.
    #[error("signed header {0} is missing or a sent header is not signed")]
    HeaderNotSigned(String),
    /// The access key id is not known.
    #[error("Get secretKey failed,ak:{0},err:ak not exist")]
    UnknownAccessKey(String),
    /// The signature does not match the one computed with the access key's secret.
    #[error("verify aksk signature fail")]
    SignatureMismatch,
}

/// A request whose signature [`verify`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The `Access=` access key id.
    pub access_key_id: String,
    /// The `X-Security-Token` sent (and signed), if any.
    pub security_token: Option<String>,
}

/// Signs a request in place, as the Go SDK's `Signer.Sign` does: sets `X-Sdk-Date` from
/// `now` unless `headers` already has a parseable one (which is then used, as the SDKs do),
/// adds `X-Security-Token` for temporary credentials, and sets `Authorization`.
///
/// Every header already in `headers` (but `content-type*` and names with `_`) is signed; the
/// caller adds `Host` first if it wants it signed (the SDKs do; the API gateway accepts
/// either).
///
/// # Errors
/// [`SignError`] for an empty AK or SK or a token that cannot be a header value.
pub fn sign(
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    body: &[u8],
    credentials: &Credentials,
    now: OffsetDateTime,
) -> Result<(), SignError> {
    if credentials.access_key_id.is_empty() || credentials.secret_access_key.is_empty() {
        return Err(SignError::MissingKey);
    }
    let date = match header_str(headers, DATE_HEADER).and_then(parse_date) {
        Some(date) => format_date(date),
        None => format_date(now),
    };
    headers.insert(
        HeaderName::from_static("x-sdk-date"),
        HeaderValue::from_str(&date).map_err(|_| SignError::MissingKey)?,
    );
    if let Some(token) = &credentials.security_token {
        let value = HeaderValue::from_str(token).map_err(|_| SignError::InvalidToken)?;
        headers.insert(HeaderName::from_static("x-security-token"), value);
    }
    headers.remove(AUTHORIZATION);
    let signed = signed_headers(headers);
    let canonical = canonical_request(method, uri, headers, &signed, body);
    let signature = signature(&credentials.secret_access_key, &date, &canonical);
    let authorization = format!(
        "{ALGORITHM} Access={}, SignedHeaders={}, Signature={signature}",
        credentials.access_key_id,
        signed.join(";")
    );
    let value = HeaderValue::from_str(&authorization).map_err(|_| SignError::MissingKey)?;
    headers.insert(AUTHORIZATION, value);
    Ok(())
}

/// Checks a received request's `SDK-HMAC-SHA256` signature, as Huawei's API gateway does:
/// parses `Authorization`, requires a signed `X-Sdk-Date` within [`MAX_CLOCK_SKEW`] of
/// `now` and a signed `X-Security-Token` when one is sent, looks the access key's secret up
/// with `secret_for`, recomputes the signature over the signed headers, and compares in
/// constant time.
///
/// `uri` is the request target as received (path percent-encoded; it is decoded before
/// being canonicalised, so a client that encodes differently still verifies).
///
/// # Errors
/// The first [`VerifyError`] found, in the order above.
pub fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    secret_for: impl FnOnce(&str) -> Option<String>,
    now: OffsetDateTime,
) -> Result<Verified, VerifyError> {
    let authorization = headers
        .get(AUTHORIZATION)
        .ok_or(VerifyError::MissingAuthorization)?
        .to_str()
        .map_err(|_| VerifyError::MalformedAuthorization)?;
    let parsed = parse_authorization(authorization)?;
    if !parsed.signed_headers.iter().any(|h| h == "x-sdk-date") {
        return Err(VerifyError::MissingDate);
    }
    let date = header_str(headers, DATE_HEADER).ok_or(VerifyError::MissingDate)?;
    let signed_at = parse_date(date).ok_or(VerifyError::MalformedDate)?;
    if (now - signed_at).abs() > MAX_CLOCK_SKEW {
        return Err(VerifyError::ClockSkew);
    }
    for name in &parsed.signed_headers {
        if !headers.contains_key(name.as_str()) {
            return Err(VerifyError::HeaderNotSigned(name.clone()));
        }
    }
    let security_token = header_str(headers, SECURITY_TOKEN_HEADER).map(str::to_owned);
    if security_token.is_some()
        && !parsed
            .signed_headers
            .iter()
            .any(|h| h == "x-security-token")
    {
        return Err(VerifyError::HeaderNotSigned("x-security-token".to_owned()));
    }
    let secret = secret_for(&parsed.access_key_id)
        .ok_or_else(|| VerifyError::UnknownAccessKey(parsed.access_key_id.clone()))?;
    let canonical = canonical_request(method, uri, headers, &parsed.signed_headers, body);
    let expected = signature(&secret, date, &canonical);
    if expected
        .as_bytes()
        .ct_eq(parsed.signature.to_ascii_lowercase().as_bytes())
        .into()
    {
        Ok(Verified {
            access_key_id: parsed.access_key_id,
            security_token,
        })
    } else {
        Err(VerifyError::SignatureMismatch)
    }
}

/// The parts of an `Authorization: SDK-HMAC-SHA256 …` header.
#[derive(Debug)]
struct Authorization {
    access_key_id: String,
    signed_headers: Vec<String>,
    signature: String,
}

/// Parses `SDK-HMAC-SHA256 Access=<ak>, SignedHeaders=<a;b>, Signature=<hex>` (the three
/// fields in any order, separated by `,` and optional spaces).
fn parse_authorization(value: &str) -> Result<Authorization, VerifyError> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or(VerifyError::MalformedAuthorization)?;
    let (mut access, mut signed, mut signature) = (None, None, None);
    for field in rest.split(',') {
        let (name, value) = field
            .trim()
            .split_once('=')
            .ok_or(VerifyError::MalformedAuthorization)?;
        let slot = match name {
            "Access" => &mut access,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return Err(VerifyError::MalformedAuthorization),
        };
        *slot = Some(value.to_owned());
    }
    let (Some(access_key_id), Some(signed), Some(signature)) = (access, signed, signature) else {
        return Err(VerifyError::MalformedAuthorization);
    };
    if access_key_id.is_empty() || signed.is_empty() || signature.is_empty() {
        return Err(VerifyError::MalformedAuthorization);
    }
    Ok(Authorization {
        access_key_id,
        signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
        signature,
    })
}

/// Hex HMAC-SHA256 of the string to sign.
fn signature(secret: &str, date: &str, canonical_request: &str) -> String {
    let string_to_sign = format!(
        "{ALGORITHM}\n{date}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("hmac accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The names [`sign`] signs: every header but `content-type*` and names with `_`,
/// lower-cased, sorted, deduplicated.
fn signed_headers(headers: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = headers
        .keys()
        .map(|name| name.as_str().to_ascii_lowercase())
        .filter(|name| !name.starts_with("content-type") && !name.contains('_'))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The canonical request over `signed` (lower-case names).
pub(crate) fn canonical_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed: &[String],
    body: &[u8],
) -> String {
    let body_hash = match header_str(headers, CONTENT_SHA256_HEADER) {
        Some(value) => value.to_owned(),
        None => hex::encode(Sha256::digest(body)),
    };
    let mut canonical_headers = String::new();
    for name in signed {
        let mut values: Vec<&str> = headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .collect();
        values.sort_unstable();
        for value in values {
            canonical_headers.push_str(name);
            canonical_headers.push(':');
            canonical_headers.push_str(value);
            canonical_headers.push('\n');
        }
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        method.as_str(),
        canonical_uri(uri.path()),
        canonical_query(uri.query().unwrap_or_default()),
        canonical_headers,
        signed.join(";"),
        body_hash
    )
}

/// Each `/`-separated segment decoded then escaped; a trailing `/` added when missing.
fn canonical_uri(path: &str) -> String {
    let mut out = path
        .split('/')
        .map(|segment| escape(&percent_decode(segment)))
        .collect::<Vec<_>>()
        .join("/");
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// `key=value` pairs decoded, sorted by key then value, escaped, joined by `&`.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(pair), String::new()),
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Go `escape`: every byte but `A-Z a-z 0-9 - _ . ~` as `%XX` (upper-case hex).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (a malformed one is kept as is; `+` stays `+`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|b| char::from(*b).to_digit(16)),
                bytes.get(i + 2).and_then(|b| char::from(*b).to_digit(16)),
            )
        {
            // Two hex digits: at most 0xFF.
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'%'));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `20060102T150405Z` -> the instant; `None` when malformed.
fn parse_date(value: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(value, DATE_FORMAT)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// The instant as `X-Sdk-Date` (UTC).
pub fn format_date(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(DATE_FORMAT)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn go_credentials() -> Credentials {
        Credentials {
            access_key_id: "AccessKey".to_owned(),
            secret_access_key: "SecretKey".to_owned(),
            security_token: None,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("valid name"),
                HeaderValue::from_str(value).expect("valid value"),
            );
        }
        map
    }

    fn authorization(headers: &HeaderMap) -> &str {
        headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .expect("authorization set")
    }

    /// Go SDK `core/auth/signer/signer_test.go` `TestSigner_Sign` case `test1`: GET
    /// `https://example.huaweicloud.com/path?limit=1`, no body, headers `X-Sdk-Date` and
    /// `TEST_UNDERSCORE` (not signed: it has `_`), no `Host` header.
    #[test]
    fn go_sdk_vector_get() {
        let mut map = headers(&[
            ("X-Sdk-Date", "20060102T150405Z"),
            ("TEST_UNDERSCORE", "TEST_VALUE"),
        ]);
        let uri: Uri = "/path?limit=1".parse().expect("uri");
        // `now` is ignored: the request's own X-Sdk-Date wins, as in the SDK.
        sign(
            &Method::GET,
            &uri,
            &mut map,
            b"",
            &go_credentials(),
            OffsetDateTime::now_utc(),
        )
        .expect("signs");
        assert_eq!(
            authorization(&map),
            "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, \
             Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"
        );
    }

    /// Go SDK `TestSigner_Sign` case `test2`: POST `/path?key=value` with `Content-Type:
    /// application/json` (not signed) and the body Go's `json.Encoder` writes for
    /// `TestBody{Name: "test", Id: 1}`, trailing newline included.
    #[test]
    fn go_sdk_vector_post_with_json_body() {
        let mut map = headers(&[
            ("X-Sdk-Date", "20060102T150405Z"),
            ("TEST_UNDERSCORE", "TEST_VALUE"),
            ("Content-Type", "application/json"),
        ]);
        let uri: Uri = "/path?key=value".parse().expect("uri");
        let body = b"{\"Name\":\"test\",\"Id\":1}\n";
        sign(
            &Method::POST,
            &uri,
            &mut map,
            body,
            &go_credentials(),
            OffsetDateTime::now_utc(),
        )
        .expect("signs");
        assert_eq!(
            authorization(&map),
            "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, \
             Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59"
        );
    }

    /// Go SDK `TestSigner_canonicalQueryString`: sorting, repeated keys, and escaping of
    /// `/`, space, reserved characters and UTF-8 (the query as it arrives, encoded).
    #[test]
    fn go_sdk_canonical_query_vector() {
        let query = "limit=1&enable=true&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29\
                     &path=/tmp/123&multi=3&multi=1&multi=2";
        assert_eq!(
            canonical_query(query),
            "enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123\
             &test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29"
        );
    }

    #[test]
    fn canonical_uri_appends_the_trailing_slash_and_escapes_segments() {
        assert_eq!(canonical_uri("/path"), "/path/");
        assert_eq!(canonical_uri("/path/"), "/path/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(
            canonical_uri("/v1/resource-share-invitations/a%20b/accept"),
            "/v1/resource-share-invitations/a%20b/accept/"
        );
        assert_eq!(canonical_uri("/a:b"), "/a%3Ab/");
    }

    #[test]
    fn sign_sets_the_date_and_the_signed_security_token() {
        let now = datetime!(2024-05-06 07:08:09 UTC);
        let credentials = Credentials {
            security_token: Some("session-token".to_owned()),
            ..go_credentials()
        };
        let mut map = headers(&[
            ("Host", "ram.myhuaweicloud.com"),
            ("Content-Type", "application/json"),
        ]);
        let uri: Uri = "/v1/resource-share-invitations/search"
            .parse()
            .expect("uri");
        sign(&Method::POST, &uri, &mut map, b"{}", &credentials, now).expect("signs");
        assert_eq!(header_str(&map, DATE_HEADER), Some("20240506T070809Z"));
        assert_eq!(
            header_str(&map, SECURITY_TOKEN_HEADER),
            Some("session-token")
        );
        assert!(
            authorization(&map)
                .contains("SignedHeaders=host;x-sdk-date;x-security-token, Signature="),
            "{}",
            authorization(&map)
        );

        let secret = |ak: &str| (ak == "AccessKey").then(|| "SecretKey".to_owned());
        let verified =
            verify(&Method::POST, &uri, &map, b"{}", secret, now).expect("own signature");
        assert_eq!(verified.access_key_id, "AccessKey");
        assert_eq!(verified.security_token.as_deref(), Some("session-token"));

        // The token is covered by the signature: changing it breaks it.
        let mut tampered = map.clone();
        tampered.insert(
            HeaderName::from_static("x-security-token"),
            HeaderValue::from_static("other-token"),
        );
        assert_eq!(
            verify(&Method::POST, &uri, &tampered, b"{}", secret, now),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn verify_refuses_every_kind_of_bad_request() {
        let now = datetime!(2024-05-06 07:08:09 UTC);
        let uri: Uri = "/v1/resource-share-invitations/search"
            .parse()
            .expect("uri");
        let mut map = headers(&[("Host", "127.0.0.1:8080")]);
        sign(&Method::POST, &uri, &mut map, b"{}", &go_credentials(), now).expect("signs");
        let secret = |ak: &str| (ak == "AccessKey").then(|| "SecretKey".to_owned());
        let check =
            |map: &HeaderMap, body: &[u8], now| verify(&Method::POST, &uri, map, body, secret, now);
        assert!(check(&map, b"{}", now).is_ok());
        assert_eq!(
            check(&map, b"{ }", now),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verify(
                &Method::POST,
                &uri,
                &map,
                b"{}",
                |_| Some("wrong".into()),
                now
            ),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verify(&Method::POST, &uri, &map, b"{}", |_| None, now),
            Err(VerifyError::UnknownAccessKey("AccessKey".to_owned()))
        );
        assert_eq!(
            check(&map, b"{}", now + time::Duration::minutes(16)),
            Err(VerifyError::ClockSkew)
        );
        assert!(check(&map, b"{}", now - time::Duration::minutes(14)).is_ok());

        let mut no_auth = map.clone();
        no_auth.remove(AUTHORIZATION);
        assert_eq!(
            check(&no_auth, b"{}", now),
            Err(VerifyError::MissingAuthorization)
        );
        let mut garbled = map.clone();
        garbled.insert(
            AUTHORIZATION,
            HeaderValue::from_static("AWS4-HMAC-SHA256 x"),
        );
        assert_eq!(
            check(&garbled, b"{}", now),
            Err(VerifyError::MalformedAuthorization)
        );
        let mut no_host = map.clone();
        no_host.remove("host");
        assert_eq!(
            check(&no_host, b"{}", now),
            Err(VerifyError::HeaderNotSigned("host".to_owned()))
        );
        let mut unsigned_token = map.clone();
        unsigned_token.insert(
            HeaderName::from_static("x-security-token"),
            HeaderValue::from_static("t"),
        );
        assert_eq!(
            check(&unsigned_token, b"{}", now),
            Err(VerifyError::HeaderNotSigned("x-security-token".to_owned()))
        );
    }

    #[test]
    fn empty_keys_are_refused_and_the_secret_is_not_printed() {
        let mut map = HeaderMap::new();
        let credentials = Credentials {
            secret_access_key: String::new(),
            ..go_credentials()
        };
        assert_eq!(
            sign(
                &Method::GET,
                &Uri::from_static("/"),
                &mut map,
                b"",
                &credentials,
                OffsetDateTime::now_utc()
            ),
            Err(SignError::MissingKey)
        );
        assert!(!format!("{:?}", go_credentials()).contains("SecretKey"));
    }
}
