//! `accountlink.v1.AuditService`: reading the audit trail over gRPC.
//!
//! `ListAuditEvents` runs like every other RPC of [`AccountLinkApi`]:
//! authenticate -> validate -> the method policy (there is no acting
//! account, so the account policy does not apply) -> read -> one audit event
//! (read-only, no account, idempotency outcome `none`) -> answer.
//!
//! Paging follows AIP-158 with a keyset cursor: the page token is the hex
//! of `version (1 byte) || last seq (8 bytes, big-endian) || the first 16
//! bytes of SHA-256 over the canonical filters`. It is decoded into an
//! `i64` that is bound as a parameter, never spliced into SQL, and a token
//! sent with other filters than the ones it was issued for is
//! INVALID_ARGUMENT. `page_size` may change between pages (AIP-158).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::{Code, Request, Response, Status};

use super::context::{AuditDraft, CallContext};
use super::convert::audit_str;
use super::{AccountLinkApi, METHODS};
use crate::domain::{AccountId, FieldViolation, LinkId, Provider};
use crate::error::{ApiError, code_name};
use crate::proto::pb;
use crate::proto::pb::audit_service_server::AuditService;
use crate::store::{AuditQuery, IdempotencyOutcome, Store, StoredAuditEvent};
use crate::upstream::Upstream;

/// The method name of `ListAuditEvents`, as policies and the trail name it.
pub const LIST_AUDIT_EVENTS: &str = "ListAuditEvents";

/// `page_size` when the request sends 0 (AIP-158).
pub const DEFAULT_PAGE_SIZE: i64 = 50;

/// Largest `page_size`; larger values are coerced to it (AIP-158).
pub const MAX_PAGE_SIZE: i64 = 1000;

/// Longest accepted `principal` filter, in characters.
const MAX_PRINCIPAL_CHARS: usize = 1024;

const PAGE_TOKEN_VERSION: u8 = 1;
const FILTER_DIGEST_BYTES: usize = 16;
const PAGE_TOKEN_BYTES: usize = 1 + 8 + FILTER_DIGEST_BYTES;

/// A validated `ListAuditEventsRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListAuditEventsInput {
    /// The filters, the cursor (`before_seq`) and `limit` = page size.
    pub(crate) query: AuditQuery,
}

/// The `google.rpc.Code` names, as the trail stores them.
fn code_names() -> impl Iterator<Item = &'static str> {
    (0..=16).map(|i| code_name(Code::from(i)))
}

/// A `google.protobuf.Timestamp` as a time, rounded up to the microsecond
/// (PostgreSQL's precision; event times are whole microseconds, so
/// `t >= x` and `t < x` keep their meaning). `None` when it is outside the
/// Timestamp range (0001-01-01..=9999-12-31) or `nanos` is not in
/// `0..=999_999_999`.
fn time_from_pb(ts: &prost_types::Timestamp) -> Option<OffsetDateTime> {
    const MIN_SECONDS: i64 = -62_135_596_800;
    const MAX_SECONDS: i64 = 253_402_300_799;
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&ts.seconds) || !(0..1_000_000_000).contains(&ts.nanos)
    {
        return None;
    }
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    let micros_up = nanos.div_euclid(1_000) + i128::from(nanos.rem_euclid(1_000) != 0);
    OffsetDateTime::from_unix_timestamp_nanos(micros_up * 1_000).ok()
}

