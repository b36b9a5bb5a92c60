//! The account links the emulator holds and the rules of the six operations over them: input
//! validation, who may call what in which state, AWS-side client-token idempotency, and
//! `ListAccountLinks` pagination.
//!
//! Sources: the WorkSpaces API reference pages of the six operations (shapes, patterns, the
//! documented exceptions and their wording), its "Bring Your Own License" guide (a source
//! account invites a target account, the target accepts or rejects, there is no unlinking
//! after accept), and DESIGN.md §1. Where the reference is silent the rule chosen is stated
//! on the function that applies it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::protocol::{ApiError, ErrorCode, Operation, is_account_id};

/// The status of an account link (`AccountLinkStatusEnum` in the WorkSpaces model).
///
/// The emulator produces `PENDING_ACCEPTANCE_BY_TARGET_ACCOUNT`, `LINKED` and `REJECTED`;
/// `LINKING_FAILED` and `LINK_NOT_FOUND` exist in the model and are accepted as list filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountLinkStatus {
    /// `LINKED`: the target accepted; final, the link cannot be deleted.
    Linked,
    /// `LINKING_FAILED`: never produced by the emulator.
    LinkingFailed,
    /// `LINK_NOT_FOUND`: never produced by the emulator.
    LinkNotFound,
    /// `PENDING_ACCEPTANCE_BY_TARGET_ACCOUNT`: invited, awaiting the target.
    PendingAcceptanceByTargetAccount,
    /// `REJECTED`: the target rejected; the source may delete it.
    Rejected,
}

impl AccountLinkStatus {
    /// Every status, in the model's order.
    pub const ALL: [AccountLinkStatus; 5] = [
        AccountLinkStatus::Linked,
        AccountLinkStatus::LinkingFailed,
        AccountLinkStatus::LinkNotFound,
        AccountLinkStatus::PendingAcceptanceByTargetAccount,
        AccountLinkStatus::Rejected,
    ];

    /// The wire spelling, e.g. `PENDING_ACCEPTANCE_BY_TARGET_ACCOUNT`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountLinkStatus::Linked => "LINKED",
            AccountLinkStatus::LinkingFailed => "LINKING_FAILED",
            AccountLinkStatus::LinkNotFound => "LINK_NOT_FOUND",
            AccountLinkStatus::PendingAcceptanceByTargetAccount => {
                "PENDING_ACCEPTANCE_BY_TARGET_ACCOUNT"
            }
            AccountLinkStatus::Rejected => "REJECTED",
        }
    }

    /// Parses the wire spelling; `None` for anything outside the enum.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// Whether the link occupies its target: a target with a pending or accepted link cannot
    /// be invited again ("The TargetAccountId is already linked or invited").
    fn occupies_target(self) -> bool {
        matches!(
            self,
            AccountLinkStatus::PendingAcceptanceByTargetAccount | AccountLinkStatus::Linked
        )
    }
}

/// An account link as the API returns it (`AccountLink` shape, PascalCase members).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountLink {
    /// `link-` followed by 16 lowercase hex digits (matches `^link-.{8,24}$`).
    pub account_link_id: String,
    /// Current status.
    pub account_link_status: AccountLinkStatus,
    /// The inviting (BYOL) account, 12 digits.
    pub source_account_id: String,
    /// The invited account, 12 digits.
    pub target_account_id: String,
}

impl AccountLink {
    /// The `AccountLink` JSON object, built by hand so no serializer failure path exists.
    fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert(
            "AccountLinkId".to_owned(),
            Value::from(self.account_link_id.clone()),
        );
        object.insert(
            "AccountLinkStatus".to_owned(),
            Value::from(self.account_link_status.as_str()),
        );
        object.insert(
            "SourceAccountId".to_owned(),
            Value::from(self.source_account_id.clone()),
        );
        object.insert(
            "TargetAccountId".to_owned(),
            Value::from(self.target_account_id.clone()),
        );
        Value::Object(object)
    }

    /// `{"AccountLink": {...}}`, the output of every operation but `ListAccountLinks`.
    fn wrapped(&self) -> Value {
        let mut object = Map::new();
        object.insert("AccountLink".to_owned(), self.to_json());
        Value::Object(object)
    }

    /// The other party of the link as seen by `account`, if `account` is a party.
    fn counterparty(&self, account: &str) -> Option<&str> {
        if self.source_account_id == account {
            Some(&self.target_account_id)
        } else if self.target_account_id == account {
            Some(&self.source_account_id)
        } else {
            None
        }
    }
}

/// Largest and default `MaxResults` of `ListAccountLinks` (model range 1..25).
const MAX_RESULTS: u64 = 25;

/// Longest `NextToken` the model accepts.
const MAX_NEXT_TOKEN_CHARS: usize = 2048;

/// A model `@pattern`, with the check that implements it.
#[derive(Clone, Copy)]
struct Pattern {
    text: &'static str,
    matches: fn(&str) -> bool,
}

const ACCOUNT_ID: Pattern = Pattern {
    text: r"^\d{12}$",
    matches: is_account_id,
};

const LINK_ID: Pattern = Pattern {
    text: r"^link-.{8,24}$",
    matches: |value| {
        value
            .strip_prefix("link-")
            .is_some_and(|rest| dot_repeat(rest, 8, 24))
    },
};

const CLIENT_TOKEN: Pattern = Pattern {
    text: r"^.{1,64}$",
    matches: |value| dot_repeat(value, 1, 64),
};

