//! The mutating operations of every provider, as the one pipeline of
//! DESIGN §2/§5 runs them (issue 12): claim, upstream, complete and audit
//! are written once, in `super::AccountLinkApi::mutation`; an operation
//! brings only its validation (`convert`, `resource_share`) and its
//! upstream adapter ([`Operation::drive`]).

use prost::Message;
use serde_json::{Value, json};

use super::Inner;
use super::convert::{audit_str, link_to_json, link_to_pb};
use super::resource_share::{invitation_to_json, invitation_to_pb};
use crate::domain::{AccountId, InvitationMutation, LinkId, Mutation, MutationKind, Provider};
use crate::error::{ApiError, UpstreamResource};
use crate::proto::pb;
use crate::upstream::{Upstream, UpstreamError, UpstreamOutput};

/// Version of the canonical request encoding ([`Operation::request_body`]).
const REQUEST_BODY_VERSION: u64 = 1;

/// A validated mutating request of any provider, without its client token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Operation {
    /// A WorkSpaces account-link mutation.
    Link(Mutation),
    /// An AWS RAM or Huawei RAM invitation answer.
    Invitation {
        /// The provider.
        provider: Provider,
        /// Accept or Reject.
        mutation: InvitationMutation,
    },
}

/// What a mutation returns: the resource as the provider answered it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Resource {
    /// An account link.
    Link(pb::AccountLink),
    /// A resource-share invitation.
    Invitation(pb::ResourceShareInvitation),
}

impl Resource {
    /// The protobuf encoding a completed record stores.
    pub(super) fn encode(&self) -> Vec<u8> {
        match self {
            Self::Link(l) => l.encode_to_vec(),
            Self::Invitation(i) => i.encode_to_vec(),
        }
    }

    /// The audit event's `response_elements`.
    pub(super) fn to_json(&self) -> Value {
        match self {
            Self::Link(l) => link_to_json(l),
            Self::Invitation(i) => invitation_to_json(i),
        }
    }
}

