//! Conversion between `pb` messages and domain types, with the validation
//! of every field (DESIGN §4). Nothing here panics on any input.

use serde_json::{Value, json};

use crate::domain::{
    AccountId, AccountLink, AccountLinkStatus, ClientToken, FieldViolation, GetAccountLinkInput,
    LinkId, ListAccountLinksInput, Mutation, NextToken,
};
use crate::proto::pb;

/// AWS `MaxResults` bounds for `ListAccountLinks`; also the AIP-158 default
/// and maximum `page_size`.
pub(crate) const MAX_PAGE_SIZE: i32 = 25;

/// Longest string kept per field in the audit trail's `request_parameters`.
const AUDIT_FIELD_MAX_CHARS: usize = 256;

/// A validated mutating request: the acting account (if named), the
/// mutation, and the client token (if sent).
pub(crate) type MutationInput = (Option<AccountId>, (Mutation, Option<ClientToken>));

/// An account-link mutation input as the shared pipeline takes it.
pub(super) fn link_operation((account, (mutation, token)): MutationInput) -> super::OperationInput {
    (account, (super::Operation::Link(mutation), token))
}

/// Collects violations while parsing a request.
#[derive(Debug, Default)]
pub(super) struct Checker {
    pub(super) violations: Vec<FieldViolation>,
}

impl Checker {
    pub(super) fn optional<T>(
        &mut self,
        field: &str,
        raw: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        if raw.is_empty() {
            return None;
        }
        match parse(raw) {
            Ok(v) => Some(v),
            Err(description) => {
                self.violations
                    .push(FieldViolation::new(field, description));
                None
            }
        }
    }

    pub(super) fn required<T>(
        &mut self,
        field: &str,
        raw: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        if raw.is_empty() {
            self.violations
                .push(FieldViolation::new(field, "is required"));
            return None;
        }
        self.optional(field, raw, parse)
    }

    pub(super) fn finish<T>(self, value: Option<T>) -> Result<T, Vec<FieldViolation>> {
        match value {
            Some(v) if self.violations.is_empty() => Ok(v),
            _ => Err(self.violations),
        }
    }
}

fn common(
    c: &mut Checker,
    account_id: &str,
    client_token: &str,
) -> (Option<AccountId>, Option<ClientToken>) {
    (
        c.optional("account_id", account_id, AccountId::parse),
        c.optional("client_token", client_token, ClientToken::parse),
    )
}

/// Validates a `CreateAccountLinkInvitationRequest`.
pub(crate) fn create(
    req: &pb::CreateAccountLinkInvitationRequest,
) -> Result<MutationInput, Vec<FieldViolation>> {
    let mut c = Checker::default();
    let (account_id, token) = common(&mut c, &req.account_id, &req.client_token);
    let target = c.required(
        "target_account_id",
        &req.target_account_id,
        AccountId::parse,
    );
    c.finish(
        target
            .map(|target_account_id| (account_id, (Mutation::Create { target_account_id }, token))),
    )
}

/// Validates the `(account_id, link_id, client_token)` of an Accept, Reject
/// or Delete request; `build` picks the variant.
pub(crate) fn on_link(
    account_id: &str,
    link_id: &str,
    client_token: &str,
    build: fn(LinkId) -> Mutation,
) -> Result<MutationInput, Vec<FieldViolation>> {
    let mut c = Checker::default();
    let (account_id, token) = common(&mut c, account_id, client_token);
    let link = c.required("link_id", link_id, LinkId::parse);
    c.finish(link.map(|l| (account_id, (build(l), token))))
}

/// Validates a `GetAccountLinkRequest`: at least one of `link_id` and
/// `linked_account_id` (AWS accepts either).
pub(crate) fn get(
    req: &pb::GetAccountLinkRequest,
) -> Result<(Option<AccountId>, GetAccountLinkInput), Vec<FieldViolation>> {
    let mut c = Checker::default();
    let account_id = c.optional("account_id", &req.account_id, AccountId::parse);
    let link_id = c.optional("link_id", &req.link_id, LinkId::parse);
    let linked_account_id = c.optional(
        "linked_account_id",
        &req.linked_account_id,
        AccountId::parse,
    );
    if req.link_id.is_empty() && req.linked_account_id.is_empty() {
        c.violations.push(FieldViolation::new(
            "link_id",
            "one of link_id or linked_account_id is required",
        ));
    }
    c.finish(Some((
        account_id,
        GetAccountLinkInput {
            link_id,
            linked_account_id,
        },
    )))
}

/// Validates a `ListAccountLinksRequest` (AIP-158: `page_size` 0 means the
/// default, values above the maximum are coerced to it, negative values are
/// invalid).
pub(crate) fn list(
    req: &pb::ListAccountLinksRequest,
) -> Result<(Option<AccountId>, ListAccountLinksInput), Vec<FieldViolation>> {
    let mut c = Checker::default();
    let account_id = c.optional("account_id", &req.account_id, AccountId::parse);
    let mut filter = Vec::with_capacity(req.link_status_filter.len());
    for (i, raw) in req.link_status_filter.iter().enumerate() {
        match status_from_pb(*raw) {
            Some(s) if !filter.contains(&s) => filter.push(s),
            Some(_) => {}
            None => c.violations.push(FieldViolation::new(
                format!("link_status_filter[{i}]"),
                "must be a specified AccountLinkStatus value",
            )),
        }
    }
    if req.page_size < 0 {
        c.violations
            .push(FieldViolation::new("page_size", "must not be negative"));
    }
    let max_results = match req.page_size {
        0 => MAX_PAGE_SIZE,
        n => n.clamp(1, MAX_PAGE_SIZE),
    };
    let next_token = c.optional("page_token", &req.page_token, NextToken::parse);
    c.finish(Some((
        account_id,
        ListAccountLinksInput {
            link_status_filter: filter,
            max_results,
            next_token,
        },
    )))
}