/// Whether `value` matches `.{min,max}` as AWS's (Java) regex engine reads it: `.` is any
/// character except a line terminator.
fn dot_repeat(value: &str, min: usize, max: usize) -> bool {
    let count = value.chars().count();
    (min..=max).contains(&count)
        && !value
            .chars()
            .any(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'))
}

/// The constraint violations of one request, reported together the way AWS does:
/// `2 validation errors detected: Value '…' at 'linkId' failed to satisfy constraint: …; …`.
/// Members are named in lowerCamelCase, as AWS names them in these messages.
#[derive(Default)]
struct Violations(Vec<String>);

impl Violations {
    fn push(&mut self, member: &str, value: Option<&str>, constraint: impl std::fmt::Display) {
        let value = match value {
            Some(value) => format!("'{value}'"),
            None => "null".to_owned(),
        };
        self.0.push(format!(
            "Value {value} at '{}' failed to satisfy constraint: {constraint}",
            lower_camel(member)
        ));
    }

    /// Reads string member `member`, checks it against `pattern`, and records a violation
    /// when it is missing (if `required`) or does not match.
    ///
    /// # Errors
    /// `SerializationException` when the member is present but not a string.
    fn string<'a>(
        &mut self,
        members: &'a Map<String, Value>,
        member: &str,
        pattern: Pattern,
        required: bool,
    ) -> Result<Option<&'a str>, ApiError> {
        let value = string_member(members, member)?;
        match value {
            None if required => self.push(member, None, "Member must not be null"),
            Some(v) if !(pattern.matches)(v) => self.push(
                member,
                Some(v),
                format_args!(
                    "Member must satisfy regular expression pattern: {}",
                    pattern.text
                ),
            ),
            _ => {}
        }
        Ok(value)
    }

    /// `Ok` when nothing was violated, else the `ValidationException` listing every violation.
    fn finish(self) -> Result<(), ApiError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(ApiError::validation(format!(
                "1 validation error detected: {}",
                self.0.join("; ")
            ))),
            n => Err(ApiError::validation(format!(
                "{n} validation errors detected: {}",
                self.0.join("; ")
            ))),
        }
    }
}

/// `TargetAccountId` -> `targetAccountId`.
fn lower_camel(member: &str) -> String {
    let mut chars = member.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// The request body as a JSON object.
///
/// # Errors
/// `SerializationException` when the body is not an object.
fn members(body: &Value) -> Result<&Map<String, Value>, ApiError> {
    body.as_object().ok_or_else(|| {
        ApiError::serialization("Start of structure or map found where not expected.")
    })
}

/// A string member; absent and `null` both read as `None`.
///
/// # Errors
/// `SerializationException` when the member has another JSON type.
fn string_member<'a>(
    members: &'a Map<String, Value>,
    member: &str,
) -> Result<Option<&'a str>, ApiError> {
    match members.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::serialization(format!(
            "Unexpected value type for member '{member}': expected a string"
        ))),
    }
}

/// A required member after [`Violations::finish`] succeeded: always `Some`, but kept total.
fn required<'a>(value: Option<&'a str>, member: &str) -> Result<&'a str, ApiError> {
    value.ok_or_else(|| {
        let mut violations = Violations::default();
        violations.push(member, None, "Member must not be null");
        violations
            .finish()
            .err()
            .unwrap_or_else(|| ApiError::validation("missing member"))
    })
}

/// The position of a `ListAccountLinks` page, bound to the caller and the filter it was
/// issued for. Sent as the lowercase hex of its JSON; the client treats it as opaque.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// The account the page was listed for.
    account: String,
    /// The normalized (sorted, deduplicated) status filter; empty means no filter.
    filter: Vec<AccountLinkStatus>,
    /// Creation sequence number of the last link already returned.
    after: u64,
}

impl Cursor {
    fn encode(&self) -> Result<String, ApiError> {
        serde_json::to_vec(self).map(hex::encode).map_err(|error| {
            ApiError::new(
                ErrorCode::InternalServer,
                format!("cannot encode next token: {error}"),
            )
        })
    }

    fn decode(token: &str) -> Option<Self> {
        let bytes = hex::decode(token).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Key of an idempotency record: the same token from another account or for another
/// operation is a different request.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TokenKey {
    account: String,
    operation: Operation,
    client_token: String,
}

#[derive(Debug)]
struct TokenRecord {
    /// The operation's parameters other than `ClientToken`.
    params: Value,
    /// The success body returned the first time.
    response: Value,
}

/// Every link the emulator knows plus the client-token records of the mutating operations.
///
/// Links are keyed by their creation sequence number (the list order and the pagination
/// position) and indexed by link id and by account, so that every operation touches only
/// the links of the accounts it names: one lookup for a link id, the caller's (or the
/// target's) links for everything else, never every link. The three maps always hold the
/// same links; only [`LinkStore::insert`] and [`LinkStore::remove`] change them.
#[derive(Debug, Default)]
pub(super) struct LinkStore {
    /// Links by creation sequence number, so in creation order; deleted links are removed.
    links: BTreeMap<u64, AccountLink>,
    /// Link id -> creation sequence number of that link.
    by_id: HashMap<String, u64>,
    /// Account id -> creation sequence numbers of the links it is the source or the target
    /// of; an account with no link has no entry.
    by_account: HashMap<String, BTreeSet<u64>>,
    /// Last creation sequence number handed out.
    created: u64,
    tokens: HashMap<TokenKey, TokenRecord>,
}

impl LinkStore {
    /// A snapshot of every link, in creation order.
    pub(super) fn links(&self) -> Vec<AccountLink> {
        self.links.values().cloned().collect()
    }

    /// Adds `link` as the newest link and indexes it.
    fn insert(&mut self, link: AccountLink) {
        self.created += 1;
        let created = self.created;
        self.by_id.insert(link.account_link_id.clone(), created);
        for account in [&link.source_account_id, &link.target_account_id] {
            self.by_account
                .entry(account.clone())
                .or_default()
                .insert(created);
        }
        self.links.insert(created, link);
    }

    /// Removes the link created as `created` from the links and every index.
    fn remove(&mut self, created: u64) -> Option<AccountLink> {
        let link = self.links.remove(&created)?;
        self.by_id.remove(&link.account_link_id);
        for account in [&link.source_account_id, &link.target_account_id] {
            if let Some(set) = self.by_account.get_mut(account) {
                set.remove(&created);
                if set.is_empty() {
                    self.by_account.remove(account);
                }
            }
        }
        Some(link)
    }

    /// The creation sequence number of the link with id `link_id`.
    fn created_of(&self, link_id: &str) -> Option<u64> {
        self.by_id.get(link_id).copied()
    }

