//! The Huawei RAM v1 wire shapes of the three invitation operations, shared by the client
//! adapter and the emulator so both read and write the same JSON.
//!
//! Source: the Go SDK's generated models, `services/ram/v1/model/`
//! (`model_search_resource_share_invitation_req_body.go`,
//! `model_search_resource_share_invitation_response.go`, `model_page_info.go`,
//! `model_resource_share_invitation.go`, `model_accept_resource_share_invitation_response.go`)
//! and `services/ram/v1/ram_meta.go` for the paths; the API reference's pages of the three
//! operations (e.g. <https://support.huaweicloud.com/api-ram/RejectResourceShareInvitation.html>).
//! Every member is optional on the wire, as in the SDK models (`omitempty`).

use serde::{Deserialize, Serialize};

/// `POST /v1/resource-share-invitations/search` (SDK operation
/// `SearchResourceShareInvitation`).
pub const SEARCH_PATH: &str = "/v1/resource-share-invitations/search";
/// Page size bounds of `limit` (API reference: 1..=2000, default 2000).
pub const LIMIT_RANGE: std::ops::RangeInclusive<u32> = 1..=2000;
/// The SDK's operation names, which the emulator's call log uses.
pub const SEARCH_OPERATION: &str = "SearchResourceShareInvitation";
/// `POST /v1/resource-share-invitations/{id}/accept`.
pub const ACCEPT_OPERATION: &str = "AcceptResourceShareInvitation";
/// `POST /v1/resource-share-invitations/{id}/reject`.
pub const REJECT_OPERATION: &str = "RejectResourceShareInvitation";

/// `/v1/resource-share-invitations/{id}/accept` (`accept`) or `/reject`.
pub fn respond_path(invitation_id: &str, accept: bool) -> String {
    let verb = if accept { "accept" } else { "reject" };
    format!("/v1/resource-share-invitations/{invitation_id}/{verb}")
}

/// `SearchResourceShareInvitationReqBody`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// Only invitations of these shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_share_ids: Option<Vec<String>>,
    /// Only these invitations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_share_invitation_ids: Option<Vec<String>>,
    /// Only invitations in this status: `pending`, `accepted` or `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Page size, 1..=2000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The previous page's `page_info.next_marker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
}

/// `SearchResourceShareInvitationResponse`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The page's invitations.
    #[serde(default)]
    pub resource_share_invitations: Vec<Invitation>,
    /// Paging details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_info: Option<PageInfo>,
}

/// `PageInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    /// The marker of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_marker: Option<String>,
    /// The marker of the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    /// Items on this page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_count: Option<u32>,
}

/// `AcceptResourceShareInvitationResponse` / `RejectResourceShareInvitationResponse`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RespondResponse {
    /// The invitation after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_share_invitation: Option<Invitation>,
}

/// `ResourceShareInvitation`. Times are strings as sent (`2022-08-22T12:28:26.631Z` in the
/// API reference's examples; the Go SDK's `SdkTime` also reads `…Z` without fraction and
/// `YYYY-MM-DD hh:mm:ss`, all UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// The invited account (domain id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_account_id: Option<String>,
    /// The share's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_share_id: Option<String>,
    /// The share's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_share_name: Option<String>,
    /// The invitation's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_share_invitation_id: Option<String>,
    /// The inviting account (domain id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_account_id: Option<String>,
    /// `pending`, `accepted` or `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Last update time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// The error body of Huawei Cloud services and of the API gateway in front of them:
/// `{"error_code": "RAM.1004", "error_msg": "...", "request_id": "..."}` (API reference,
/// "Error Codes"; API Request Signing Guide, "Common Errors Related to IAM Authentication
/// Information").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `RAM.xxxx`, `APIGW.xxxx`.
    #[serde(default)]
    pub error_code: Option<String>,
    /// The message.
    #[serde(default)]
    pub error_msg: Option<String>,
    /// The gateway's request id (also in the `X-Request-Id` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}
