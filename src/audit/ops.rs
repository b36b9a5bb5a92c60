//! Database operations on the audit trail: signed checkpoints, retention,
//! and the CloudTrail-shaped export.

use std::io::Write;

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio_stream::StreamExt;

use super::checkpoint::{CHECKPOINT_VERSION, Checkpoint, CheckpointError};
use super::{Break, VerifyReport, format_event_time, verify};
use crate::store::{
    AuditEvent, IdempotencyOutcome, Store, StoreError, StoredAuditEvent, StoredCheckpoint,
};

/// An audit operation failure (not a broken chain: that is a [`Break`]).
#[derive(Debug, thiserror::Error)]
pub enum AuditOpError {
    /// The store failed.
    #[error("database error")]
    Store(#[from] StoreError),
    /// A checkpoint or key problem.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Writing the output failed.
    #[error("cannot write the output")]
    Io(#[from] std::io::Error),
    /// The request cannot be carried out.
    #[error("{0}")]
    Refused(String),
}

/// Verifies the chain from its start to its head, then signs a checkpoint
/// of the events since `previous` (or since the start) and stores it in
/// `audit_checkpoint` (retention needs it there).
///
/// # Errors
/// [`AuditOpError`]; a broken chain is `Ok(Err(..))` and nothing is signed.
pub async fn create_checkpoint(
    store: &impl Store,
    chain_id: &str,
    key: &SigningKey,
    previous: Option<&Checkpoint>,
) -> Result<Result<Checkpoint, Break>, AuditOpError> {
    let whole = match verify(store, chain_id, None, None).await? {
        Ok(report) => report,
        Err(broken) => return Ok(Err(broken)),
    };
    if let Some(prev) = previous {
        if prev.chain_id != chain_id {
            return Err(AuditOpError::Refused(
                "the previous checkpoint is of another chain".into(),
            ));
        }
        prev.verify_signature(&key.verifying_key())?;
        if prev.to_seq >= whole.last_seq {
            return Err(AuditOpError::Refused(format!(
                "no events after the previous checkpoint (seq {})",
                prev.to_seq
            )));
        }
    }
    if whole.count == 0 {
        return Err(AuditOpError::Refused("the chain holds no events".into()));
    }
    let checkpoint = Checkpoint {
        version: CHECKPOINT_VERSION,
        chain_id: chain_id.to_owned(),
        from_seq: previous.map_or(whole.first_seq, |p| p.to_seq + 1),
        to_seq: whole.last_seq,
        head_hash: hex::encode(whole.head),
        previous_signature: previous.map(|p| p.signature.clone()),
        created_at: format_event_time(OffsetDateTime::now_utc()),
        public_key: String::new(),
        signature: String::new(),
    }
    .sign(key);
    store
        .insert_checkpoint(&StoredCheckpoint {
            chain_id: chain_id.to_owned(),
            to_seq: checkpoint.to_seq,
            head_hash: whole.head.to_vec(),
            signature: checkpoint.signature.clone(),
            body: serde_json::to_value(&checkpoint).unwrap_or(Value::Null),
        })
        .await?;
    Ok(Ok(checkpoint))
}

/// Proves the database still holds exactly the prefix `checkpoint` vouches
/// for: its signature verifies with `key`, the chain verifies from its start
/// through `to_seq`, and the row at `to_seq` has the checkpoint's hash.
///
/// # Errors
/// [`AuditOpError`] for a bad signature or a database failure; a broken
/// chain is `Ok(Err(..))`.
pub async fn verify_checkpoint(
    store: &impl Store,
    checkpoint: &Checkpoint,
    key: &VerifyingKey,
) -> Result<Result<VerifyReport, Break>, AuditOpError> {
    checkpoint.verify_signature(key)?;
    let report = match verify(store, &checkpoint.chain_id, None, Some(checkpoint.to_seq)).await? {
        Ok(report) => report,
        Err(Break::Gap {
            expected,
            found: None,
        }) => {
            return Ok(Err(Break::MissingNewest {
                from: expected,
                head: checkpoint.to_seq,
            }));
        }
        Err(broken) => return Ok(Err(broken)),
    };
    if report.last_seq == checkpoint.to_seq && report.head != checkpoint.head()? {
        return Ok(Err(Break::HeadMismatch {
            seq: checkpoint.to_seq,
        }));
    }
    Ok(Ok(report))
}

/// What a retention run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// The checkpoint the deleted prefix ended at.
    pub to_seq: i64,
    /// How many events were deleted.
    pub deleted: i64,
}

/// Deletes the oldest whole prefix of `chain_id` that ends at a stored
/// checkpoint whose signature verifies with `key` and whose events are all
/// older than `older_than`, after verifying the chain through it; records
/// the new anchor, and appends an audit event recording the deletion (as
/// principal `system:retention`). `None` when no checkpoint qualifies.
///
/// # Errors
/// [`AuditOpError`]; a broken chain is `Ok(Err(..))` and nothing is deleted.
pub async fn retain(
    store: &impl Store,
    chain_id: &str,
    key: &VerifyingKey,
    older_than: OffsetDateTime,
) -> Result<Result<Option<RetentionOutcome>, Break>, AuditOpError> {
    // The newest checkpoint whose last event is older than the cut-off.
    let candidate = store.newest_checkpoint_before(chain_id, older_than).await?;
    let Some(body) = candidate else {
        return Ok(Ok(None));
    };
    let checkpoint: Checkpoint = serde_json::from_value(body)
        .map_err(|e| AuditOpError::Refused(format!("stored checkpoint unreadable: {e}")))?;
    if let Err(broken) = verify_checkpoint(store, &checkpoint, key).await? {
        return Ok(Err(broken));
    }
    let started = std::time::Instant::now();
    let deleted = store
        .retain_through(chain_id, checkpoint.to_seq, |deleted| AuditEvent {
            event_id: AuditEvent::new_event_id(),
            event_time: super::now_micros(),
            method: "AuditRetention".into(),
            read_only: false,
            principal: "system:retention".into(),
            source_ip: None,
            user_agent: None,
            request_id: uuid::Uuid::new_v4().to_string(),
            account_id: None,
            request_parameters: json!({
                "chain_id": chain_id,
                "older_than": format_event_time(older_than),
            }),
            response_elements: Some(json!({
                "deleted_events": deleted,
                "through_seq": checkpoint.to_seq,
                "checkpoint_signature": checkpoint.signature,
            })),
            grpc_code: "OK".into(),
            error_reason: None,
            error_message: None,
            upstream_request_id: None,
            upstream_attempts: 0,
            idempotency_outcome: IdempotencyOutcome::None,
            client_token_sha256: None,
            duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        })
        .await?;
    tracing::info!(
        deleted,
        through_seq = checkpoint.to_seq,
        "audit retention deleted a verified prefix"
    );
    Ok(Ok(Some(RetentionOutcome {
        to_seq: checkpoint.to_seq,
        deleted,
    })))
}

/// The CloudTrail-shaped record of an event (CloudTrail record contents,
/// <https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html>),
/// plus this trail's chain fields.
pub fn cloudtrail_record(row: &StoredAuditEvent) -> Value {
    let e = &row.event;
    json!({
        "eventVersion": "1.09",
        "eventTime": format_event_time(e.event_time),
        "eventSource": "accountlink.v1",
        "eventName": e.method,
        "eventType": "GrpcCall",
        "userIdentity": { "type": "Principal", "principalId": e.principal },
        "sourceIPAddress": e.source_ip,
        "userAgent": e.user_agent,
        "requestParameters": e.request_parameters,
        "responseElements": e.response_elements,
        "errorCode": (e.grpc_code != "OK").then_some(&e.grpc_code),
        "errorMessage": e.error_message,
        "requestID": e.request_id,
        "eventID": e.event_id,
        "readOnly": e.read_only,
        "recipientAccountId": e.account_id,
        "additionalEventData": {
            "grpcCode": e.grpc_code,
            "errorReason": e.error_reason,
            "upstreamRequestId": e.upstream_request_id,
            "upstreamAttempts": e.upstream_attempts,
            "idempotencyOutcome": e.idempotency_outcome.as_str(),
            "clientTokenSha256": e.client_token_sha256,
            "durationUs": e.duration_us,
        },
        "chainId": row.chain_id,
        "seq": row.seq,
        "prevHash": hex::encode(&row.prev_hash),
        "rowHash": hex::encode(&row.row_hash),
    })
}

/// Streams the events with `since <= event_time < until`, in `seq` order,
/// as CloudTrail-shaped JSON lines to `out`, holding one row at a time.
/// Returns how many were written.
///
/// # Errors
/// [`AuditOpError`] when reading or writing fails.
pub async fn export_jsonl(
    store: &impl Store,
    chain_id: &str,
    since: OffsetDateTime,
    until: OffsetDateTime,
    out: &mut impl Write,
) -> Result<u64, AuditOpError> {
    let mut rows = store.audit_rows_in_time_range(chain_id, since, until);
    let mut written = 0;
    while let Some(row) = rows.next().await {
        serde_json::to_writer(&mut *out, &cloudtrail_record(&row?))
            .map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        written += 1;
    }
    out.flush()?;
    Ok(written)
}