    /// The links `account` is the source or the target of, created after `after`, in
    /// creation order (reversible).
    fn links_of(
        &self,
        account: &str,
        after: u64,
    ) -> impl DoubleEndedIterator<Item = (u64, &AccountLink)> {
        self.by_account
            .get(account)
            .into_iter()
            .flat_map(move |set| set.range((Bound::Excluded(after), Bound::Unbounded)))
            .filter_map(|created| self.links.get(created).map(|link| (*created, link)))
    }

    /// How many links `account` is a party to.
    fn link_count(&self, account: &str) -> usize {
        self.by_account.get(account).map_or(0, BTreeSet::len)
    }

    /// Runs `operation` for `caller` on the JSON request `body` and returns the success body.
    ///
    /// # Errors
    /// The AWS exception the operation ends with; each operation's function lists its own.
    pub(super) fn execute(
        &mut self,
        operation: Operation,
        caller: &str,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let members = members(body)?;
        match operation {
            Operation::CreateAccountLinkInvitation => self.create(caller, members),
            Operation::AcceptAccountLinkInvitation | Operation::RejectAccountLinkInvitation => {
                self.respond(operation, caller, members)
            }
            Operation::DeleteAccountLinkInvitation => self.delete(caller, members),
            Operation::GetAccountLink => self.get(caller, members),
            Operation::ListAccountLinks => self.list(caller, members),
        }
    }

    /// Runs the read-only `operation` ([`Operation::is_read_only`]) for `caller` on `body`,
    /// as [`LinkStore::execute`] does, through a shared reference.
    ///
    /// # Errors
    /// As [`LinkStore::execute`]; `InternalServerException` when `operation` is not
    /// read-only (a bug in the caller).
    pub(super) fn query(
        &self,
        operation: Operation,
        caller: &str,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let members = members(body)?;
        match operation {
            Operation::GetAccountLink => self.get(caller, members),
            Operation::ListAccountLinks => self.list(caller, members),
            _ => Err(ApiError::new(
                ErrorCode::InternalServer,
                format!("{} is not a read-only operation", operation.name()),
            )),
        }
    }

    /// Runs `apply` under AWS-side client-token idempotency.
    ///
    /// With no token, `apply` simply runs. With a token, the key is (caller account,
    /// operation, token): the first successful call stores its parameters and response; a
    /// later call with the same key and the same parameters gets the stored response without
    /// the state change being applied again, whatever the link's state is now; the same key
    /// with different parameters is a `ValidationException`. Failed calls store nothing, so
    /// a retry after an error is evaluated afresh. Records never expire.
    ///
    /// WorkSpaces documents `ClientToken` only as "used to ensure idempotent creation"; the
    /// replay and mismatch rules follow the AWS RAM and EC2 client-token rules (DESIGN.md §1),
    /// with the mismatch reported as `ValidationException` because the WorkSpaces model has
    /// no `IdempotentParameterMismatch` exception for these operations.
    fn idempotent(
        &mut self,
        caller: &str,
        operation: Operation,
        client_token: Option<&str>,
        params: impl FnOnce() -> Value,
        apply: impl FnOnce(&mut Self) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let Some(client_token) = client_token else {
            return apply(self);
        };
        let params = params();
        let key = TokenKey {
            account: caller.to_owned(),
            operation,
            client_token: client_token.to_owned(),
        };
        if let Some(record) = self.tokens.get(&key) {
            return if record.params == params {
                Ok(record.response.clone())
            } else {
                Err(ApiError::validation(format!(
                    "The ClientToken '{client_token}' was already used for a {} request with different parameters.",
                    operation.name()
                )))
            };
        }
        let response = apply(self)?;
        self.tokens.insert(
            key,
            TokenRecord {
                params,
                response: response.clone(),
            },
        );
        Ok(response)
    }

