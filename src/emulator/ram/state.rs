//! The AWS RAM emulator's shares, invitations and clock, and the rules of the six operations
//! over them: input checks, who may call what in which state, clientToken idempotency and
//! pagination. Nothing here knows about HTTP; `super` (ram.rs) reads requests and writes
//! responses.
//!
//! Sources: the AWS RAM API reference pages of the six operations
//! (<https://docs.aws.amazon.com/ram/latest/APIReference/API_Operations.html>) and its service
//! model as botocore ships it (`botocore/data/ram/2018-01-04/service-2.json`: shapes, the
//! errors each operation declares and their HTTP status codes), and the RAM User Guide's
//! "Accepting and rejecting invitations" (an invitation not answered within 7 days expires).
//! Where those are silent the rule chosen is stated on the function that applies it.
//!
//! The emulator has no AWS Organizations: every account is on its own, so every account
//! principal other than the owner is *external* and receives an invitation.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::emulator::protocol::is_account_id;

/// How long an invitation stays `PENDING` before it is `EXPIRED` (RAM User Guide: "If you
/// don't accept the invitation within 7 days, it expires").
pub(in crate::emulator) const INVITATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Largest `maxResults` (model: `MaxResults`, range 1..500).
const MAX_RESULTS: i64 = 500;

/// `maxResults` when the request has none. The reference only says "a value that is specific
/// to the operation"; the emulator uses 100.
const DEFAULT_MAX_RESULTS: usize = 100;

/// The six RAM operations the emulator serves, each a `POST` to its own path (restJson1,
/// `requestUri` in the model).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(in crate::emulator) enum RamOperation {
    /// `POST /createresourceshare`.
    CreateResourceShare,
    /// `POST /associateresourceshare`.
    AssociateResourceShare,
    /// `POST /getresourceshareinvitations`.
    GetResourceShareInvitations,
    /// `POST /acceptresourceshareinvitation`.
    AcceptResourceShareInvitation,
    /// `POST /rejectresourceshareinvitation`.
    RejectResourceShareInvitation,
    /// `POST /listpendinginvitationresources`.
    ListPendingInvitationResources,
}

impl RamOperation {
    /// Every operation.
    pub(in crate::emulator) const ALL: [RamOperation; 6] = [
        RamOperation::CreateResourceShare,
        RamOperation::AssociateResourceShare,
        RamOperation::GetResourceShareInvitations,
        RamOperation::AcceptResourceShareInvitation,
        RamOperation::RejectResourceShareInvitation,
        RamOperation::ListPendingInvitationResources,
    ];

    /// The AWS operation name, e.g. `AcceptResourceShareInvitation`.
    pub(in crate::emulator) fn name(self) -> &'static str {
        match self {
            RamOperation::CreateResourceShare => "CreateResourceShare",
            RamOperation::AssociateResourceShare => "AssociateResourceShare",
            RamOperation::GetResourceShareInvitations => "GetResourceShareInvitations",
            RamOperation::AcceptResourceShareInvitation => "AcceptResourceShareInvitation",
            RamOperation::RejectResourceShareInvitation => "RejectResourceShareInvitation",
            RamOperation::ListPendingInvitationResources => "ListPendingInvitationResources",
        }
    }

    /// The request path: `/` and the lowercased operation name.
    pub(in crate::emulator) fn path(self) -> &'static str {
        match self {
            RamOperation::CreateResourceShare => "/createresourceshare",
            RamOperation::AssociateResourceShare => "/associateresourceshare",
            RamOperation::GetResourceShareInvitations => "/getresourceshareinvitations",
            RamOperation::AcceptResourceShareInvitation => "/acceptresourceshareinvitation",
            RamOperation::RejectResourceShareInvitation => "/rejectresourceshareinvitation",
            RamOperation::ListPendingInvitationResources => "/listpendinginvitationresources",
        }
    }

    /// Looks an operation up by its AWS name (case-sensitive).
    pub(in crate::emulator) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// A RAM exception: its code (the model's shape name, sent as `x-amzn-ErrorType`) and message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub(in crate::emulator) struct RamError {
    /// e.g. `ResourceShareInvitationAlreadyAcceptedException`.
    pub(in crate::emulator) code: String,
    /// Human-readable text, sent as `{"message": ...}`.
    pub(in crate::emulator) message: String,
}

impl RamError {
    /// An exception named `code`.
    pub(in crate::emulator) fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// The HTTP status the model gives the code: 429 `ThrottlingException`, 500
    /// `ServerInternalException`, 503 `ServiceUnavailableException`, 403 for the
    /// authentication failures (AWS "Common Errors"), 400 for every other RAM exception.
    pub(in crate::emulator) fn status(&self) -> u16 {
        status_of(&self.code)
    }
}

/// See [`RamError::status`].
pub(in crate::emulator) fn status_of(code: &str) -> u16 {
    match code {
        "ThrottlingException" => 429,
        "ServerInternalException" => 500,
        "ServiceUnavailableException" => 503,
        "MissingAuthenticationTokenException" | "UnrecognizedClientException" => 403,
        _ => 400,
    }
}

fn malformed_arn(arn: &str) -> RamError {
    RamError::new(
        "MalformedArnException",
        format!("The format of ARN {arn} is not valid."),
    )
}

fn invalid_parameter(message: impl Into<String>) -> RamError {
    RamError::new("InvalidParameterException", message)
}

fn missing_parameter(member: &str) -> RamError {
    RamError::new(
        "MissingRequiredParameterException",
        format!("The request is missing the required parameter {member}."),
    )
}

fn invitation_not_found(arn: &str) -> RamError {
    RamError::new(
        "ResourceShareInvitationArnNotFoundException",
        format!("ResourceShareInvitation {arn} could not be found."),
    )
}

/// An invitation's status (`ResourceShareInvitationStatus`: `PENDING | ACCEPTED | REJECTED |
/// EXPIRED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RamInvitationStatus {
    /// Sent, not answered, not yet 7 days old.
    Pending,
    /// The receiver accepted it. Final.
    Accepted,
    /// The receiver rejected it. Final; re-associating the principal sends a new invitation.
    Rejected,
    /// Not answered within 7 days of being sent. Final.
    Expired,
}

