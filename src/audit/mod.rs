//! Tamper evidence for the audit trail (DESIGN §6; the model is AWS
//! CloudTrail's log-file integrity validation).
//!
//! Every event is a link of a hash chain:
//! `row_hash = SHA-256(prev_hash || canonical_v1(event))`, where
//! `prev_hash` is the previous row's `row_hash` (32 zero bytes before the
//! first row). [`verify`] recomputes a chain and names the first broken
//! `seq`.
//!
//! ## Canonical encoding, version 1
//! The RFC 8785 (JSON Canonicalization Scheme) serialization of one JSON
//! object holding:
//! `canonical_version` (1), `chain_id`, `seq`, and every DESIGN §6 column
//! except the two hashes: `event_id` (lowercase hyphenated UUID),
//! `event_time` (RFC 3339, UTC, exactly 6 fractional digits, `Z`),
//! `method`, `read_only`, `principal`, `source_ip`, `user_agent`,
//! `request_id`, `account_id`, `request_parameters` (the stored JSON),
//! `response_elements`, `grpc_code`, `error_reason`, `error_message`,
//! `upstream_request_id`, `upstream_attempts`, `idempotency_outcome`,
//! `client_token_sha256`, `duration_us`. An absent value is JSON `null`;
//! JCS orders the members by their UTF-16 code units and fixes string
//! escaping and number form, so the bytes do not depend on how PostgreSQL
//! returns `jsonb`. Event times are truncated to microseconds before they
//! are hashed and stored (PostgreSQL's precision).

pub mod checkpoint;
mod ops;
mod verify;

pub use ops::{
    AuditOpError, RetentionOutcome, cloudtrail_record, create_checkpoint, export_jsonl, retain,
    verify_checkpoint,
};
pub use verify::{Break, VerifyReport, verify};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use crate::store::AuditEvent;

/// The version of the canonical encoding this build writes and checks.
pub const CANONICAL_VERSION: u32 = 1;

/// The `prev_hash` of the first row of a chain.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

const EVENT_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Now, in UTC, truncated to microseconds (what PostgreSQL stores).
pub fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// `time` as the canonical encoding writes it: RFC 3339 UTC with six
/// fractional digits, e.g. `2026-11-21T08:41:58.892672Z`.
pub fn format_event_time(time: OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(EVENT_TIME)
        .unwrap_or_else(|_| time.unix_timestamp().to_string())
}

/// The canonical encoding v1 of one event with its `seq` left open: the
/// bytes before and after the `seq` member's value. Computed once per
/// event, off the writer's path; [`CanonicalParts::row_hash`] then only
/// hashes, once the group-commit writer knows the `seq`
/// ([`crate::store`]). The bytes are exactly those of [`canonical`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalParts {
    /// `{` and every member before `seq`, then `,"seq":`.
    before: Vec<u8>,
    /// `,` and every member after `seq`, then `}`.
    after: Vec<u8>,
}

impl CanonicalParts {
    /// The parts of `event` in `chain_id`. The members are written in JCS
    /// order (RFC 8785 §3.2.3: by UTF-16 code units; every name here is
    /// ASCII, so byte order), each value in its JCS form.
    pub fn new(chain_id: &str, e: &AuditEvent) -> Self {
        fn member(out: &mut Vec<u8>, name: &str, value: &impl serde::Serialize) {
            if out.len() > 1 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            // Serializing strings, numbers and `serde_json::Value`s cannot fail.
            out.extend(serde_json_canonicalizer::to_vec(value).unwrap_or_default());
        }
        let mut before = Vec::with_capacity(768);
        before.push(b'{');
        member(&mut before, "account_id", &e.account_id);
        member(&mut before, "canonical_version", &CANONICAL_VERSION);
        member(&mut before, "chain_id", &chain_id);
        member(&mut before, "client_token_sha256", &e.client_token_sha256);
        member(&mut before, "duration_us", &e.duration_us);
        member(&mut before, "error_message", &e.error_message);
        member(&mut before, "error_reason", &e.error_reason);
        member(
            &mut before,
            "event_id",
            &e.event_id.hyphenated().to_string(),
        );
        member(&mut before, "event_time", &format_event_time(e.event_time));
        member(&mut before, "grpc_code", &e.grpc_code);
        member(
            &mut before,
            "idempotency_outcome",
            &e.idempotency_outcome.as_str(),
        );
        member(&mut before, "method", &e.method);
        member(&mut before, "principal", &e.principal);
        member(&mut before, "read_only", &e.read_only);
        member(&mut before, "request_id", &e.request_id);
        member(&mut before, "request_parameters", &e.request_parameters);
        member(&mut before, "response_elements", &e.response_elements);
        before.extend_from_slice(b",\"seq\":");
        let mut after = Vec::with_capacity(256);
        after.push(b'{');
        member(&mut after, "source_ip", &e.source_ip);
        member(&mut after, "upstream_attempts", &e.upstream_attempts);
        member(&mut after, "upstream_request_id", &e.upstream_request_id);
        member(&mut after, "user_agent", &e.user_agent);
        after[0] = b',';
        after.push(b'}');
        Self { before, after }
    }

    /// The bytes before the `seq` member's value: `{`, every member
    /// before `seq`, then `,"seq":`.
    pub fn before(&self) -> &[u8] {
        &self.before
    }

    /// The bytes after the `seq` member's value: `,`, every member after
    /// `seq`, then `}`.
    pub fn after(&self) -> &[u8] {
        &self.after
    }

    /// The whole canonical encoding at `seq`.
    pub fn at(&self, seq: i64) -> Vec<u8> {
        [
            self.before.as_slice(),
            &seq_bytes(seq),
            self.after.as_slice(),
        ]
        .concat()
    }