fn time_to_pb(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

/// SHA-256 (first 16 bytes) over the filters of `query` (not the cursor,
/// not the page size), each field tagged and length-prefixed.
fn filter_digest(query: &AuditQuery) -> [u8; FILTER_DIGEST_BYTES] {
    fn field(hasher: &mut Sha256, tag: u8, value: Option<&[u8]>) {
        hasher.update([tag]);
        match value {
            None => hasher.update([0]),
            Some(v) => {
                hasher.update([1]);
                hasher.update((v.len() as u64).to_be_bytes());
                hasher.update(v);
            }
        }
    }
    let nanos = |t: Option<OffsetDateTime>| t.map(|t| t.unix_timestamp_nanos().to_be_bytes());
    let mut hasher = Sha256::new();
    hasher.update(b"accountlink.v1.AuditService/ListAuditEvents\n");
    field(
        &mut hasher,
        1,
        nanos(query.start_time).as_ref().map(|b| &b[..]),
    );
    field(
        &mut hasher,
        2,
        nanos(query.end_time).as_ref().map(|b| &b[..]),
    );
    field(&mut hasher, 3, query.method.as_deref().map(str::as_bytes));
    field(
        &mut hasher,
        4,
        query.principal.as_deref().map(str::as_bytes),
    );
    field(
        &mut hasher,
        5,
        query.account_id.as_deref().map(str::as_bytes),
    );
    field(&mut hasher, 6, query.link_id.as_deref().map(str::as_bytes));
    field(
        &mut hasher,
        7,
        query.grpc_code.as_deref().map(str::as_bytes),
    );
    field(
        &mut hasher,
        11,
        query.provider.as_deref().map(str::as_bytes),
    );
    field(
        &mut hasher,
        12,
        query.invitation_id.as_deref().map(str::as_bytes),
    );
    field(
        &mut hasher,
        8,
        query.idempotency_outcome.map(|o| o.as_str().as_bytes()),
    );
    let mut digest = [0; FILTER_DIGEST_BYTES];
    digest.copy_from_slice(&hasher.finalize()[..FILTER_DIGEST_BYTES]);
    digest
}

/// The page token after the event `last_seq`, for the filters of `query`.
fn encode_page_token(last_seq: i64, query: &AuditQuery) -> String {
    let mut bytes = Vec::with_capacity(PAGE_TOKEN_BYTES);
    bytes.push(PAGE_TOKEN_VERSION);
    bytes.extend_from_slice(&last_seq.to_be_bytes());
    bytes.extend_from_slice(&filter_digest(query));
    hex::encode(bytes)
}

/// The cursor (`seq` of the last event of the previous page) in `token`,
/// which must have been issued for the filters of `query`.
fn decode_page_token(token: &str, query: &AuditQuery) -> Result<i64, String> {
    let invalid = || "is not a page token of ListAuditEvents".to_owned();
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    if bytes.len() != PAGE_TOKEN_BYTES || bytes[0] != PAGE_TOKEN_VERSION {
        return Err(invalid());
    }
    let mut seq = [0; 8];
    seq.copy_from_slice(&bytes[1..9]);
    let seq = i64::from_be_bytes(seq);
    if seq < 1 {
        return Err(invalid());
    }
    if bytes[9..] != filter_digest(query) {
        return Err(
            "was issued for different filters; send the same filters with a page token (AIP-158)"
                .to_owned(),
        );
    }
    Ok(seq)
}

/// Validates a `ListAuditEventsRequest` (DESIGN §4): one violation per bad
/// field, named by its proto field name.
pub(crate) fn list_audit_events_input(
    req: &pb::ListAuditEventsRequest,
) -> Result<ListAuditEventsInput, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let mut bad = |field: &str, description: String| {
        violations.push(FieldViolation::new(field, description));
    };
    let mut time = |field: &str, ts: Option<&prost_types::Timestamp>| {
        let ts = ts?;
        let parsed = time_from_pb(ts);
        if parsed.is_none() {
            bad(
                field,
                "must be a valid timestamp: 0001-01-01T00:00:00Z..=9999-12-31T23:59:59Z, nanos 0..=999999999".to_owned(),
            );
        }
        parsed
    };
    let start_time = time("start_time", req.start_time.as_ref());
    let end_time = time("end_time", req.end_time.as_ref());
    let text = |raw: &str| (!raw.is_empty()).then(|| raw.to_owned());
    let mut query = AuditQuery {
        start_time,
        end_time,
        method: text(&req.method),
        principal: text(&req.principal),
        account_id: text(&req.account_id),
        link_id: text(&req.link_id),
        provider: match pb::ResourceShareProvider::try_from(req.provider) {
            Ok(pb::ResourceShareProvider::AwsRam) => Some(Provider::AwsRam.as_str().to_owned()),
            Ok(pb::ResourceShareProvider::HuaweiRam) => {
                Some(Provider::HuaweiRam.as_str().to_owned())
            }
            Ok(pb::ResourceShareProvider::Unspecified) | Err(_) => None,
        },
        invitation_id: text(&req.invitation_id),
        grpc_code: text(&req.grpc_code),
        idempotency_outcome: None,
        before_seq: None,
        limit: match req.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => i64::from(n).clamp(1, MAX_PAGE_SIZE),
        },
    };
    if let (Some(start), Some(end)) = (start_time, end_time)
        && end < start
    {
        bad("end_time", "must not be before start_time".to_owned());
    }
    if let Some(m) = &query.method
        && !METHODS.contains(&m.as_str())
    {
        bad(
            "method",
            format!("must be an RPC method name: {}", METHODS.join(", ")),
        );
    }
    if let Some(p) = &query.principal
        && (p.chars().count() > MAX_PRINCIPAL_CHARS || p.chars().any(char::is_control))
    {
        bad(
            "principal",
            format!("must be at most {MAX_PRINCIPAL_CHARS} characters without control characters"),
        );
    }
    if pb::ResourceShareProvider::try_from(req.provider).is_err() {
        bad(
            "provider",
            "must be a ResourceShareProvider value".to_owned(),
        );
    }
    if let Some(i) = &query.invitation_id
        && (i.len() > 256 || i.chars().any(char::is_control))
    {
        bad(
            "invitation_id",
            "must be at most 256 characters without control characters".to_owned(),
        );
    }
    if let Some(a) = &query.account_id
        && let Err(e) = AccountId::parse_any(a)
    {
        bad("account_id", e);
    }
    if let Some(l) = &query.link_id
        && let Err(e) = LinkId::parse(l)
    {
        bad("link_id", e);
    }
    if let Some(c) = &query.grpc_code
        && !code_names().any(|n| n == c)
    {
        bad(
            "grpc_code",
            "must be a google.rpc.Code name, e.g. OK, INVALID_ARGUMENT, NOT_FOUND".to_owned(),
        );
    }
    if !req.idempotency_outcome.is_empty() {
        query.idempotency_outcome = IdempotencyOutcome::parse(&req.idempotency_outcome);
        if query.idempotency_outcome.is_none() {
            let names: Vec<&str> = IdempotencyOutcome::ALL.iter().map(|o| o.as_str()).collect();
            bad(
                "idempotency_outcome",
                format!("must be one of {}", names.join(", ")),
            );
        }
    }
    if req.page_size < 0 {
        bad("page_size", "must not be negative".to_owned());
    }
    if !req.page_token.is_empty() {
        match decode_page_token(&req.page_token, &query) {
            Ok(seq) => query.before_seq = Some(seq),
            Err(e) => bad("page_token", e),
        }
    }
    if violations.is_empty() {
        Ok(ListAuditEventsInput { query })
    } else {
        Err(violations)
    }
}

