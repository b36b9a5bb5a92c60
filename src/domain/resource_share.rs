//! Resource-share invitations (issue 12): AWS RAM and Huawei Cloud RAM.
//!
//! The two providers share one lifecycle (PENDING -> ACCEPTED | REJECTED,
//! or EXPIRED after 7 days on AWS) and one model here, the union of theirs:
//! AWS RAM `ResourceShareInvitation`
//! (<https://docs.aws.amazon.com/ram/latest/APIReference/API_ResourceShareInvitation.html>)
//! and Huawei RAM `ResourceShareInvitation`
//! (<https://support.huaweicloud.com/intl/en-us/api-ram/ram_02_0020.html>).

use std::fmt;

use sha2::{Digest, Sha256};

use time::OffsetDateTime;

/// Which cloud's RAM an invitation lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// AWS Resource Access Manager, through `aws-sdk-ram`.
    AwsRam,
    /// Huawei Cloud Resource Access Manager, over HTTPS with AK/SK signing.
    HuaweiRam,
}

impl Provider {
    /// The proto enum value name without its prefix: `AWS_RAM`, `HUAWEI_RAM`
    /// (what the audit trail records in `request_parameters.provider`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwsRam => "AWS_RAM",
            Self::HuaweiRam => "HUAWEI_RAM",
        }
    }

    /// The inverse of [`Provider::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "AWS_RAM" => Some(Self::AwsRam),
            "HUAWEI_RAM" => Some(Self::HuaweiRam),
            _ => None,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An invitation's status. AWS: `PENDING | ACCEPTED | REJECTED | EXPIRED`;
/// Huawei: `pending | accepted | rejected` (lowercase on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvitationStatus {
    /// Sent, not yet answered.
    Pending,
    /// The receiver accepted it. Final.
    Accepted,
    /// The receiver rejected it. Final.
    Rejected,
    /// Not answered within 7 days (AWS). Final.
    Expired,
}

impl InvitationStatus {
    /// The AWS spelling: `PENDING`, `ACCEPTED`, `REJECTED`, `EXPIRED`.
    pub fn as_aws(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Accepted => "ACCEPTED",
            Self::Rejected => "REJECTED",
            Self::Expired => "EXPIRED",
        }
    }

    /// Parses either provider's spelling, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PENDING" => Some(Self::Pending),
            "ACCEPTED" => Some(Self::Accepted),
            "REJECTED" => Some(Self::Rejected),
            "EXPIRED" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// One invitation, as either provider returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceShareInvitation {
    /// Its provider.
    pub provider: Provider,
    /// The identifier requests name it by: on AWS the invitation ARN
    /// (`resourceShareInvitationArn`), on Huawei `resource_share_invitation_id`.
    pub invitation_id: String,
    /// AWS `resourceShareInvitationArn`; `None` on Huawei.
    pub invitation_arn: Option<String>,
    /// Huawei `resource_share_id`; on AWS the share ARN's last path segment.
    pub resource_share_id: Option<String>,
    /// AWS `resourceShareArn`; `None` on Huawei.
    pub resource_share_arn: Option<String>,
    /// AWS `resourceShareName`, Huawei `resource_share_name`.
    pub resource_share_name: Option<String>,
    /// The inviting account: AWS `senderAccountId`, Huawei `sender_account_id`.
    pub sender_account_id: Option<String>,
    /// The invited account: AWS `receiverAccountId`, Huawei `receiver_account_id`.
    pub receiver_account_id: Option<String>,
    /// Its status.
    pub status: InvitationStatus,
    /// AWS `invitationTimestamp`, Huawei `created_at`.
    pub create_time: Option<OffsetDateTime>,
    /// Huawei `updated_at`; `None` on AWS, whose model has no such member.
    pub update_time: Option<OffsetDateTime>,
}

/// A validated Accept or Reject, without its client token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvitationMutation {
    /// `AcceptResourceShareInvitation`.
    Accept {
        /// The invitation (see [`ResourceShareInvitation::invitation_id`]).
        invitation_id: String,
    },
    /// `RejectResourceShareInvitation`.
    Reject {
        /// The invitation.
        invitation_id: String,
    },
}

impl InvitationMutation {
    /// The invitation it answers.
    pub fn invitation_id(&self) -> &str {
        match self {
            Self::Accept { invitation_id } | Self::Reject { invitation_id } => invitation_id,
        }
    }

    /// The gRPC method name.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Accept { .. } => "AcceptResourceShareInvitation",
            Self::Reject { .. } => "RejectResourceShareInvitation",
        }
    }

    /// SHA-256 of the request's canonical form, the client-token record's
    /// request fingerprint (DESIGN §5): the same encoding as account links'
    /// (`accountlink.fingerprint.v1`, the method, `account_id=<acting>`, then
    /// `field=value` lines), with `provider` and `invitation_id`.
    pub fn fingerprint(&self, provider: Provider, acting: &super::AccountId) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for line in [
            "accountlink.fingerprint.v1",
            self.method(),
            &format!("account_id={acting}"),
            &format!("provider={provider}"),
            &format!("invitation_id={}", self.invitation_id()),
        ] {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
        }
        hasher.finalize().into()
    }
}

/// A validated `ListResourceShareInvitations` (AIP-158 paging mapped onto
/// AWS `maxResults`/`nextToken` and Huawei `limit`/`marker`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListInvitationsInput {
    /// Only these invitations (AWS ARNs / Huawei ids); empty: all.
    pub invitation_ids: Vec<String>,
    /// Only invitations of these shares (AWS share ARNs / Huawei share ids);
    /// empty: all.
    pub resource_share_ids: Vec<String>,
    /// Only invitations in this status.
    pub status: Option<InvitationStatus>,
    /// Page size, already clamped to the provider's range (AWS 1..=500,
    /// Huawei 1..=2000); `None`: the provider's default.
    pub page_size: Option<u32>,
    /// The provider's own paging token (AWS `nextToken`, Huawei `marker`).
    pub page_token: Option<String>,
}

/// One page of invitations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListInvitationsPage {
    /// The invitations.
    pub invitations: Vec<ResourceShareInvitation>,
    /// The provider's token of the next page; `None` on the last.
    pub next_page_token: Option<String>,
}