    /// `SHA-256(prev || canonical_v1(event at seq))`.
    pub fn row_hash(&self, prev: &[u8; 32], seq: i64) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(prev);
        hasher.update(&self.before);
        hasher.update(seq_bytes(seq));
        hasher.update(&self.after);
        hasher.finalize().into()
    }
}

/// `seq` as JCS writes a number (RFC 8785 §3.2.2.3: the shortest form of
/// its IEEE 754 double, so a `seq` above 2^53 is rounded as it always was).
fn seq_bytes(seq: i64) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(&seq).unwrap_or_default()
}

/// The canonical encoding v1 of an event at `seq` of `chain_id`.
pub fn canonical(chain_id: &str, seq: i64, event: &AuditEvent) -> Vec<u8> {
    CanonicalParts::new(chain_id, event).at(seq)
}

/// `SHA-256(prev || canonical_v1(event))`.
pub fn row_hash(prev: &[u8; 32], chain_id: &str, seq: i64, event: &AuditEvent) -> [u8; 32] {
    CanonicalParts::new(chain_id, event).row_hash(prev, seq)
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::store::IdempotencyOutcome;

    /// An event with escapes and non-ASCII text in it (the other tests'
    /// fixture too: `store::postgres::batch`).
    pub(crate) fn event() -> AuditEvent {
        AuditEvent {
            event_id: uuid::Uuid::nil(),
            event_time: OffsetDateTime::from_unix_timestamp_nanos(1_795_250_566_123_456_000)
                .unwrap(),
            method: "GetAccountLink".into(),
            read_only: true,
            principal: "alice".into(),
            source_ip: None,
            user_agent: Some("ua \"x\"".into()),
            request_id: "r".into(),
            account_id: Some("111111111111".into()),
            request_parameters: json!({"z": 1, "a": "é"}),
            response_elements: None,
            grpc_code: "OK".into(),
            error_reason: None,
            error_message: None,
            upstream_request_id: None,
            upstream_attempts: 1,
            idempotency_outcome: IdempotencyOutcome::None,
            client_token_sha256: None,
            duration_us: 42,
        }
    }

    #[test]
    fn canonical_form_is_sorted_jcs_with_microsecond_utc_times() {
        let text = String::from_utf8(canonical("default", 7, &event())).unwrap();
        assert!(text.starts_with(r#"{"account_id":"111111111111","canonical_version":1,"chain_id":"default","client_token_sha256":null,"duration_us":42,"error_message":null"#), "{text}");
        assert!(
            text.contains(r#""event_time":"2026-11-21T08:42:46.123456Z""#),
            "{text}"
        );
        assert!(
            text.contains(r#""request_parameters":{"a":"é","z":1}"#),
            "{text}"
        );
        assert!(text.contains(r#""user_agent":"ua \"x\"""#));
    }

    /// The definition of v1: the JCS serialization of the whole object.
    fn reference(chain_id: &str, seq: i64, e: &AuditEvent) -> Vec<u8> {
        let object = json!({
            "canonical_version": CANONICAL_VERSION,
            "chain_id": chain_id,
            "seq": seq,
            "event_id": e.event_id.hyphenated().to_string(),
            "event_time": format_event_time(e.event_time),
            "method": e.method,
            "read_only": e.read_only,
            "principal": e.principal,
            "source_ip": e.source_ip,
            "user_agent": e.user_agent,
            "request_id": e.request_id,
            "account_id": e.account_id,
            "request_parameters": e.request_parameters,
            "response_elements": e.response_elements,
            "grpc_code": e.grpc_code,
            "error_reason": e.error_reason,
            "error_message": e.error_message,
            "upstream_request_id": e.upstream_request_id,
            "upstream_attempts": e.upstream_attempts,
            "idempotency_outcome": e.idempotency_outcome.as_str(),
            "client_token_sha256": e.client_token_sha256,
            "duration_us": e.duration_us,
        });
        serde_json_canonicalizer::to_vec(&object).unwrap()
    }

    #[test]
    fn the_split_encoding_is_the_jcs_of_the_whole_object() {
        let mut tricky = event();
        tricky.request_parameters =
            json!({"seq": 1, "\u{1F600}": "\u{7f}\n\"", "b": [1.5, null, -0.0]});
        tricky.response_elements = Some(json!({"account_link": {"seq": "x"}}));
        tricky.error_message = Some("a \"quoted\" \u{0} \u{2028}".into());
        tricky.source_ip = Some("::1".into());
        for e in [event(), tricky] {
            for seq in [1, 9, 10, 4_294_967_296, i64::MAX] {
                assert_eq!(
                    String::from_utf8_lossy(&canonical("default", seq, &e)),
                    String::from_utf8_lossy(&reference("default", seq, &e)),
                );
                let text = String::from_utf8(canonical("default", seq, &e)).unwrap();
                assert!(serde_json::from_str::<Value>(&text).is_ok(), "{text}");
            }
        }
    }

    #[test]
    fn the_hash_covers_every_field_the_seq_and_the_previous_hash() {
        let base = row_hash(&GENESIS_HASH, "default", 1, &event());
        assert_eq!(base, row_hash(&GENESIS_HASH, "default", 1, &event()));
        assert_ne!(base, row_hash(&[1; 32], "default", 1, &event()));
        assert_ne!(base, row_hash(&GENESIS_HASH, "default", 2, &event()));
        let mut changed = event();
        changed.principal = "mallory".into();
        assert_ne!(base, row_hash(&GENESIS_HASH, "default", 1, &changed));
        let mut changed = event();
        changed.request_parameters = json!({"z": 2, "a": "é"});
        assert_ne!(base, row_hash(&GENESIS_HASH, "default", 1, &changed));
    }
}