    /// `CreateAccountLinkInvitation`: the caller (source) invites `TargetAccountId`; the new
    /// link is `PENDING_ACCEPTANCE_BY_TARGET_ACCOUNT`.
    ///
    /// # Errors
    /// - `ValidationException` when `TargetAccountId` is missing or not `^\d{12}$`, when
    ///   `ClientToken` is not `^.{1,64}$`, or when the target is the caller ("You either
    ///   haven't provided a TargetAccountId or are using the same value for TargetAccountId
    ///   and SourceAccountId", API reference).
    /// - `ConflictException` when the target already has a link that is pending or linked,
    ///   from any source ("The TargetAccountId is already linked or invited", API reference).
    ///   Rejected links do not block a new invitation.
    fn create(&mut self, caller: &str, members: &Map<String, Value>) -> Result<Value, ApiError> {
        let mut violations = Violations::default();
        let target = violations.string(members, "TargetAccountId", ACCOUNT_ID, true)?;
        let client_token = violations.string(members, "ClientToken", CLIENT_TOKEN, false)?;
        violations.finish()?;
        let target = required(target, "TargetAccountId")?;
        if target == caller {
            return Err(ApiError::validation(
                "You either haven't provided a TargetAccountId or are using the same value for TargetAccountId and SourceAccountId.",
            ));
        }
        self.idempotent(
            caller,
            Operation::CreateAccountLinkInvitation,
            client_token,
            || json!({ "TargetAccountId": target }),
            |store| {
                // Only the target's own links can occupy it.
                if let Some((_, existing)) = store.links_of(target, 0).find(|(_, l)| {
                    l.target_account_id == target && l.account_link_status.occupies_target()
                }) {
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        format!(
                            "The TargetAccountId is already linked or invited (link {} is {}).",
                            existing.account_link_id,
                            existing.account_link_status.as_str()
                        ),
                    ));
                }
                let link = AccountLink {
                    account_link_id: store.new_link_id(),
                    account_link_status: AccountLinkStatus::PendingAcceptanceByTargetAccount,
                    source_account_id: caller.to_owned(),
                    target_account_id: target.to_owned(),
                };
                let body = link.wrapped();
                store.insert(link);
                Ok(body)
            },
        )
    }

    /// `AcceptAccountLinkInvitation` (-> `LINKED`) and `RejectAccountLinkInvitation`
    /// (-> `REJECTED`): only the target account answers an invitation.
    ///
    /// # Errors
    /// - `ValidationException` when `LinkId` is missing or not `^link-.{8,24}$`, or
    ///   `ClientToken` is not `^.{1,64}$`.
    /// - `ResourceNotFoundException` (`ResourceId` = the link id) when no link has that id or
    ///   the caller is neither its source nor its target: a stranger cannot learn it exists.
    /// - `AccessDeniedException` when the caller is the link's source.
    /// - `ConflictException` when the link is not `PENDING_ACCEPTANCE_BY_TARGET_ACCOUNT`
    ///   (already linked or rejected); the API reference lists ConflictException for both.
    fn respond(
        &mut self,
        operation: Operation,
        caller: &str,
        members: &Map<String, Value>,
    ) -> Result<Value, ApiError> {
        let (link_id, client_token) = link_id_and_token(members)?;
        let (new_status, verb) = match operation {
            Operation::AcceptAccountLinkInvitation => (AccountLinkStatus::Linked, "accept"),
            _ => (AccountLinkStatus::Rejected, "reject"),
        };
        let params = || json!({ "LinkId": link_id });
        self.idempotent(caller, operation, client_token, params, |store| {
            let link = store
                .created_of(link_id)
                .and_then(|created| store.links.get_mut(&created))
                .ok_or_else(|| ApiError::not_found(link_id))?;
            if link.target_account_id != caller {
                if link.source_account_id == caller {
                    return Err(ApiError::new(
                        ErrorCode::AccessDenied,
                        format!(
                            "The user is not authorized to access a resource: only the target account can {verb} account link {link_id}."
                        ),
                    ));
                }
                return Err(ApiError::not_found(link_id));
            }
            if link.account_link_status != AccountLinkStatus::PendingAcceptanceByTargetAccount {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!(
                        "The account link {link_id} is {} and can no longer be {verb}ed; only a link in PENDING_ACCEPTANCE_BY_TARGET_ACCOUNT can.",
                        link.account_link_status.as_str()
                    ),
                ));
            }
            link.account_link_status = new_status;
            Ok(link.wrapped())
        })
    }

    /// `DeleteAccountLinkInvitation`: the source withdraws an invitation that is pending or
    /// was rejected. The link is removed (a later `GetAccountLink` is
    /// `ResourceNotFoundException`, and the target may be invited again). The response
    /// carries the link as it was when deleted, with its last status (the API reference does
    /// not say which status a deleted link reports).
    ///
    /// # Errors
    /// - `ValidationException` when `LinkId` is missing or not `^link-.{8,24}$`, or
    ///   `ClientToken` is not `^.{1,64}$`.
    /// - `ResourceNotFoundException` when no link has that id or the caller is not a party.
    /// - `AccessDeniedException` when the caller is the link's target.
    /// - `ConflictException` when the link is `LINKED`: "There's currently no unlinking
    ///   capability after you accept the account linking invitation" (API reference,
    ///   AcceptAccountLinkInvitation).
    fn delete(&mut self, caller: &str, members: &Map<String, Value>) -> Result<Value, ApiError> {
        let (link_id, client_token) = link_id_and_token(members)?;
        self.idempotent(
            caller,
            Operation::DeleteAccountLinkInvitation,
            client_token,
            || json!({ "LinkId": link_id }),
            |store| {
                let (created, link) = store
                    .created_of(link_id)
                    .and_then(|created| store.links.get(&created).map(|link| (created, link)))
                    .ok_or_else(|| ApiError::not_found(link_id))?;
                if link.source_account_id != caller {
                    if link.target_account_id == caller {
                        return Err(ApiError::new(
                            ErrorCode::AccessDenied,
                            format!(
                                "The user is not authorized to access a resource: only the source account can delete account link {link_id}."
                            ),
                        ));
                    }
                    return Err(ApiError::not_found(link_id));
                }
                if link.account_link_status == AccountLinkStatus::Linked {
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        format!(
                            "The account link {link_id} is LINKED and cannot be deleted: there is no unlinking after an invitation is accepted."
                        ),
                    ));
                }
                let body = link.wrapped();
                store.remove(created);
                Ok(body)
            },
        )
    }

    /// `GetAccountLink`: one link the caller is a party to, by `LinkId` or by
    /// `LinkedAccountId` (the other party). When both are given the link must match both.
    /// By account, the most recently created link between the two accounts (either
    /// direction) is returned.
    ///
    /// # Errors
    /// - `ValidationException` when neither member is given, or one violates its pattern.
    /// - `ResourceNotFoundException` when no such link is visible to the caller
    ///   (`ResourceId` = the link id, else the linked account id).
    fn get(&self, caller: &str, members: &Map<String, Value>) -> Result<Value, ApiError> {
        let mut violations = Violations::default();
        let link_id = violations.string(members, "LinkId", LINK_ID, false)?;
        let linked = violations.string(members, "LinkedAccountId", ACCOUNT_ID, false)?;
        violations.finish()?;
        let link = match (link_id, linked) {
            (None, None) => {
                return Err(ApiError::validation(
                    "Either LinkId or LinkedAccountId must be specified.",
                ));
            }
            (Some(link_id), linked) => self
                .created_of(link_id)
                .and_then(|created| self.links.get(&created))
                .filter(|l| {
                    l.counterparty(caller)
                        .is_some_and(|other| linked.is_none_or(|want| want == other))
                })
                .ok_or_else(|| ApiError::not_found(link_id))?,
            (None, Some(linked)) => {
                // Every link between the pair is in both accounts' sets: walk the smaller.
                let walked = if self.link_count(linked) < self.link_count(caller) {
                    linked
                } else {
                    caller
                };
                self.links_of(walked, 0)
                    .rev()
                    .map(|(_, l)| l)
                    .find(|l| l.counterparty(caller) == Some(linked))
                    .ok_or_else(|| ApiError::not_found(linked))?
            }
        };
        Ok(link.wrapped())
    }

    /// `ListAccountLinks`: the links where the caller is source or target, in creation order,
    /// optionally only those whose status is in `LinkStatusFilter` (an empty filter is no
    /// filter). Pages hold `MaxResults` links (default and maximum 25); `NextToken` is
    /// present only when more links follow. A token is bound to the caller and the filter it
    /// was issued for; `MaxResults` may change between pages. Links created after a token
    /// was issued appear on later pages; deleted ones simply drop out.
    ///
    /// # Errors
    /// - `ValidationException` when a filter value is outside the status enum, `MaxResults`
    ///   is outside 1..25, `NextToken` is not 1..2048 characters, or the token is not one
    ///   this emulator issued to this caller for this filter.
    /// - `SerializationException` when a member has the wrong JSON type.
    fn list(&self, caller: &str, members: &Map<String, Value>) -> Result<Value, ApiError> {
        let mut violations = Violations::default();
        let filter = read_filter(members, &mut violations)?;
        let max_results = read_max_results(members, &mut violations)?;
        let next_token = string_member(members, "NextToken")?;
        if let Some(token) = next_token {
            let chars = token.chars().count();
            if chars < 1 {
                violations.push(
                    "NextToken",
                    Some(token),
                    "Member must have length greater than or equal to 1",
                );
            } else if chars > MAX_NEXT_TOKEN_CHARS {
                violations.push(
                    "NextToken",
                    Some(token),
                    "Member must have length less than or equal to 2048",
                );
            }
        }
        violations.finish()?;

        let after = match next_token {
            None => 0,
            Some(token) => match Cursor::decode(token) {
                Some(cursor) if cursor.account == caller && cursor.filter == filter => cursor.after,
                _ => return Err(ApiError::validation("The NextToken is not valid.")),
            },
        };
        let page_size = usize::try_from(max_results.unwrap_or(MAX_RESULTS)).unwrap_or(usize::MAX);
        let mut matching = self
            .links_of(caller, after)
            .filter(|(_, l)| filter.is_empty() || filter.contains(&l.account_link_status));
        let page: Vec<(u64, &AccountLink)> = matching.by_ref().take(page_size).collect();
        let mut body = Map::new();
        body.insert(
            "AccountLinks".to_owned(),
            Value::Array(page.iter().map(|(_, l)| l.to_json()).collect()),
        );
        if let (Some((last, _)), Some(_)) = (page.last(), matching.next()) {
            let cursor = Cursor {
                account: caller.to_owned(),
                filter,
                after: *last,
            };
            body.insert("NextToken".to_owned(), Value::from(cursor.encode()?));
        }
        Ok(Value::Object(body))
    }

    /// A fresh `link-` + 16 lowercase hex id not used by any current link.
    fn new_link_id(&self) -> String {
        loop {
            let id = format!(
                "link-{}",
                hex::encode(&uuid::Uuid::new_v4().as_bytes()[..8])
            );
            if !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }
}