impl Operation {
    /// The gRPC method name (also the record key's `method`).
    pub(super) fn method(&self) -> &'static str {
        match self {
            Self::Link(m) => m.kind().method(),
            Self::Invitation { mutation, .. } => mutation.method(),
        }
    }

    /// The record's request fingerprint (lowercase hex SHA-256).
    pub(super) fn fingerprint(&self, acting: &AccountId) -> String {
        hex::encode(match self {
            Self::Link(m) => m.fingerprint(acting),
            Self::Invitation { provider, mutation } => mutation.fingerprint(*provider, acting),
        })
    }

    /// The provider an invitation answer goes to; `None` for account links.
    pub(super) fn provider(&self) -> Option<Provider> {
        match self {
            Self::Link(_) => None,
            Self::Invitation { provider, .. } => Some(*provider),
        }
    }

    /// The request field and value that error details name
    /// (`BadRequest`, `ResourceInfo`, `PreconditionFailure`).
    pub(super) fn subject(&self) -> (&'static str, &str) {
        match self {
            Self::Link(m) => m.parameters()[0],
            Self::Invitation { mutation, .. } => ("invitation_id", mutation.invitation_id()),
        }
    }

    /// What an upstream error of this operation is about.
    pub(super) fn upstream_resource(&self) -> UpstreamResource {
        match self {
            Self::Link(m) if m.kind() == MutationKind::Create => {
                UpstreamResource::ACCOUNT_LINK_CREATE
            }
            Self::Link(_) => UpstreamResource::ACCOUNT_LINK,
            Self::Invitation {
                provider: Provider::AwsRam,
                ..
            } => UpstreamResource::AWS_RAM_INVITATION,
            Self::Invitation {
                provider: Provider::HuaweiRam,
                ..
            } => UpstreamResource::HUAWEI_RAM_INVITATION,
        }
    }

    /// The canonical request as a record stores it (the `request_body`
    /// column), for the completer's re-drive: `{"v": 1, "<proto field>":
    /// "<value>", …}`, e.g. `{"v":1,"target_account_id":"222222222222"}` or
    /// `{"invitation_id":"…","provider":"AWS_RAM","v":1}`. The method and
    /// the acting account are columns of their own.
    pub(super) fn request_body(&self) -> String {
        let mut body = serde_json::Map::new();
        body.insert("v".into(), REQUEST_BODY_VERSION.into());
        match self {
            Self::Link(m) => {
                let [(field, value)] = m.parameters();
                body.insert(field.into(), value.into());
            }
            Self::Invitation { provider, mutation } => {
                body.insert("provider".into(), provider.as_str().into());
                body.insert("invitation_id".into(), mutation.invitation_id().into());
            }
        }
        Value::Object(body).to_string()
    }

    /// The operation of a stored `method` and [`Operation::request_body`];
    /// `None` when it does not parse (another version, or not a mutation).
    pub(super) fn from_stored(method: &str, body: &str) -> Option<Self> {
        let body: Value = serde_json::from_str(body).ok()?;
        if body.get("v")?.as_u64()? != REQUEST_BODY_VERSION {
            return None;
        }
        let field = |name: &str| body.get(name).and_then(Value::as_str);
        let link_id = || LinkId::parse(field("link_id")?).ok();
        let invitation = |accept: bool| {
            let provider = Provider::parse(field("provider")?)?;
            let invitation_id = field("invitation_id")?.to_owned();
            let mutation = if accept {
                InvitationMutation::Accept { invitation_id }
            } else {
                InvitationMutation::Reject { invitation_id }
            };
            Some(Self::Invitation { provider, mutation })
        };
        Some(match method {
            "CreateAccountLinkInvitation" => Self::Link(Mutation::Create {
                target_account_id: AccountId::parse(field("target_account_id")?).ok()?,
            }),
            "AcceptAccountLinkInvitation" => Self::Link(Mutation::Accept {
                link_id: link_id()?,
            }),
            "RejectAccountLinkInvitation" => Self::Link(Mutation::Reject {
                link_id: link_id()?,
            }),
            "DeleteAccountLinkInvitation" => Self::Link(Mutation::Delete {
                link_id: link_id()?,
            }),
            "AcceptResourceShareInvitation" => invitation(true)?,
            "RejectResourceShareInvitation" => invitation(false)?,
            _ => return None,
        })
    }

    /// The audit `request_parameters` of the operation as the completer
    /// re-drives it (the caller's own event records what the caller sent).
    pub(super) fn audit_parameters(&self, acting: &AccountId) -> Value {
        match self {
            Self::Link(m) => {
                let [(field, value)] = m.parameters();
                json!({ "account_id": acting.as_str(), field: audit_str(value) })
            }
            Self::Invitation { provider, mutation } => json!({
                "provider": provider.as_str(),
                "account_id": acting.as_str(),
                "invitation_id": audit_str(mutation.invitation_id()),
            }),
        }
    }

    /// Resolves the acting account of this operation's provider.
    ///
    /// # Errors
    /// [`crate::upstream::AccountError`] as the provider's resolution gives.
    pub(super) fn resolve_account<U: Upstream>(
        &self,
        inner: &Inner<U>,
        requested: Option<AccountId>,
    ) -> Result<AccountId, crate::upstream::AccountError> {
        match self.provider() {
            None => inner.upstream.resolve_account(requested),
            Some(p) => inner.invitations.resolve_account(p, requested),
        }
    }

    /// Phase 2: the upstream call, with the deterministic upstream token.
    pub(super) async fn drive<U: Upstream>(
        &self,
        inner: &Inner<U>,
        acting: &AccountId,
        upstream_token: &str,
    ) -> Result<UpstreamOutput<Resource>, UpstreamError> {
        match self {
            Self::Link(m) => {
                let out = inner.upstream.mutate(acting, m, upstream_token).await?;
                Ok(map_output(out, |l| Resource::Link(link_to_pb(&l))))
            }
            Self::Invitation { provider, mutation } => {
                let adapter = inner.invitations.adapter(*provider)?;
                let out = adapter
                    .respond(acting.as_str(), mutation, upstream_token)
                    .await?;
                Ok(map_output(out, |i| {
                    Resource::Invitation(invitation_to_pb(&i))
                }))
            }
        }
    }

    /// Decodes a completed record's stored body.
    ///
    /// # Errors
    /// INTERNAL when the body does not decode.
    pub(super) fn decode(&self, body: Option<&[u8]>) -> Result<Resource, ApiError> {
        let decoded = body.and_then(|body| match self {
            Self::Link(_) => pb::AccountLink::decode(body).ok().map(Resource::Link),
            Self::Invitation { .. } => pb::ResourceShareInvitation::decode(body)
                .ok()
                .map(Resource::Invitation),
        });
        decoded.ok_or_else(|| {
            ApiError::internal(&std::io::Error::other(
                "stored response body does not decode",
            ))
        })
    }
}

/// `out` with its value mapped.
pub(super) fn map_output<A, B>(
    out: UpstreamOutput<A>,
    f: impl FnOnce(A) -> B,
) -> UpstreamOutput<B> {
    UpstreamOutput {
        value: f(out.value),
        aws_request_id: out.aws_request_id,
        attempts: out.attempts,
    }
}