impl RamInvitationStatus {
    /// The wire spelling, e.g. `PENDING`.
    pub fn as_str(self) -> &'static str {
        match self {
            RamInvitationStatus::Pending => "PENDING",
            RamInvitationStatus::Accepted => "ACCEPTED",
            RamInvitationStatus::Rejected => "REJECTED",
            RamInvitationStatus::Expired => "EXPIRED",
        }
    }
}

/// One resource-share invitation, as [`crate::emulator::Emulator::ram_invitations`] and
/// `GET /_emulator/ram/invitations` report it (the `ResourceShareInvitation` shape's members,
/// camelCase in JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RamInvitation {
    /// `arn:aws:ram:<region>:<sender>:resource-share-invitation/<uuid>`.
    pub resource_share_invitation_arn: String,
    /// `arn:aws:ram:<region>:<owner>:resource-share/<uuid>`.
    pub resource_share_arn: String,
    /// The share's name.
    pub resource_share_name: String,
    /// The share's owner, 12 digits.
    pub sender_account_id: String,
    /// The invited account, 12 digits.
    pub receiver_account_id: String,
    /// Status at the emulator clock's current time (a `PENDING` invitation older than
    /// [`INVITATION_LIFETIME`] reads `EXPIRED`).
    pub status: RamInvitationStatus,
    /// When it was sent, on the emulator clock; JSON: epoch seconds (a number).
    #[serde(serialize_with = "epoch_seconds_serde")]
    pub invitation_timestamp: OffsetDateTime,
}

fn epoch_seconds_serde<S: Serializer>(time: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(epoch_seconds(*time))
}

/// `time` as restJson1 sends a timestamp by default: epoch seconds, with milliseconds.
pub(in crate::emulator) fn epoch_seconds(time: OffsetDateTime) -> f64 {
    let millis = time.unix_timestamp_nanos() / 1_000_000;
    // Exact for any date of this millennium (well below 2^53 ms).
    #[allow(clippy::cast_precision_loss)]
    let millis = millis as f64;
    millis / 1000.0
}

impl RamInvitation {
    /// The invitation as it reads at `now`: a pending one past its lifetime is expired.
    fn at(&self, now: OffsetDateTime) -> RamInvitation {
        let mut view = self.clone();
        if view.status == RamInvitationStatus::Pending
            && now >= self.invitation_timestamp + INVITATION_LIFETIME
        {
            view.status = RamInvitationStatus::Expired;
        }
        view
    }

    /// The `ResourceShareInvitation` JSON object.
    fn to_json(&self) -> Value {
        json!({
            "resourceShareInvitationArn": self.resource_share_invitation_arn,
            "resourceShareName": self.resource_share_name,
            "resourceShareArn": self.resource_share_arn,
            "senderAccountId": self.sender_account_id,
            "receiverAccountId": self.receiver_account_id,
            "invitationTimestamp": epoch_seconds(self.invitation_timestamp),
            "status": self.status.as_str(),
        })
    }
}

/// A resource share.
#[derive(Clone, Debug)]
struct Share {
    arn: String,
    name: String,
    owner: String,
    allow_external_principals: bool,
    creation_time: OffsetDateTime,
    last_updated_time: OffsetDateTime,
    /// Resource ARNs, in association order, with when each was associated.
    resources: Vec<(String, OffsetDateTime)>,
    /// Account principals, in association order.
    principals: Vec<String>,
}

impl Share {
    /// The `ResourceShare` JSON object (`status` is always `ACTIVE`, `featureSet` `STANDARD`).
    fn to_json(&self) -> Value {
        json!({
            "resourceShareArn": self.arn,
            "name": self.name,
            "owningAccountId": self.owner,
            "allowExternalPrincipals": self.allow_external_principals,
            "status": "ACTIVE",
            "creationTime": epoch_seconds(self.creation_time),
            "lastUpdatedTime": epoch_seconds(self.last_updated_time),
            "featureSet": "STANDARD",
        })
    }
}

/// The parts of an ARN (`arn:<partition>:<service>:<region>:<account>:<resource>`).
#[derive(Debug, PartialEq, Eq)]
struct Arn<'a> {
    service: &'a str,
    account: &'a str,
    resource: &'a str,
}

/// Splits an ARN; `None` when it has not six `:`-separated parts, does not start with `arn:`,
/// or has an empty partition, service or resource.
fn parse_arn(arn: &str) -> Option<Arn<'_>> {
    let mut parts = arn.splitn(6, ':');
    let (prefix, partition, service, _region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (prefix == "arn" && !partition.is_empty() && !service.is_empty() && !resource.is_empty())
        .then_some(Arn {
            service,
            account,
            resource,
        })
}

/// Checks `arn` is a RAM ARN of `kind` (`resource-share` or `resource-share-invitation`)
/// owned by a 12-digit account.
///
/// # Errors
/// `MalformedArnException` otherwise.
fn check_ram_arn(arn: &str, kind: &str) -> Result<(), RamError> {
    let ok = parse_arn(arn).is_some_and(|parts| {
        parts.service == "ram"
            && is_account_id(parts.account)
            && parts
                .resource
                .strip_prefix(kind)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|id| !id.is_empty())
    });
    if ok { Ok(()) } else { Err(malformed_arn(arn)) }
}

/// The `type` of a resource in `ListPendingInvitationResources`: `<service>:<ResourceType>`,
/// e.g. `ec2:Subnet` for `arn:aws:ec2:…:subnet/subnet-1` (the resource type capitalised, as
/// RAM spells the common ones).
fn resource_type(arn: &str) -> String {
    let Some(parts) = parse_arn(arn) else {
        return String::new();
    };
    let kind = parts.resource.split(['/', ':']).next().unwrap_or_default();
    let mut chars = kind.chars();
    let capitalised: String = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .into_iter()
        .chain(chars)
        .collect();
    format!("{}:{capitalised}", parts.service)
}

/// Who is calling and where: the SigV4 access key id (12 digits) and credential-scope region.
#[derive(Clone, Debug)]
pub(in crate::emulator) struct Caller<'a> {
    /// The calling account.
    pub(in crate::emulator) account: &'a str,
    /// The region of the call (`us-east-1` when the credential scope names none).
    pub(in crate::emulator) region: &'a str,
}