/// Reads the `LinkId` (required) and `ClientToken` (optional) of Accept/Reject/Delete.
///
/// # Errors
/// `ValidationException` for a missing or malformed member, `SerializationException` for a
/// non-string one.
fn link_id_and_token(members: &Map<String, Value>) -> Result<(&str, Option<&str>), ApiError> {
    let mut violations = Violations::default();
    let link_id = violations.string(members, "LinkId", LINK_ID, true)?;
    let client_token = violations.string(members, "ClientToken", CLIENT_TOKEN, false)?;
    violations.finish()?;
    Ok((required(link_id, "LinkId")?, client_token))
}

/// Reads `LinkStatusFilter` (a list of status strings) into a sorted, deduplicated set;
/// values outside the enum are recorded as one violation listing them.
///
/// # Errors
/// `SerializationException` when the member is not a list of strings.
fn read_filter(
    members: &Map<String, Value>,
    violations: &mut Violations,
) -> Result<Vec<AccountLinkStatus>, ApiError> {
    let items = match members.get("LinkStatusFilter") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::serialization(
                "Unexpected value type for member 'LinkStatusFilter': expected a list",
            ));
        }
    };
    let mut filter = Vec::new();
    let mut invalid = Vec::new();
    for item in items {
        let Some(value) = item.as_str() else {
            return Err(ApiError::serialization(
                "Unexpected value type in member 'LinkStatusFilter': expected strings",
            ));
        };
        match AccountLinkStatus::parse(value) {
            Some(status) => filter.push(status),
            None => invalid.push(value),
        }
    }
    if !invalid.is_empty() {
        let allowed: Vec<&str> = AccountLinkStatus::ALL.iter().map(|s| s.as_str()).collect();
        violations.push(
            "LinkStatusFilter",
            Some(&format!("[{}]", invalid.join(", "))),
            format_args!(
                "Member must satisfy constraint: [Member must satisfy enum value set: [{}]]",
                allowed.join(", ")
            ),
        );
    }
    filter.sort();
    filter.dedup();
    Ok(filter)
}

