//! What a ListAuditEvents page reads: the filters and the keyset cursor,
//! the same for both backends.

use time::OffsetDateTime;

use super::audit::IdempotencyOutcome;

/// What to read: every filter that is `Some` must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only events with `event_time >= start_time`.
    pub start_time: Option<OffsetDateTime>,
    /// Only events with `event_time < end_time`.
    pub end_time: Option<OffsetDateTime>,
    /// Only events of this RPC method.
    pub method: Option<String>,
    /// Only events of this principal.
    pub principal: Option<String>,
    /// Only events with this acting account.
    pub account_id: Option<String>,
    /// Only events whose request `link_id` or response
    /// `AccountLink.AccountLinkId` is this link id.
    pub link_id: Option<String>,
    /// Only events whose `request_parameters.provider` is this one
    /// (`AWS_RAM`, `HUAWEI_RAM`).
    pub provider: Option<String>,
    /// Only events whose `request_parameters.invitation_id` is this one.
    pub invitation_id: Option<String>,
    /// Only events answered with this `google.rpc.Code` name.
    pub grpc_code: Option<String>,
    /// Only events with this client-token outcome.
    pub idempotency_outcome: Option<IdempotencyOutcome>,
    /// The keyset cursor: only events with `seq < before_seq`.
    pub before_seq: Option<i64>,
    /// Maximum number of events returned.
    pub limit: i64,
}