/// Redacted `request_parameters` of a `ListAuditEventsRequest`: every field
/// as sent (strings cut to 256 characters; times in RFC 3339).
fn audit_params(req: &pb::ListAuditEventsRequest) -> Value {
    let time = |ts: Option<&prost_types::Timestamp>| match ts {
        None => Value::Null,
        Some(ts) => OffsetDateTime::from_unix_timestamp(ts.seconds)
            .ok()
            .filter(|_| (0..1_000_000_000).contains(&ts.nanos))
            .and_then(|t| t.replace_nanosecond(u32::try_from(ts.nanos).ok()?).ok())
            .and_then(|t| t.format(&Rfc3339).ok())
            .map_or_else(
                || json!({ "seconds": ts.seconds, "nanos": ts.nanos }),
                Value::String,
            ),
    };
    json!({
        "start_time": time(req.start_time.as_ref()),
        "end_time": time(req.end_time.as_ref()),
        "method": audit_str(&req.method),
        "principal": audit_str(&req.principal),
        "account_id": audit_str(&req.account_id),
        "link_id": audit_str(&req.link_id),
        "provider": req.provider,
        "invitation_id": audit_str(&req.invitation_id),
        "grpc_code": audit_str(&req.grpc_code),
        "idempotency_outcome": audit_str(&req.idempotency_outcome),
        "page_size": req.page_size,
        "page_token": audit_str(&req.page_token),
    })
}