/// The stored result of a mutating call, by (caller, operation, clientToken).
#[derive(Debug)]
struct TokenRecord {
    /// The request without its `clientToken`.
    parameters: Map<String, Value>,
    /// The response body, `clientToken` included.
    response: Value,
}

/// Everything the RAM emulator holds.
#[derive(Debug, Default)]
pub(in crate::emulator) struct RamState {
    /// How far the emulator clock runs ahead of the system clock.
    clock_offset: Duration,
    shares: Vec<Share>,
    share_index: HashMap<String, usize>,
    /// Every invitation ever sent, in sending order (the order of `GetResourceShareInvitations`).
    invitations: Vec<RamInvitation>,
    invitation_index: HashMap<String, usize>,
    tokens: HashMap<(String, RamOperation, String), TokenRecord>,
}

impl RamState {
    /// The emulator clock: the system clock plus every [`RamState::advance_clock`].
    pub(in crate::emulator) fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.clock_offset
    }

    /// Moves the emulator clock forward by `by`.
    pub(in crate::emulator) fn advance_clock(&mut self, by: Duration) {
        self.clock_offset = self.clock_offset.saturating_add(by);
    }

    /// Every invitation as it reads at `now`, in sending order.
    pub(in crate::emulator) fn invitations(&self, now: OffsetDateTime) -> Vec<RamInvitation> {
        self.invitations.iter().map(|i| i.at(now)).collect()
    }

    /// Runs `operation` for `caller` with the JSON request body `input` at time `now`;
    /// returns the response body.
    ///
    /// # Errors
    /// The RAM exception the call ends with (see each operation).
    pub(in crate::emulator) fn execute(
        &mut self,
        operation: RamOperation,
        caller: &Caller<'_>,
        input: &Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<Value, RamError> {
        match operation {
            RamOperation::GetResourceShareInvitations => self.get_invitations(caller, input, now),
            RamOperation::ListPendingInvitationResources => {
                self.list_pending_resources(caller, input, now)
            }
            _ => self.idempotent(operation, caller, input, now),
        }
    }

    /// A mutating operation under AWS's clientToken rule (API reference, `clientToken` of
    /// every mutating operation): a token replayed with the same parameters returns the first
    /// call's response without acting again; with other parameters it is
    /// `IdempotentParameterMismatchException`; without a token one is generated and echoed.
    ///
    /// Not documented, chosen here: tokens are scoped to (calling account, operation); only
    /// successes are remembered (a call that failed changed nothing, so replaying it runs it
    /// again); records never expire.
    fn idempotent(
        &mut self,
        operation: RamOperation,
        caller: &Caller<'_>,
        input: &Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<Value, RamError> {
        let token = optional_string(input, "clientToken")?.map(str::to_owned);
        let mut parameters = input.clone();
        parameters.remove("clientToken");
        if let Some(token) = &token {
            let key = (caller.account.to_owned(), operation, token.clone());
            if let Some(record) = self.tokens.get(&key) {
                if record.parameters == parameters {
                    return Ok(record.response.clone());
                }
                return Err(RamError::new(
                    "IdempotentParameterMismatchException",
                    format!("The client token {token} was already used with different parameters."),
                ));
            }
        }
        let mut response = match operation {
            RamOperation::CreateResourceShare => self.create_share(caller, input, now)?,
            RamOperation::AssociateResourceShare => self.associate(caller, input, now)?,
            RamOperation::AcceptResourceShareInvitation => {
                self.answer(caller, input, now, RamInvitationStatus::Accepted)?
            }
            RamOperation::RejectResourceShareInvitation => {
                self.answer(caller, input, now, RamInvitationStatus::Rejected)?
            }
            RamOperation::GetResourceShareInvitations
            | RamOperation::ListPendingInvitationResources => {
                return Err(RamError::new(
                    "ServerInternalException",
                    "read-only operation routed as a mutation",
                ));
            }
        };
        let token = token.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if let Value::Object(body) = &mut response {
            body.insert("clientToken".to_owned(), Value::from(token.clone()));
        }
        self.tokens.insert(
            (caller.account.to_owned(), operation, token),
            TokenRecord {
                parameters,
                response: response.clone(),
            },
        );
        Ok(response)
    }

    /// Reads and checks `principals` and `resourceArns` for a share owned by `caller`.
    ///
    /// Not documented, chosen here: only 12-digit account principals are supported (the
    /// emulator has no Organizations, IAM or service principals): anything else, and the
    /// owner itself, is `InvalidParameterException`. With `allowExternalPrincipals: false`
    /// every account principal is external (the sender is in no organization), so any is
    /// `OperationNotPermittedException`. Resource ARNs must be well-formed ARNs
    /// (`MalformedArnException`); they are not checked to exist.
    fn principals_and_resources(
        caller: &Caller<'_>,
        input: &Map<String, Value>,
        allow_external: bool,
    ) -> Result<(Vec<String>, Vec<String>), RamError> {
        let principals = dedup(string_list(input, "principals")?);
        for principal in &principals {
            if !is_account_id(principal) {
                return Err(invalid_parameter(format!(
                    "Principal {principal} is not supported: the emulator shares with 12-digit account ids only."
                )));
            }
            if principal == caller.account {
                return Err(invalid_parameter(format!(
                    "The resource share owner {principal} cannot be a principal of it."
                )));
            }
            if !allow_external {
                return Err(RamError::new(
                    "OperationNotPermittedException",
                    format!(
                        "Principal {principal} is outside your organization and the resource share does not allow external principals."
                    ),
                ));
            }
        }
        let resources = dedup(string_list(input, "resourceArns")?);
        if let Some(bad) = resources.iter().find(|arn| parse_arn(arn).is_none()) {
            return Err(malformed_arn(bad));
        }
        Ok((principals, resources))
    }

    /// `CreateResourceShare`: `name` (required), `principals`, `resourceArns`,
    /// `allowExternalPrincipals` (default true), `clientToken`. Output: `{"resourceShare":
    /// ResourceShare, "clientToken"}`. Each account principal gets a `PENDING` invitation.
    ///
    /// # Errors
    /// `MissingRequiredParameterException` without `name`; `InvalidParameterException` for an
    /// empty name, a member of the wrong JSON type, or a principal the emulator does not
    /// support; `OperationNotPermittedException` and `MalformedArnException` as in
    /// [`RamState::principals_and_resources`].
    fn create_share(
        &mut self,
        caller: &Caller<'_>,
        input: &Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<Value, RamError> {
        let name = optional_string(input, "name")?.ok_or_else(|| missing_parameter("name"))?;
        if name.is_empty() {
            return Err(invalid_parameter(
                "The resource share name must not be empty.",
            ));
        }
        let allow_external = match input.get("allowExternalPrincipals") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(value)) => *value,
            Some(_) => {
                return Err(invalid_parameter(
                    "allowExternalPrincipals must be a boolean.",
                ));
            }
        };
        let (principals, resources) =
            Self::principals_and_resources(caller, input, allow_external)?;
        let share = Share {
            arn: format!(
                "arn:aws:ram:{}:{}:resource-share/{}",
                caller.region,
                caller.account,
                uuid::Uuid::new_v4()
            ),
            name: name.to_owned(),
            owner: caller.account.to_owned(),
            allow_external_principals: allow_external,
            creation_time: now,
            last_updated_time: now,
            resources: resources.into_iter().map(|arn| (arn, now)).collect(),
            principals: Vec::new(),
        };
        let index = self.shares.len();
        self.share_index.insert(share.arn.clone(), index);
        self.shares.push(share);
        self.add_principals(index, caller.region, &principals, now);
        Ok(json!({ "resourceShare": self.shares[index].to_json() }))
    }

    /// Adds `principals` to share `index`, inviting each one that is new to the share, or
    /// whose latest invitation to it is `REJECTED` or `EXPIRED`.
    ///
    /// AWS documents the rejected case only by behaviour ("to share again, associate the
    /// principal again"); the emulator treats an expired invitation the same way. A principal
    /// whose latest invitation is `PENDING` or `ACCEPTED` gets no new one.
    fn add_principals(
        &mut self,
        index: usize,
        region: &str,
        principals: &[String],
        now: OffsetDateTime,
    ) {
        for principal in principals {
            let share = &self.shares[index];
            let latest = self
                .invitations
                .iter()
                .rev()
                .find(|i| i.resource_share_arn == share.arn && &i.receiver_account_id == principal)
                .map(|i| i.at(now).status);
            let invite = matches!(
                latest,
                None | Some(RamInvitationStatus::Rejected | RamInvitationStatus::Expired)
            );
            if !share.principals.contains(principal) {
                self.shares[index].principals.push(principal.clone());
            }
            if invite {
                let share = &self.shares[index];
                let invitation = RamInvitation {
                    resource_share_invitation_arn: format!(
                        "arn:aws:ram:{region}:{}:resource-share-invitation/{}",
                        share.owner,
                        uuid::Uuid::new_v4()
                    ),
                    resource_share_arn: share.arn.clone(),
                    resource_share_name: share.name.clone(),
                    sender_account_id: share.owner.clone(),
                    receiver_account_id: principal.clone(),
                    status: RamInvitationStatus::Pending,
                    invitation_timestamp: now,
                };
                self.invitation_index.insert(
                    invitation.resource_share_invitation_arn.clone(),
                    self.invitations.len(),
                );
                self.invitations.push(invitation);
            }
        }
    }

    /// `AssociateResourceShare`: `resourceShareArn` (required), `principals`, `resourceArns`,
    /// `clientToken`. Output: `{"resourceShareAssociations": [ResourceShareAssociation],
    /// "clientToken"}`, one association per requested principal (`PRINCIPAL`, `external`
    /// true) and resource (`RESOURCE`), each `ASSOCIATING`. Principals are invited as in
    /// [`RamState::add_principals`].
    ///
    /// # Errors
    /// `MissingRequiredParameterException` without `resourceShareArn`;
    /// `MalformedArnException` when it is not a resource-share ARN;
    /// `UnknownResourceException` when no share of the caller has it (another account's share
    /// reads as unknown: not documented, chosen here); then as in
    /// [`RamState::principals_and_resources`].
    fn associate(
        &mut self,
        caller: &Caller<'_>,
        input: &Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<Value, RamError> {
        let arn = optional_string(input, "resourceShareArn")?
            .ok_or_else(|| missing_parameter("resourceShareArn"))?;
        check_ram_arn(arn, "resource-share")?;
        let index = self
            .share_index
            .get(arn)
            .copied()
            .filter(|&i| self.shares[i].owner == caller.account)
            .ok_or_else(|| {
                RamError::new(
                    "UnknownResourceException",
                    format!("ResourceShare {arn} could not be found."),
                )
            })?;
        let allow_external = self.shares[index].allow_external_principals;
        let (principals, resources) =
            Self::principals_and_resources(caller, input, allow_external)?;
        self.add_principals(index, caller.region, &principals, now);
        let share = &mut self.shares[index];
        for resource in &resources {
            if !share.resources.iter().any(|(arn, _)| arn == resource) {
                share.resources.push((resource.clone(), now));
            }
        }
        share.last_updated_time = now;
        let association = |entity: &str, kind: &str, external: bool| {
            json!({
                "resourceShareArn": share.arn,
                "resourceShareName": share.name,
                "associatedEntity": entity,
                "associationType": kind,
                "status": "ASSOCIATING",
                "creationTime": epoch_seconds(now),
                "lastUpdatedTime": epoch_seconds(now),
                "external": external,
            })
        };
        let associations: Vec<Value> = principals
            .iter()
            .map(|p| association(p, "PRINCIPAL", true))
            .chain(resources.iter().map(|r| association(r, "RESOURCE", false)))
            .collect();
        Ok(json!({ "resourceShareAssociations": associations }))
    }

    /// The invitation `arn` names, for `caller` as its receiver.
    ///
    /// # Errors
    /// `MalformedArnException` when `arn` is not a resource-share-invitation ARN;
    /// `ResourceShareInvitationArnNotFoundException` when there is no such invitation or the
    /// caller is neither party; `OperationNotPermittedException` when the caller is its
    /// sender (only the receiver may answer or list it; the reference does not say which
    /// exception a sender gets, this is the emulator's choice).
    fn received(&self, caller: &Caller<'_>, arn: &str) -> Result<usize, RamError> {
        check_ram_arn(arn, "resource-share-invitation")?;
        let index = *self
            .invitation_index
            .get(arn)
            .ok_or_else(|| invitation_not_found(arn))?;
        let invitation = &self.invitations[index];
        if invitation.receiver_account_id == caller.account {
            Ok(index)
        } else if invitation.sender_account_id == caller.account {
            Err(RamError::new(
                "OperationNotPermittedException",
                format!(
                    "Only the receiver {} can act on resource share invitation {arn}.",
                    invitation.receiver_account_id
                ),
            ))
        } else {
            Err(invitation_not_found(arn))
        }
    }

    /// Fails unless the invitation at `index` is `PENDING` at `now`.
    ///
    /// # Errors
    /// `ResourceShareInvitationAlreadyAcceptedException`,
    /// `ResourceShareInvitationAlreadyRejectedException` or
    /// `ResourceShareInvitationExpiredException`.
    fn require_pending(&self, index: usize, now: OffsetDateTime) -> Result<(), RamError> {
        let invitation = self.invitations[index].at(now);
        let arn = &invitation.resource_share_invitation_arn;
        let (code, what) = match invitation.status {
            RamInvitationStatus::Pending => return Ok(()),
            RamInvitationStatus::Accepted => (
                "ResourceShareInvitationAlreadyAcceptedException",
                "has already been accepted",
            ),
            RamInvitationStatus::Rejected => (
                "ResourceShareInvitationAlreadyRejectedException",
                "has already been rejected",
            ),
            RamInvitationStatus::Expired => {
                ("ResourceShareInvitationExpiredException", "has expired")
            }
        };
        Err(RamError::new(
            code,
            format!("The resource share invitation {arn} {what}."),
        ))
    }

    /// `AcceptResourceShareInvitation` / `RejectResourceShareInvitation`:
    /// `resourceShareInvitationArn` (required), `clientToken`. Output:
    /// `{"resourceShareInvitation": ResourceShareInvitation, "clientToken"}` with the new
    /// status. Only the receiver may answer, only a `PENDING` invitation, and the answer is
    /// final.
    ///
    /// # Errors
    /// `MissingRequiredParameterException` without the ARN; then as in
    /// [`RamState::received`] and [`RamState::require_pending`].
    fn answer(
        &mut self,
        caller: &Caller<'_>,
        input: &Map<String, Value>,
        now: OffsetDateTime,
        to: RamInvitationStatus,
    ) -> Result<Value, RamError> {
        let arn = optional_string(input, "resourceShareInvitationArn")?
            .ok_or_else(|| missing_parameter("resourceShareInvitationArn"))?;
        let index = self.received(caller, arn)?;
        self.require_pending(index, now)?;
        self.invitations[index].status = to;
        Ok(json!({ "resourceShareInvitation": self.invitations[index].at(now).to_json() }))
    }

    /// `GetResourceShareInvitations`: the invitations the caller *received* ("Retrieves
    /// details about invitations that you have received"), in sending order, optionally only
    /// those in `resourceShareInvitationArns` and of `resourceShareArns`, paged by
    /// `maxResults` (1..500, default 100) and `nextToken`. Output:
    /// `{"resourceShareInvitations": [...], "nextToken"?}`.
    ///
    /// # Errors
    /// `MalformedArnException` for an ARN of either list that is not of its kind;
    /// `ResourceShareInvitationArnNotFoundException` for a listed invitation the caller did
    /// not receive (sent ones included: not documented, chosen here); `InvalidMaxResultsException`;
    /// `InvalidNextTokenException` for a token this emulator did not hand out. A share ARN
    /// that names no share matches nothing (not an error).
    fn get_invitations(
        &self,
        caller: &Caller<'_>,
        input: &Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<Value, RamError> {
        let arns = string_list(input, "resourceShareInvitationArns")?;
        for arn in &arns {
            check_ram_arn(arn, "resource-share-invitation")?;
        }
        for arn in &arns {
            let received = self
                .invitation_index
                .get(arn)
                .is_some_and(|&i| self.invitations[i].receiver_account_id == caller.account);
            if !received {
                return Err(invitation_not_found(arn));
            }
        }
        let share_arns = string_list(input, "resourceShareArns")?;
        for arn in &share_arns {
            check_ram_arn(arn, "resource-share")?;
        }
        let max = max_results(input)?;
        let start = next_token(input, "invitations")?;
        let mut matching = self
            .invitations
            .iter()
            .enumerate()
            .skip(start)
            .filter(|(_, i)| i.receiver_account_id == caller.account)
            .filter(|(_, i)| arns.is_empty() || arns.contains(&i.resource_share_invitation_arn))
            .filter(|(_, i)| share_arns.is_empty() || share_arns.contains(&i.resource_share_arn));
        let page: Vec<(usize, &RamInvitation)> = matching.by_ref().take(max).collect();
        let more = matching.next().is_some();
        let mut body = Map::new();
        body.insert(
            "resourceShareInvitations".to_owned(),
            Value::Array(page.iter().map(|(_, i)| i.at(now).to_json()).collect()),
        );
        if let (true, Some((last, _))) = (more, page.last()) {
            body.insert(
                "nextToken".to_owned(),
                Value::from(make_token("invitations", last + 1)),
            );
        }
        Ok(Value::Object(body))
    }

    /// `ListPendingInvitationResources`: `resourceShareInvitationArn` (required),
    /// `maxResults`, `nextToken`. The resources of the invitation's share, in association
    /// order, as `Resource` objects (`status` `AVAILABLE`, `resourceRegionScope` `REGIONAL`).
    /// Output: `{"resources": [...], "nextToken"?}`.
    ///
    /// Not documented, chosen here: an accepted invitation has no *pending* resources, so the
    /// list is empty.
    ///
    /// # Errors
    /// `MissingRequiredParameterException`; as in [`RamState::received`];
    /// `ResourceShareInvitationAlreadyRejectedException`,
    /// `ResourceShareInvitationExpiredException`; `InvalidMaxResultsException`,
    /// `InvalidNextTokenException`.
    fn list_pending_resources(
        &self,
        caller: &Caller<'_>,
        input: &Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<Value, RamError> {
        let arn = optional_string(input, "resourceShareInvitationArn")?
            .ok_or_else(|| missing_parameter("resourceShareInvitationArn"))?;
        let index = self.received(caller, arn)?;
        let invitation = self.invitations[index].at(now);
        let max = max_results(input)?;
        let start = next_token(input, "resources")?;
        let resources: &[(String, OffsetDateTime)] = match invitation.status {
            RamInvitationStatus::Accepted => &[],
            RamInvitationStatus::Pending => self
                .share_index
                .get(&invitation.resource_share_arn)
                .map_or(&[], |&i| &self.shares[i].resources),
            RamInvitationStatus::Rejected | RamInvitationStatus::Expired => {
                self.require_pending(index, now)?;
                &[]
            }
        };
        let page: Vec<Value> = resources
            .iter()
            .skip(start)
            .take(max)
            .map(|(arn, at)| {
                json!({
                    "arn": arn,
                    "type": resource_type(arn),
                    "resourceShareArn": invitation.resource_share_arn,
                    "status": "AVAILABLE",
                    "creationTime": epoch_seconds(*at),
                    "lastUpdatedTime": epoch_seconds(*at),
                    "resourceRegionScope": "REGIONAL",
                })
            })
            .collect();
        let mut body = Map::new();
        let end = start + page.len();
        body.insert("resources".to_owned(), Value::Array(page));
        if end < resources.len() {
            body.insert(
                "nextToken".to_owned(),
                Value::from(make_token("resources", end)),
            );
        }
        Ok(Value::Object(body))
    }
}

/// `values` without repeats, first occurrence kept.
fn dedup(values: Vec<String>) -> Vec<String> {
    let mut seen = Vec::with_capacity(values.len());
    for value in values {
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

/// String member `member`, `None` when absent or null.
///
/// # Errors
/// `InvalidParameterException` when it is another JSON type (RAM declares no
/// `SerializationException`; not documented, chosen here).
fn optional_string<'a>(
    input: &'a Map<String, Value>,
    member: &str,
) -> Result<Option<&'a str>, RamError> {
    match input.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(invalid_parameter(format!("{member} must be a string."))),
    }
}

/// List-of-strings member `member`, empty when absent or null.
///
/// # Errors
/// `InvalidParameterException` when it is not an array of strings.
fn string_list(input: &Map<String, Value>, member: &str) -> Result<Vec<String>, RamError> {
    match input.get(member) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    invalid_parameter(format!("{member} must be a list of strings."))
                })
            })
            .collect(),
        Some(_) => Err(invalid_parameter(format!(
            "{member} must be a list of strings."
        ))),
    }
}