/// Reads `MaxResults`, recording a violation when it is outside 1..25.
///
/// # Errors
/// `SerializationException` when the member is not an integer.
fn read_max_results(
    members: &Map<String, Value>,
    violations: &mut Violations,
) -> Result<Option<u64>, ApiError> {
    let value = match members.get("MaxResults") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            ApiError::serialization("Unexpected value for member 'MaxResults': expected an integer")
        })?,
        Some(_) => {
            return Err(ApiError::serialization(
                "Unexpected value type for member 'MaxResults': expected an integer",
            ));
        }
    };
    let text = value.to_string();
    if value < 1 {
        violations.push(
            "MaxResults",
            Some(&text),
            "Member must have value greater than or equal to 1",
        );
        return Ok(None);
    }
    let value = value.unsigned_abs();
    if value > MAX_RESULTS {
        violations.push(
            "MaxResults",
            Some(&text),
            "Member must have value less than or equal to 25",
        );
        return Ok(None);
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "111111111111";
    const TARGET: &str = "222222222222";
    const STRANGER: &str = "333333333333";

    fn run(
        store: &mut LinkStore,
        op: Operation,
        caller: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        store.execute(op, caller, &body)
    }

    fn invite(store: &mut LinkStore, source: &str, target: &str) -> String {
        let out = run(
            store,
            Operation::CreateAccountLinkInvitation,
            source,
            json!({ "TargetAccountId": target }),
        )
        .expect("create succeeds");
        out["AccountLink"]["AccountLinkId"]
            .as_str()
            .expect("link id is a string")
            .to_owned()
    }

    fn code(result: Result<Value, ApiError>) -> ErrorCode {
        result.expect_err("call must fail").code
    }

    #[test]
    fn patterns_follow_the_model() {
        assert!((LINK_ID.matches)("link-0123abcd"));
        assert!(!(LINK_ID.matches)("link-0123abc"));
        assert!(!(LINK_ID.matches)(&format!("link-{}", "a".repeat(25))));
        assert!(!(LINK_ID.matches)("lnk-0123abcdef"));
        assert!((CLIENT_TOKEN.matches)(&"t".repeat(64)));
        assert!(!(CLIENT_TOKEN.matches)(&"t".repeat(65)));
        assert!(!(CLIENT_TOKEN.matches)("a\nb"));
        assert!(!(ACCOUNT_ID.matches)("11111111111"));
    }

    #[test]
    fn validation_messages_name_each_member() {
        let mut store = LinkStore::default();
        let error = run(
            &mut store,
            Operation::AcceptAccountLinkInvitation,
            TARGET,
            json!({ "ClientToken": "" }),
        )
        .expect_err("invalid");
        assert_eq!(error.code, ErrorCode::Validation);
        assert!(error.message.starts_with("2 validation errors detected"));
        assert!(error.message.contains("'linkId'"));
        assert!(error.message.contains("'clientToken'"));
    }

    #[test]
    fn wrong_member_type_is_serialization() {
        let mut store = LinkStore::default();
        let result = run(
            &mut store,
            Operation::CreateAccountLinkInvitation,
            SOURCE,
            json!({ "TargetAccountId": 222222222222_u64 }),
        );
        assert_eq!(code(result), ErrorCode::Serialization);
        let result = run(&mut store, Operation::ListAccountLinks, SOURCE, json!([]));
        assert_eq!(code(result), ErrorCode::Serialization);
    }

    #[test]
    fn rejected_target_can_be_invited_again_but_linked_cannot() {
        let mut store = LinkStore::default();
        let first = invite(&mut store, SOURCE, TARGET);
        let reject = json!({ "LinkId": first });
        run(
            &mut store,
            Operation::RejectAccountLinkInvitation,
            TARGET,
            reject,
        )
        .expect("reject");
        let second = invite(&mut store, STRANGER, TARGET);
        run(
            &mut store,
            Operation::AcceptAccountLinkInvitation,
            TARGET,
            json!({ "LinkId": second }),
        )
        .expect("accept");
        let again = run(
            &mut store,
            Operation::CreateAccountLinkInvitation,
            SOURCE,
            json!({ "TargetAccountId": TARGET }),
        );
        assert_eq!(code(again), ErrorCode::Conflict);
    }

    #[test]
    fn get_by_linked_account_returns_the_latest_link_between_the_pair() {
        let mut store = LinkStore::default();
        let first = invite(&mut store, SOURCE, TARGET);
        run(
            &mut store,
            Operation::RejectAccountLinkInvitation,
            TARGET,
            json!({ "LinkId": first }),
        )
        .expect("reject");
        let second = invite(&mut store, SOURCE, TARGET);
        let out = run(
            &mut store,
            Operation::GetAccountLink,
            TARGET,
            json!({ "LinkedAccountId": SOURCE }),
        )
        .expect("get");
        assert_eq!(out["AccountLink"]["AccountLinkId"], json!(second));
        let mismatch = run(
            &mut store,
            Operation::GetAccountLink,
            TARGET,
            json!({ "LinkId": second, "LinkedAccountId": STRANGER }),
        );
        assert_eq!(code(mismatch), ErrorCode::ResourceNotFound);
    }

    #[test]
    fn next_token_is_bound_to_caller_and_filter() {
        let mut store = LinkStore::default();
        invite(&mut store, SOURCE, TARGET);
        invite(&mut store, SOURCE, STRANGER);
        let page = run(
            &mut store,
            Operation::ListAccountLinks,
            SOURCE,
            json!({ "MaxResults": 1 }),
        )
        .expect("list");
        let token = page["NextToken"].as_str().expect("more pages").to_owned();
        let foreign = run(
            &mut store,
            Operation::ListAccountLinks,
            TARGET,
            json!({ "NextToken": token }),
        );
        assert_eq!(code(foreign), ErrorCode::Validation);
        let other_filter = run(
            &mut store,
            Operation::ListAccountLinks,
            SOURCE,
            json!({ "NextToken": token, "LinkStatusFilter": ["LINKED"] }),
        );
        assert_eq!(code(other_filter), ErrorCode::Validation);
        let last = run(
            &mut store,
            Operation::ListAccountLinks,
            SOURCE,
            json!({ "NextToken": token, "MaxResults": 25 }),
        )
        .expect("second page");
        assert_eq!(last["AccountLinks"].as_array().map(Vec::len), Some(1));
        assert!(last.get("NextToken").is_none());
    }

    #[test]
    fn token_of_a_failed_call_is_not_recorded() {
        let mut store = LinkStore::default();
        let link = invite(&mut store, SOURCE, TARGET);
        let body = json!({ "LinkId": link, "ClientToken": "t-1" });
        let denied = run(
            &mut store,
            Operation::AcceptAccountLinkInvitation,
            SOURCE,
            body.clone(),
        );
        assert_eq!(code(denied), ErrorCode::AccessDenied);
        run(
            &mut store,
            Operation::AcceptAccountLinkInvitation,
            TARGET,
            body,
        )
        .expect("accept");
    }

    /// A xorshift64 generator: the same sequence on every run, no dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            usize::try_from(self.0 % n as u64).expect("fits")
        }
    }

    /// What a scan over every link, in creation order, answers (the store before it had
    /// indexes), as a code or the `AccountLink` JSON.
    fn scan_get(
        model: &[AccountLink],
        caller: &str,
        link_id: Option<&str>,
        linked: Option<&str>,
    ) -> Result<Value, ErrorCode> {
        let found = match link_id {
            Some(id) => model.iter().find(|l| {
                l.account_link_id == id
                    && l.counterparty(caller)
                        .is_some_and(|other| linked.is_none_or(|want| want == other))
            }),
            None => model
                .iter()
                .rev()
                .find(|l| l.counterparty(caller) == linked),
        };
        found
            .map(AccountLink::to_json)
            .ok_or(ErrorCode::ResourceNotFound)
    }

    #[test]
    fn indexes_answer_as_a_scan_of_every_link() {
        // 8 busy accounts that are party to many links, and 400 that are mostly fresh.
        let accounts: Vec<String> = (0..408)
            .map(|i| format!("{:012}", 500_000_000_000_u64 + i))
            .collect();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let pick = |rng: &mut Rng| {
            let n = if rng.below(2) == 0 { 8 } else { accounts.len() };
            accounts[rng.below(n)].clone()
        };
        let mut store = LinkStore::default();
        // Every current link in creation order, kept by scanning as the store used to.
        let mut model: Vec<AccountLink> = Vec::new();
        let mut outcomes = [0_usize; 2];
        for step in 0..8_000 {
            // A current link most of the time, else an id that never existed; the caller is
            // one of its parties half the time, and `other` the caller's counterparty.
            let chosen = (!model.is_empty() && rng.below(8) > 0).then(|| rng.below(model.len()));
            let link_id = chosen.map_or_else(
                || "link-ffffffffffffffff".to_owned(),
                |i| model[i].account_link_id.clone(),
            );
            let caller = match chosen {
                Some(i) if rng.below(2) == 0 => {
                    let link = &model[i];
                    if rng.below(2) == 0 {
                        link.source_account_id.clone()
                    } else {
                        link.target_account_id.clone()
                    }
                }
                _ => pick(&mut rng),
            };
            let counterparty =
                chosen.and_then(|i| model[i].counterparty(&caller).map(str::to_owned));
            let other = match counterparty {
                Some(account) if rng.below(2) == 0 => account,
                _ => pick(&mut rng),
            };
            let (caller, other) = (caller.as_str(), other.as_str());
            // Create 4 in 10, accept, reject, delete and get 1 each, list 2.
            let op = [0, 0, 0, 0, 1, 2, 3, 4, 5, 5][rng.below(10)];
            let result = match op {
                0 => {
                    let body = json!({ "TargetAccountId": other });
                    let got = run(
                        &mut store,
                        Operation::CreateAccountLinkInvitation,
                        caller,
                        body,
                    );
                    if caller == other {
                        assert_eq!(code(got), ErrorCode::Validation);
                    } else if model.iter().any(|l| {
                        l.target_account_id == other && l.account_link_status.occupies_target()
                    }) {
                        assert_eq!(code(got), ErrorCode::Conflict, "step {step}");
                    } else {
                        let out = got.expect("create succeeds");
                        let link: AccountLink =
                            serde_json::from_value(out["AccountLink"].clone()).expect("a link");
                        assert_eq!(
                            (
                                link.source_account_id.as_str(),
                                link.target_account_id.as_str()
                            ),
                            (caller, other)
                        );
                        assert!(
                            model
                                .iter()
                                .all(|l| l.account_link_id != link.account_link_id)
                        );
                        model.push(link);
                    }
                    continue;
                }
                1..=3 => {
                    let operation = [
                        Operation::AcceptAccountLinkInvitation,
                        Operation::RejectAccountLinkInvitation,
                        Operation::DeleteAccountLinkInvitation,
                    ][op - 1];
                    let index = model.iter().position(|l| l.account_link_id == link_id);
                    let expected = match index.map(|i| &model[i]) {
                        None => Err(ErrorCode::ResourceNotFound),
                        Some(l) => {
                            let (actor, bystander) = if op == 3 {
                                (&l.source_account_id, &l.target_account_id)
                            } else {
                                (&l.target_account_id, &l.source_account_id)
                            };
                            if actor != caller {
                                Err(if bystander == caller {
                                    ErrorCode::AccessDenied
                                } else {
                                    ErrorCode::ResourceNotFound
                                })
                            } else if (op == 3
                                && l.account_link_status == AccountLinkStatus::Linked)
                                || (op != 3
                                    && l.account_link_status
                                        != AccountLinkStatus::PendingAcceptanceByTargetAccount)
                            {
                                // Delete refuses a linked link; answers need a pending one.
                                Err(ErrorCode::Conflict)
                            } else {
                                Ok(())
                            }
                        }
                    };
                    let got = run(&mut store, operation, caller, json!({ "LinkId": link_id }));
                    match (expected, index) {
                        (Ok(()), Some(i)) => {
                            let out = got.expect("allowed");
                            if op == 3 {
                                assert_eq!(out["AccountLink"], model[i].to_json());
                                model.remove(i);
                            } else {
                                model[i].account_link_status = if op == 1 {
                                    AccountLinkStatus::Linked
                                } else {
                                    AccountLinkStatus::Rejected
                                };
                                assert_eq!(out["AccountLink"], model[i].to_json());
                            }
                        }
                        (expected, _) => {
                            assert_eq!(Err(code(got)), expected, "step {step}");
                        }
                    }
                    continue;
                }
                4 => {
                    let (body, by_id, linked) = match rng.below(3) {
                        0 => (json!({ "LinkId": link_id }), Some(link_id.as_str()), None),
                        1 => (json!({ "LinkedAccountId": other }), None, Some(other)),
                        _ => (
                            json!({ "LinkId": link_id, "LinkedAccountId": other }),
                            Some(link_id.as_str()),
                            Some(other),
                        ),
                    };
                    let got = run(&mut store, Operation::GetAccountLink, caller, body)
                        .map(|out| out["AccountLink"].clone())
                        .map_err(|e| e.code);
                    let expected = scan_get(&model, caller, by_id, linked);
                    assert_eq!(got, expected, "step {step}");
                    got
                }
                _ => {
                    let filter: Vec<AccountLinkStatus> = AccountLinkStatus::ALL
                        .into_iter()
                        .filter(|_| rng.below(3) == 0)
                        .collect();
                    let names: Vec<&str> = filter.iter().map(|s| s.as_str()).collect();
                    let max_results = 1 + rng.below(25);
                    let mut listed = Vec::new();
                    let mut token: Option<String> = None;
                    loop {
                        let body = json!({
                            "LinkStatusFilter": names,
                            "MaxResults": max_results,
                            "NextToken": token,
                        });
                        let page = run(&mut store, Operation::ListAccountLinks, caller, body)
                            .expect("list");
                        let links = page["AccountLinks"].as_array().expect("a list").clone();
                        assert!(links.len() <= max_results);
                        token = page
                            .get("NextToken")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        assert!(token.is_none() || links.len() == max_results);
                        listed.extend(links);
                        if token.is_none() {
                            break;
                        }
                    }
                    let expected: Vec<Value> = model
                        .iter()
                        .filter(|l| {
                            l.counterparty(caller).is_some()
                                && (filter.is_empty() || filter.contains(&l.account_link_status))
                        })
                        .map(AccountLink::to_json)
                        .collect();
                    assert_eq!(listed, expected, "step {step}");
                    Ok(Value::Null)
                }
            };
            outcomes[usize::from(result.is_ok())] += 1;
        }
        assert_eq!(store.links(), model);
        // Many links, and busy accounts with more than a page of them.
        let busiest = accounts[..8]
            .iter()
            .map(|a| model.iter().filter(|l| l.counterparty(a).is_some()).count())
            .max();
        assert!(model.len() > 300, "{} links", model.len());
        assert!(busiest > Some(25), "{busiest:?}");
        // The walk exercised both answers of the reads.
        assert!(outcomes.iter().all(|n| *n > 100), "{outcomes:?}");
    }

    #[test]
    fn deleted_links_leave_no_index_entries() {
        let mut store = LinkStore::default();
        let link = invite(&mut store, SOURCE, TARGET);
        run(
            &mut store,
            Operation::DeleteAccountLinkInvitation,
            SOURCE,
            json!({ "LinkId": link }),
        )
        .expect("delete");
        assert!(store.links.is_empty());
        assert!(store.by_id.is_empty());
        assert!(store.by_account.is_empty());
        let again = run(
            &mut store,
            Operation::GetAccountLink,
            TARGET,
            json!({ "LinkId": link }),
        );
        assert_eq!(code(again), ErrorCode::ResourceNotFound);
    }

    #[test]
    fn a_forged_cursor_at_the_end_of_time_is_an_empty_page() {
        let mut store = LinkStore::default();
        invite(&mut store, SOURCE, TARGET);
        let token = Cursor {
            account: SOURCE.to_owned(),
            filter: Vec::new(),
            after: u64::MAX,
        }
        .encode()
        .expect("encodes");
        let page = run(
            &mut store,
            Operation::ListAccountLinks,
            SOURCE,
            json!({ "NextToken": token }),
        )
        .expect("list");
        assert_eq!(page, json!({ "AccountLinks": [] }));
    }

    /// Not a test: times [`LinkStore::execute`] as links accumulate, the way the issue 10
    /// benchmark drives the emulator (16 source accounts inviting fresh targets), then
    /// `GetAccountLink` by id and by account and a full `ListAccountLinks` walk per source.
    /// Run with `cargo test --release --lib store_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "benchmark: run with --ignored --nocapture"]
    fn store_throughput() {
        use std::time::Instant;
        const LINKS: usize = 20_000;
        const SOURCES: usize = 16;
        let source = |i: usize| format!("{:012}", 900_000_000_000_u64 + (i % SOURCES) as u64);
        let target = |i: usize| format!("{:012}", 100_000_000_000_u64 + i as u64);
        let mut store = LinkStore::default();
        let mut ids = Vec::with_capacity(LINKS);
        let started = Instant::now();
        let mut batch = Instant::now();
        for i in 0..LINKS {
            let body = json!({ "TargetAccountId": target(i), "ClientToken": format!("t-{i}") });
            let out = store
                .execute(Operation::CreateAccountLinkInvitation, &source(i), &body)
                .expect("create succeeds");
            ids.push(
                out["AccountLink"]["AccountLinkId"]
                    .as_str()
                    .map(str::to_owned),
            );
            if (i + 1) % 5_000 == 0 {
                let per = batch.elapsed() / 5_000;
                println!("create: links {:>6}: {per:?} per call", i + 1);
                batch = Instant::now();
            }
        }
        let create = started.elapsed();
        let started = Instant::now();
        for (i, id) in ids.iter().enumerate() {
            let body = json!({ "LinkId": id });
            store
                .execute(Operation::GetAccountLink, &target(i), &body)
                .expect("get by id");
        }
        let get_id = started.elapsed();
        let started = Instant::now();
        for i in 0..LINKS {
            let body = json!({ "LinkedAccountId": source(i) });
            store
                .execute(Operation::GetAccountLink, &target(i), &body)
                .expect("get by account");
        }
        let get_account = started.elapsed();
        let started = Instant::now();
        let mut pages = 0_u32;
        for s in 0..SOURCES {
            let mut token: Option<String> = None;
            loop {
                let body = json!({ "NextToken": token });
                let out = store
                    .execute(Operation::ListAccountLinks, &source(s), &body)
                    .expect("list");
                pages += 1;
                match out.get("NextToken").and_then(Value::as_str) {
                    Some(next) => token = Some(next.to_owned()),
                    None => break,
                }
            }
        }
        let list = started.elapsed();
        let per = |total: std::time::Duration, n: u32| total / n;
        let n = u32::try_from(LINKS).expect("fits");
        println!("create total {create:?} ({:?} per call)", per(create, n));
        println!("get by id {:?} per call", per(get_id, n));
        println!("get by account {:?} per call", per(get_account, n));
        println!("list {pages} pages {:?} per page", per(list, pages));
    }
}