/// A JSON value as a `google.protobuf.Value` (numbers become doubles).
fn json_to_pb_value(value: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        Value::Null => Kind::NullValue(prost_types::NullValue::NullValue as i32),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_pb_value).collect(),
        }),
        Value::Object(_) => Kind::StructValue(json_to_struct(value)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A JSON object as a `google.protobuf.Struct`; any other JSON value (the
/// service never stores one) becomes `{"value": <it>}`.
fn json_to_struct(value: &Value) -> prost_types::Struct {
    let fields = match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_pb_value(v)))
            .collect(),
        other => [("value".to_owned(), json_to_pb_value(other))].into(),
    };
    prost_types::Struct { fields }
}

/// The `pb` form of a stored event.
fn event_to_pb(stored: StoredAuditEvent) -> pb::AuditEvent {
    let e = stored.event;
    pb::AuditEvent {
        event_id: e.event_id.hyphenated().to_string(),
        chain_id: stored.chain_id,
        seq: stored.seq,
        event_time: Some(time_to_pb(e.event_time)),
        method: e.method,
        read_only: e.read_only,
        principal: e.principal,
        source_ip: e.source_ip,
        user_agent: e.user_agent,
        request_id: e.request_id,
        account_id: e.account_id,
        request_parameters: Some(json_to_struct(&e.request_parameters)),
        response_elements: e.response_elements.as_ref().map(json_to_struct),
        grpc_code: e.grpc_code,
        error_reason: e.error_reason,
        error_message: e.error_message,
        upstream_request_id: e.upstream_request_id,
        upstream_attempts: i32::try_from(e.upstream_attempts).unwrap_or(i32::MAX),
        idempotency_outcome: e.idempotency_outcome.as_str().to_owned(),
        client_token_sha256: e.client_token_sha256,
        duration_us: i64::try_from(e.duration_us).unwrap_or(i64::MAX),
        prev_hash: hex::encode(stored.prev_hash),
        row_hash: hex::encode(stored.row_hash),
    }
}

impl<U: Upstream> AccountLinkApi<U> {
    /// Authentication, decoding, validation and the method policy, in the
    /// order of [`AccountLinkApi::admit`], for an RPC without an acting
    /// account.
    fn admit_without_account<T>(
        &self,
        ctx: &CallContext,
        draft: &mut AuditDraft,
        parsed: Result<T, Vec<FieldViolation>>,
    ) -> Result<T, ApiError> {
        self.database_up()?;
        if let Some(err) = ctx.auth_error {
            return Err(ApiError::unauthenticated(err));
        }
        if let Some(malformed) = &ctx.malformed {
            draft.set_parameters(json!({ "malformed": true }));
            return Err(ApiError::malformed(malformed));
        }
        let input = parsed.map_err(|v| ApiError::invalid_argument(&v))?;
        if !self.inner.policy.allows_method(&ctx.principal, ctx.method) {
            return Err(ApiError::caller_not_allowed(
                &ctx.principal,
                ctx.method,
                None,
            ));
        }
        Ok(input)
    }
}

