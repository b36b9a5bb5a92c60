//! Property tests over everything hostile bytes reach before a handler
//! acts: request decoding (the malformed-request check and prost), field
//! validation, audit redaction and the request fingerprint. Run with the
//! test command (256 cases per property); `PROPTEST_CASES=100000` for a
//! long run.

use proptest::prelude::*;
use prost::Message;

use super::convert;
use super::malformed::{Malformed, frame};
use crate::domain::{AccountId, Mutation};
use crate::proto::pb;

const FIELDS: [&str; 8] = [
    "account_id",
    "target_account_id",
    "client_token",
    "link_id",
    "linked_account_id",
    "page_size",
    "page_token",
    "link_status_filter",
];

/// Strings that look like the real thing, plus anything at all.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{12}",
        "link-[0-9a-f]{8,24}",
        "[ -~]{0,70}",
        any::<String>(),
        "link-.{0,40}",
        "\\PC{0,3000}",
    ]
}

fn known_field(name: &str) -> bool {
    let base = name.split('[').next().unwrap_or(name);
    FIELDS.contains(&base)
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder_or_validation(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let framed = frame(&bytes);
        for method in ["CreateAccountLinkInvitation", "AcceptAccountLinkInvitation", "GetAccountLink", "ListAccountLinks", "Unknown"] {
            match super::malformed::check(method, framed.clone(), 512) {
                Ok(_) | Err(Malformed::TooLarge(_) | Malformed::Undecodable(_)) => {}
                Err(Malformed::Compressed { .. }) => unreachable!("frame() sets no compressed flag"),
            }
        }
        let _ = super::malformed::check("GetAccountLink", bytes::Bytes::from(bytes.clone()), 512);
        if let Ok(req) = pb::CreateAccountLinkInvitationRequest::decode(bytes.as_slice()) {
            let _ = convert::create(&req);
        }
        if let Ok(req) = pb::ListAccountLinksRequest::decode(bytes.as_slice()) {
            let _ = convert::list(&req);
            let _ = convert::list_params(&req);
        }
        if let Ok(req) = pb::GetAccountLinkRequest::decode(bytes.as_slice()) {
            let _ = convert::get(&req);
        }
    }

    #[test]
    fn validation_accepts_only_pattern_matching_values(account in field(), target in field(), token in field()) {
        let req = pb::CreateAccountLinkInvitationRequest {
            account_id: account.clone(),
            target_account_id: target.clone(),
            client_token: token.clone(),
        };
        match convert::create(&req) {
            Ok((acting, (Mutation::Create { target_account_id }, client_token))) => {
                prop_assert!(account.is_empty() || acting.is_some());
                prop_assert_eq!(target_account_id.as_str(), target.as_str());
                prop_assert!(target.len() == 12 && target.bytes().all(|b| b.is_ascii_digit()));
                if let Some(t) = client_token {
                    prop_assert!(t.as_str().len() <= 64 && t.as_str().bytes().all(|b| (0x20..=0x7e).contains(&b)));
                }
            }
            Ok(other) => prop_assert!(false, "create parsed as {:?}", other),
            Err(violations) => {
                prop_assert!(!violations.is_empty());
                prop_assert!(violations.iter().all(|v| known_field(&v.field)), "{:?}", violations);
            }
        }
    }

    #[test]
    fn link_ids_and_list_inputs_validate_without_panicking(link in field(), account in field(), page_token in field(), page_size in any::<i32>(), filter in proptest::collection::vec(any::<i32>(), 0..8)) {
        let parsed = convert::on_link(&account, &link, "", |link_id| Mutation::Accept { link_id });
        if let Ok((_, (Mutation::Accept { link_id }, _))) = &parsed {
            let suffix = link_id.as_str().strip_prefix("link-").unwrap_or_default();
            prop_assert!((8..=24).contains(&suffix.len()) && suffix.bytes().all(|b| b.is_ascii_graphic()));
        }
        let req = pb::ListAccountLinksRequest { account_id: account, link_status_filter: filter, page_size, page_token };
        if let Ok((_, input)) = convert::list(&req) {
            prop_assert!((1..=25).contains(&input.max_results));
        }
    }

    #[test]
    fn audit_strings_are_bounded_and_nul_free(s in any::<String>()) {
        let v = convert::audit_str(&s);
        let text = v.as_str().unwrap_or_default();
        prop_assert!(!text.contains('\0'));
        prop_assert!(text.chars().count() <= 257);
    }

    #[test]
    fn fingerprints_are_deterministic_and_separate_requests(a in "[0-9]{12}", b in "[0-9]{12}", t1 in "[0-9]{12}", t2 in "[0-9]{12}") {
        let acting_a = AccountId::parse(&a).unwrap();
        let acting_b = AccountId::parse(&b).unwrap();
        let m1 = Mutation::Create { target_account_id: AccountId::parse(&t1).unwrap() };
        let m2 = Mutation::Create { target_account_id: AccountId::parse(&t2).unwrap() };
        prop_assert_eq!(m1.fingerprint(&acting_a), m1.clone().fingerprint(&acting_a));
        prop_assert_eq!(m1.fingerprint(&acting_a) == m2.fingerprint(&acting_b), a == b && t1 == t2);
    }
}