/// `maxResults`, [`DEFAULT_MAX_RESULTS`] when absent.
///
/// # Errors
/// `InvalidMaxResultsException` when it is not an integer in 1..500 (model `MaxResults`).
fn max_results(input: &Map<String, Value>) -> Result<usize, RamError> {
    match input.get("maxResults") {
        None | Some(Value::Null) => Ok(DEFAULT_MAX_RESULTS),
        Some(value) => value
            .as_i64()
            .filter(|n| (1..=MAX_RESULTS).contains(n))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                RamError::new(
                    "InvalidMaxResultsException",
                    format!("The maxResults value {value} is not valid: it must be 1 to 500."),
                )
            }),
    }
}

/// A `nextToken`: the hex of `<kind>:<position>`, opaque to clients.
fn make_token(kind: &str, position: usize) -> String {
    hex::encode(format!("{kind}:{position}"))
}

/// The position `nextToken` resumes at, 0 without one.
///
/// # Errors
/// `InvalidNextTokenException` for a token [`make_token`] did not make for `kind`.
fn next_token(input: &Map<String, Value>, kind: &str) -> Result<usize, RamError> {
    let Some(token) = optional_string(input, "nextToken")? else {
        return Ok(0);
    };
    hex::decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            text.strip_prefix(kind)
                .and_then(|rest| rest.strip_prefix(':'))
                .and_then(|n| n.parse::<usize>().ok())
        })
        .ok_or_else(|| {
            RamError::new(
                "InvalidNextTokenException",
                "The specified value for NextToken is not valid.",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "111111111111";
    const RECEIVER: &str = "222222222222";
    const OTHER: &str = "333333333333";

    fn caller(account: &str) -> Caller<'_> {
        Caller {
            account,
            region: "eu-west-1",
        }
    }

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("valid")
    }

    /// Creates a share of OWNER with `principals`; returns its ARN.
    fn share(state: &mut RamState, principals: &[&str], now: OffsetDateTime) -> String {
        let out = state
            .execute(
                RamOperation::CreateResourceShare,
                &caller(OWNER),
                &body(json!({
                    "name": "subnets",
                    "principals": principals,
                    "resourceArns": ["arn:aws:ec2:eu-west-1:111111111111:subnet/subnet-1"],
                })),
                now,
            )
            .expect("create succeeds");
        out["resourceShare"]["resourceShareArn"]
            .as_str()
            .expect("arn")
            .to_owned()
    }

    fn answer(
        state: &mut RamState,
        op: RamOperation,
        who: &str,
        arn: &str,
        token: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Value, RamError> {
        let mut input = json!({ "resourceShareInvitationArn": arn });
        if let Some(token) = token {
            input["clientToken"] = Value::from(token);
        }
        state.execute(op, &caller(who), &body(input), now)
    }

    fn code(result: Result<Value, RamError>) -> String {
        result.expect_err("must fail").code
    }

    #[test]
    fn sharing_with_an_outside_account_sends_a_pending_invitation() {
        let mut state = RamState::default();
        let share_arn = share(&mut state, &[RECEIVER], t0());
        assert!(share_arn.starts_with("arn:aws:ram:eu-west-1:111111111111:resource-share/"));
        let invitations = state.invitations(t0());
        assert_eq!(invitations.len(), 1);
        let invitation = &invitations[0];
        assert!(
            invitation
                .resource_share_invitation_arn
                .starts_with("arn:aws:ram:eu-west-1:111111111111:resource-share-invitation/")
        );
        assert_eq!(invitation.receiver_account_id, RECEIVER);
        assert_eq!(invitation.sender_account_id, OWNER);
        assert_eq!(invitation.status, RamInvitationStatus::Pending);
        assert_eq!(invitation.invitation_timestamp, t0());
    }

    #[test]
    fn only_the_receiver_answers_and_answers_are_final() {
        let mut state = RamState::default();
        share(&mut state, &[RECEIVER, OTHER], t0());
        let arns: Vec<String> = state
            .invitations(t0())
            .into_iter()
            .map(|i| i.resource_share_invitation_arn)
            .collect();
        let (accept, reject) = (
            RamOperation::AcceptResourceShareInvitation,
            RamOperation::RejectResourceShareInvitation,
        );
        assert_eq!(
            code(answer(&mut state, accept, OWNER, &arns[0], None, t0())),
            "OperationNotPermittedException"
        );
        assert_eq!(
            code(answer(&mut state, accept, OTHER, &arns[0], None, t0())),
            "ResourceShareInvitationArnNotFoundException"
        );
        let out = answer(&mut state, accept, RECEIVER, &arns[0], None, t0()).expect("accepted");
        assert_eq!(out["resourceShareInvitation"]["status"], "ACCEPTED");
        assert!(out["clientToken"].as_str().is_some_and(|t| !t.is_empty()));
        for op in [accept, reject] {
            assert_eq!(
                code(answer(&mut state, op, RECEIVER, &arns[0], None, t0())),
                "ResourceShareInvitationAlreadyAcceptedException"
            );
        }
        answer(&mut state, reject, OTHER, &arns[1], None, t0()).expect("rejected");
        for op in [accept, reject] {
            assert_eq!(
                code(answer(&mut state, op, OTHER, &arns[1], None, t0())),
                "ResourceShareInvitationAlreadyRejectedException"
            );
        }
    }

    #[test]
    fn a_pending_invitation_expires_after_seven_days() {
        let mut state = RamState::default();
        share(&mut state, &[RECEIVER, OTHER], t0());
        let arns: Vec<String> = state
            .invitations(t0())
            .into_iter()
            .map(|i| i.resource_share_invitation_arn)
            .collect();
        let just_before = t0() + INVITATION_LIFETIME - Duration::from_secs(1);
        answer(
            &mut state,
            RamOperation::AcceptResourceShareInvitation,
            RECEIVER,
            &arns[0],
            None,
            just_before,
        )
        .expect("still pending one second before expiry");
        let expiry = t0() + INVITATION_LIFETIME;
        assert_eq!(
            code(answer(
                &mut state,
                RamOperation::RejectResourceShareInvitation,
                OTHER,
                &arns[1],
                None,
                expiry
            )),
            "ResourceShareInvitationExpiredException"
        );
        let statuses: Vec<_> = state
            .invitations(expiry)
            .into_iter()
            .map(|i| i.status)
            .collect();
        assert_eq!(
            statuses,
            [RamInvitationStatus::Accepted, RamInvitationStatus::Expired],
            "an answered invitation never expires"
        );
        let pending = state.execute(
            RamOperation::ListPendingInvitationResources,
            &caller(OTHER),
            &body(json!({ "resourceShareInvitationArn": arns[1] })),
            expiry,
        );
        assert_eq!(code(pending), "ResourceShareInvitationExpiredException");
    }

    #[test]
    fn re_associating_after_reject_or_expiry_sends_a_new_invitation() {
        let mut state = RamState::default();
        let share_arn = share(&mut state, &[RECEIVER], t0());
        let first = state.invitations(t0())[0]
            .resource_share_invitation_arn
            .clone();
        answer(
            &mut state,
            RamOperation::RejectResourceShareInvitation,
            RECEIVER,
            &first,
            None,
            t0(),
        )
        .expect("rejected");
        let associate = |state: &mut RamState, now| {
            state
                .execute(
                    RamOperation::AssociateResourceShare,
                    &caller(OWNER),
                    &body(json!({ "resourceShareArn": share_arn, "principals": [RECEIVER] })),
                    now,
                )
                .expect("associated")
        };
        let out = associate(&mut state, t0());
        assert_eq!(
            out["resourceShareAssociations"][0]["associatedEntity"],
            RECEIVER
        );
        assert_eq!(
            out["resourceShareAssociations"][0]["associationType"],
            "PRINCIPAL"
        );
        let invitations = state.invitations(t0());
        assert_eq!(invitations.len(), 2);
        assert_eq!(invitations[0].status, RamInvitationStatus::Rejected);
        assert_eq!(invitations[1].status, RamInvitationStatus::Pending);
        assert_ne!(invitations[1].resource_share_invitation_arn, first);
        // Pending: associating again sends nothing new.
        associate(&mut state, t0());
        assert_eq!(state.invitations(t0()).len(), 2);
        // Expired: a new one again.
        let later = t0() + INVITATION_LIFETIME;
        associate(&mut state, later);
        let statuses: Vec<_> = state
            .invitations(later)
            .into_iter()
            .map(|i| i.status)
            .collect();
        assert_eq!(
            statuses,
            [
                RamInvitationStatus::Rejected,
                RamInvitationStatus::Expired,
                RamInvitationStatus::Pending
            ]
        );
        assert_eq!(state.invitations(later)[2].invitation_timestamp, later);
    }

    #[test]
    fn client_tokens_replay_the_first_result_and_refuse_other_parameters() {
        let mut state = RamState::default();
        share(&mut state, &[RECEIVER], t0());
        share(&mut state, &[RECEIVER], t0());
        let arns: Vec<String> = state
            .invitations(t0())
            .into_iter()
            .map(|i| i.resource_share_invitation_arn)
            .collect();
        let accept = RamOperation::AcceptResourceShareInvitation;
        let first =
            answer(&mut state, accept, RECEIVER, &arns[0], Some("tok-1"), t0()).expect("accepted");
        assert_eq!(first["clientToken"], "tok-1");
        let replay =
            answer(&mut state, accept, RECEIVER, &arns[0], Some("tok-1"), t0()).expect("replayed");
        assert_eq!(
            replay, first,
            "same token and parameters: same result, not AlreadyAccepted"
        );
        assert_eq!(
            code(answer(
                &mut state,
                accept,
                RECEIVER,
                &arns[1],
                Some("tok-1"),
                t0()
            )),
            "IdempotentParameterMismatchException"
        );
        // Without the token the state decides.
        assert_eq!(
            code(answer(&mut state, accept, RECEIVER, &arns[0], None, t0())),
            "ResourceShareInvitationAlreadyAcceptedException"
        );
        // A replayed create makes no second share.
        let create = |state: &mut RamState| {
            state.execute(
                RamOperation::CreateResourceShare,
                &caller(OWNER),
                &body(json!({ "name": "n", "principals": [OTHER], "clientToken": "c-1" })),
                t0(),
            )
        };
        let a = create(&mut state).expect("created");
        let b = create(&mut state).expect("replayed");
        assert_eq!(a, b);
        assert_eq!(state.shares.len(), 3);
        assert_eq!(state.invitations(t0()).len(), 3);
    }

    #[test]
    fn get_invitations_shows_received_ones_and_pages() {
        let mut state = RamState::default();
        for _ in 0..5 {
            share(&mut state, &[RECEIVER], t0());
        }
        share(&mut state, &[OTHER], t0());
        let get = |state: &mut RamState, who: &str, input: Value| {
            state.execute(
                RamOperation::GetResourceShareInvitations,
                &caller(who),
                &body(input),
                t0(),
            )
        };
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut input = json!({ "maxResults": 2 });
            if let Some(t) = &token {
                input["nextToken"] = Value::from(t.clone());
            }
            let page = get(&mut state, RECEIVER, input).expect("page");
            pages += 1;
            for i in page["resourceShareInvitations"].as_array().expect("array") {
                assert_eq!(i["receiverAccountId"], RECEIVER);
                assert!(i["invitationTimestamp"].is_number());
                seen.push(
                    i["resourceShareInvitationArn"]
                        .as_str()
                        .expect("arn")
                        .to_owned(),
                );
            }
            match page.get("nextToken").and_then(Value::as_str) {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        assert_eq!((seen.len(), pages), (5, 3));
        // The sender sees none of its sent invitations; the other receiver only its own.
        let sent = get(&mut state, OWNER, json!({})).expect("empty");
        assert_eq!(sent["resourceShareInvitations"], json!([]));
        assert_eq!(
            code(get(
                &mut state,
                OWNER,
                json!({ "resourceShareInvitationArns": [seen[0]] })
            )),
            "ResourceShareInvitationArnNotFoundException"
        );
        let one = get(
            &mut state,
            RECEIVER,
            json!({ "resourceShareInvitationArns": [seen[3]] }),
        )
        .expect("one");
        assert_eq!(
            one["resourceShareInvitations"][0]["resourceShareInvitationArn"],
            seen[3].as_str()
        );
        for bad in [0, 501] {
            assert_eq!(
                code(get(&mut state, RECEIVER, json!({ "maxResults": bad }))),
                "InvalidMaxResultsException"
            );
        }
        assert_eq!(
            code(get(&mut state, RECEIVER, json!({ "nextToken": "zz" }))),
            "InvalidNextTokenException"
        );
        assert_eq!(
            code(get(
                &mut state,
                RECEIVER,
                json!({ "resourceShareInvitationArns": ["arn:aws:ram:us-east-1:111111111111:resource-share/x"] })
            )),
            "MalformedArnException"
        );
        assert_eq!(
            code(get(
                &mut state,
                RECEIVER,
                json!({ "resourceShareInvitationArns": ["not-an-arn"] })
            )),
            "MalformedArnException"
        );
    }

    #[test]
    fn create_and_associate_check_their_inputs() {
        let mut state = RamState::default();
        let create = |state: &mut RamState, input: Value| {
            state.execute(
                RamOperation::CreateResourceShare,
                &caller(OWNER),
                &body(input),
                t0(),
            )
        };
        assert_eq!(
            code(create(&mut state, json!({}))),
            "MissingRequiredParameterException"
        );
        assert_eq!(
            code(create(&mut state, json!({ "name": 5 }))),
            "InvalidParameterException"
        );
        assert_eq!(
            code(create(
                &mut state,
                json!({ "name": "n", "principals": [OWNER] })
            )),
            "InvalidParameterException"
        );
        assert_eq!(
            code(create(
                &mut state,
                json!({ "name": "n", "principals": [RECEIVER], "allowExternalPrincipals": false })
            )),
            "OperationNotPermittedException"
        );
        assert_eq!(
            code(create(
                &mut state,
                json!({ "name": "n", "resourceArns": ["subnet-1"] })
            )),
            "MalformedArnException"
        );
        let arn = share(&mut state, &[], t0());
        assert!(state.invitations(t0()).is_empty());
        let associate = |state: &mut RamState, who: &str, arn: &str| {
            state.execute(
                RamOperation::AssociateResourceShare,
                &caller(who),
                &body(json!({ "resourceShareArn": arn, "principals": [OTHER] })),
                t0(),
            )
        };
        assert_eq!(
            code(associate(&mut state, RECEIVER, &arn)),
            "UnknownResourceException"
        );
        assert_eq!(
            code(associate(&mut state, OWNER, "arn:aws:ram:x")),
            "MalformedArnException"
        );
        associate(&mut state, OWNER, &arn).expect("owner associates");
        assert_eq!(state.invitations(t0()).len(), 1);
    }

    #[test]
    fn pending_resources_list_the_share_s_resources() {
        let mut state = RamState::default();
        share(&mut state, &[RECEIVER], t0());
        let arn = state.invitations(t0())[0]
            .resource_share_invitation_arn
            .clone();
        let list = |state: &mut RamState| {
            state.execute(
                RamOperation::ListPendingInvitationResources,
                &caller(RECEIVER),
                &body(json!({ "resourceShareInvitationArn": arn })),
                t0(),
            )
        };
        let out = list(&mut state).expect("listed");
        assert_eq!(
            out["resources"][0]["arn"],
            "arn:aws:ec2:eu-west-1:111111111111:subnet/subnet-1"
        );
        assert_eq!(out["resources"][0]["type"], "ec2:Subnet");
        assert!(out.get("nextToken").is_none());
        answer(
            &mut state,
            RamOperation::RejectResourceShareInvitation,
            RECEIVER,
            &arn,
            None,
            t0(),
        )
        .expect("rejected");
        assert_eq!(
            code(list(&mut state)),
            "ResourceShareInvitationAlreadyRejectedException"
        );
    }
}