#[tonic::async_trait]
impl<U: Upstream> AuditService for AccountLinkApi<U> {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let ctx = self.context(LIST_AUDIT_EVENTS, true, &request);
        let req = request.into_inner();
        let this = self.clone();
        self.detach(ctx.span(), async move {
            let mut draft = AuditDraft::new(audit_params(&req));
            let parsed = list_audit_events_input(&req);
            let input = match this.admit_without_account(&ctx, &mut draft, parsed) {
                Ok(v) => v,
                Err(e) => return Err(this.refuse(&ctx, draft, e).await),
            };
            let page_size = input.query.limit;
            // One row more than the page tells whether another page exists.
            let mut query = input.query;
            query.limit = page_size + 1;
            let mut events = match this.inner.store.list_audit_events(&query).await {
                Ok(events) => events,
                Err(e) => return Err(this.refuse(&ctx, draft, ApiError::database(&e)).await),
            };
            let more = events.len() > usize::try_from(page_size).unwrap_or(usize::MAX);
            events.truncate(usize::try_from(page_size).unwrap_or(usize::MAX));
            let next_page_token = match events.last() {
                Some(last) if more => encode_page_token(last.seq, &query),
                _ => String::new(),
            };
            let body = pb::ListAuditEventsResponse {
                audit_events: events.into_iter().map(event_to_pb).collect(),
                next_page_token,
            };
            this.answer(&ctx, draft, body).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(req: &pb::ListAuditEventsRequest) -> Vec<String> {
        list_audit_events_input(req)
            .expect_err("expected violations")
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    fn ts(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos })
    }

    #[test]
    fn page_size_defaults_to_50_and_is_capped_at_1000() {
        let limit = |page_size| {
            list_audit_events_input(&pb::ListAuditEventsRequest {
                page_size,
                ..Default::default()
            })
            .unwrap()
            .query
            .limit
        };
        assert_eq!(limit(0), 50);
        assert_eq!(limit(7), 7);
        assert_eq!(limit(1000), 1000);
        assert_eq!(limit(i32::MAX), 1000);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let req = pb::ListAuditEventsRequest {
            start_time: ts(100, 0),
            end_time: ts(99, 0),
            method: "DropTable".into(),
            principal: "a\nb".into(),
            account_id: "12".into(),
            link_id: "nope".into(),
            grpc_code: "not_found".into(),
            idempotency_outcome: "maybe".into(),
            page_size: -1,
            page_token: "zz".into(),
            provider: 7,
            invitation_id: "a\u{0}b".into(),
        };
        assert_eq!(
            fields(&req),
            [
                "end_time",
                "method",
                "principal",
                "provider",
                "invitation_id",
                "account_id",
                "link_id",
                "grpc_code",
                "idempotency_outcome",
                "page_size",
                "page_token"
            ]
        );
        let req = pb::ListAuditEventsRequest {
            start_time: ts(0, 1_000_000_000),
            end_time: ts(253_402_300_800, 0),
            ..Default::default()
        };
        assert_eq!(fields(&req), ["start_time", "end_time"]);
    }

    #[test]
    fn times_round_up_to_the_microsecond() {
        let t = time_from_pb(&prost_types::Timestamp {
            seconds: 10,
            nanos: 1,
        })
        .unwrap();
        assert_eq!(t.unix_timestamp_nanos(), 10_000_001_000);
        let t = time_from_pb(&prost_types::Timestamp {
            seconds: -1,
            nanos: 999_999_999,
        })
        .unwrap();
        assert_eq!(t.unix_timestamp_nanos(), 0);
        let t = time_from_pb(&prost_types::Timestamp {
            seconds: 10,
            nanos: 5_000,
        })
        .unwrap();
        assert_eq!(t.unix_timestamp_nanos(), 10_000_005_000);
    }

    #[test]
    fn page_tokens_round_trip_and_are_bound_to_the_filters() {
        let query = AuditQuery {
            principal: Some("alice".into()),
            limit: 10,
            ..Default::default()
        };
        let token = encode_page_token(1234, &query);
        assert_eq!(decode_page_token(&token, &query), Ok(1234));
        // The page size and the cursor are not filters.
        let resized = AuditQuery {
            limit: 99,
            before_seq: Some(7),
            ..query.clone()
        };
        assert_eq!(decode_page_token(&token, &resized), Ok(1234));
        let other = AuditQuery {
            principal: Some("bob".into()),
            ..query.clone()
        };
        assert!(
            decode_page_token(&token, &other)
                .unwrap_err()
                .contains("different filters")
        );
        // Moving a value between filters changes the digest too.
        let moved = AuditQuery {
            principal: None,
            method: Some("alice".into()),
            ..query.clone()
        };
        assert!(decode_page_token(&token, &moved).is_err());
        for forged in [
            "",
            "1; drop table audit_event",
            &token[..token.len() - 2],
            &format!("02{}", &token[2..]),
            &encode_page_token(0, &query),
            &encode_page_token(-5, &query),
        ] {
            assert!(decode_page_token(forged, &query).is_err(), "{forged}");
        }
    }

    #[test]
    fn json_becomes_struct_values() {
        let value = json!({"a": 1, "b": [true, null, "x"], "c": {"d": 2.5}});
        let s = json_to_struct(&value);
        assert_eq!(s.fields.len(), 3);
        assert_eq!(
            s.fields["a"].kind,
            Some(prost_types::value::Kind::NumberValue(1.0))
        );
        let wrapped = json_to_struct(&json!("scalar"));
        assert!(wrapped.fields.contains_key("value"));
    }
}