/// The domain status of a `pb::AccountLinkStatus` value; `None` for
/// UNSPECIFIED and unknown numbers.
pub(crate) fn status_from_pb(raw: i32) -> Option<AccountLinkStatus> {
    match pb::AccountLinkStatus::try_from(raw).ok()? {
        pb::AccountLinkStatus::Unspecified => None,
        pb::AccountLinkStatus::Linked => Some(AccountLinkStatus::Linked),
        pb::AccountLinkStatus::LinkingFailed => Some(AccountLinkStatus::LinkingFailed),
        pb::AccountLinkStatus::LinkNotFound => Some(AccountLinkStatus::LinkNotFound),
        pb::AccountLinkStatus::PendingAcceptanceByTargetAccount => {
            Some(AccountLinkStatus::PendingAcceptanceByTargetAccount)
        }
        pb::AccountLinkStatus::Rejected => Some(AccountLinkStatus::Rejected),
    }
}

fn status_to_pb(status: Option<AccountLinkStatus>) -> pb::AccountLinkStatus {
    match status {
        None => pb::AccountLinkStatus::Unspecified,
        Some(AccountLinkStatus::Linked) => pb::AccountLinkStatus::Linked,
        Some(AccountLinkStatus::LinkingFailed) => pb::AccountLinkStatus::LinkingFailed,
        Some(AccountLinkStatus::LinkNotFound) => pb::AccountLinkStatus::LinkNotFound,
        Some(AccountLinkStatus::PendingAcceptanceByTargetAccount) => {
            pb::AccountLinkStatus::PendingAcceptanceByTargetAccount
        }
        Some(AccountLinkStatus::Rejected) => pb::AccountLinkStatus::Rejected,
    }
}

/// The `pb` form of a link.
pub(crate) fn link_to_pb(link: &AccountLink) -> pb::AccountLink {
    pb::AccountLink {
        account_link_id: link.account_link_id.clone(),
        account_link_status: status_to_pb(link.account_link_status) as i32,
        source_account_id: link.source_account_id.clone(),
        target_account_id: link.target_account_id.clone(),
    }
}

/// The audit trail's JSON form of a link (AWS member names, as CloudTrail
/// records `responseElements`).
pub(crate) fn link_to_json(link: &pb::AccountLink) -> Value {
    let status = status_from_pb(link.account_link_status).map(AccountLinkStatus::as_aws_str);
    json!({
        "AccountLink": {
            "AccountLinkId": link.account_link_id,
            "AccountLinkStatus": status,
            "SourceAccountId": link.source_account_id,
            "TargetAccountId": link.target_account_id,
        }
    })
}

/// A request field as the audit trail keeps it: at most 256 characters
/// (longer values are cut and marked with `…`) and no NUL, which
/// PostgreSQL `jsonb` cannot hold. Other control characters are kept
/// (JSON-escaped) as evidence of what was sent.
pub(crate) fn audit_str(raw: &str) -> Value {
    let mut out: String = raw
        .chars()
        .take(AUDIT_FIELD_MAX_CHARS)
        .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
        .collect();
    if raw.chars().nth(AUDIT_FIELD_MAX_CHARS).is_some() {
        out.push('…');
    }
    Value::String(out)
}

/// Redacted `request_parameters` of a list request: the filter by name.
pub(crate) fn list_params(req: &pb::ListAccountLinksRequest) -> Value {
    let filter: Vec<Value> = req
        .link_status_filter
        .iter()
        .map(|raw| match pb::AccountLinkStatus::try_from(*raw) {
            Ok(s) => Value::String(s.as_str_name().to_owned()),
            Err(_) => Value::from(*raw),
        })
        .collect();
    json!({
        "account_id": audit_str(&req.account_id),
        "link_status_filter": filter,
        "page_size": req.page_size,
        "page_token": audit_str(&req.page_token),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(r: Result<impl std::fmt::Debug, Vec<FieldViolation>>) -> Vec<String> {
        r.expect_err("expected violations")
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn create_reports_every_bad_field() {
        let req = pb::CreateAccountLinkInvitationRequest {
            account_id: "12".into(),
            target_account_id: String::new(),
            client_token: "x".repeat(65),
        };
        assert_eq!(
            fields(create(&req)),
            ["account_id", "client_token", "target_account_id"]
        );
    }

    #[test]
    fn list_coerces_page_size_and_rejects_unspecified_filter() {
        let req = pb::ListAccountLinksRequest {
            page_size: 1000,
            ..Default::default()
        };
        assert_eq!(list(&req).unwrap().1.max_results, 25);
        let req = pb::ListAccountLinksRequest {
            page_size: 0,
            ..Default::default()
        };
        assert_eq!(list(&req).unwrap().1.max_results, 25);
        let req = pb::ListAccountLinksRequest {
            link_status_filter: vec![0, 99],
            page_size: -1,
            ..Default::default()
        };
        assert_eq!(
            fields(list(&req)),
            [
                "link_status_filter[0]",
                "link_status_filter[1]",
                "page_size"
            ]
        );
    }

    #[test]
    fn get_needs_one_selector() {
        assert_eq!(
            fields(get(&pb::GetAccountLinkRequest::default())),
            ["link_id"]
        );
    }

    #[test]
    fn audit_str_truncates_and_strips_nul() {
        assert_eq!(audit_str("a\0b"), Value::String("a\u{FFFD}b".into()));
        let long = audit_str(&"x".repeat(10_000));
        assert_eq!(long.as_str().unwrap().chars().count(), 257);
    }
}
