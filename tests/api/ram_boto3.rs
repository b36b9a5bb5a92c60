//! The AWS RAM emulator against boto3: `tests/boto3/check_ram.py` drives the
//! resource-share invitation flow (create, associate, get, accept, reject, re-associate,
//! expiry, and the errors) through an unmodified boto3 `ram` client pointed at the emulator
//! with `endpoint_url`, proving the emulator speaks restJson1 the way AWS SDKs other than the
//! Rust one expect. The venv is the one of `boto3.rs` (same requirements).

use std::collections::BTreeSet;

use account_link_service::emulator::RamInvitationStatus;

use crate::boto3::{assert_saw_operations, run_boto3_script};

#[tokio::test]
async fn boto3_drives_the_ram_invitation_flow_against_the_emulator() {
    let running = run_boto3_script("check_ram.py").await;
    let calls = running.emulator().calls();
    assert_saw_operations(
        &calls,
        &[
            "CreateResourceShare",
            "AssociateResourceShare",
            "GetResourceShareInvitations",
            "AcceptResourceShareInvitation",
            "RejectResourceShareInvitation",
            "ListPendingInvitationResources",
        ],
    );
    assert!(
        calls.iter().all(|c| c.account_id.is_some()),
        "every boto3 call must carry a 12-digit access key id"
    );
    let codes: BTreeSet<&str> = calls
        .iter()
        .filter_map(|c| c.error_code.as_deref())
        .collect();
    for code in [
        "ResourceShareInvitationArnNotFoundException",
        "MalformedArnException",
        "ResourceShareInvitationAlreadyAcceptedException",
        "OperationNotPermittedException",
        "ResourceShareInvitationExpiredException",
        "InvalidMaxResultsException",
    ] {
        assert!(
            codes.contains(code),
            "the script never met {code}; saw {codes:?}"
        );
    }
    // The state the script left: one accepted, one rejected beside its re-sent (now
    // expired) successor, and the paging shares' invitations expired too.
    let statuses: Vec<RamInvitationStatus> = running
        .emulator()
        .ram_invitations()
        .into_iter()
        .map(|i| i.status)
        .collect();
    let count = |s| statuses.iter().filter(|&&x| x == s).count();
    assert_eq!(count(RamInvitationStatus::Accepted), 1, "{statuses:?}");
    assert_eq!(count(RamInvitationStatus::Rejected), 1, "{statuses:?}");
    assert_eq!(count(RamInvitationStatus::Pending), 0, "{statuses:?}");
    assert_eq!(count(RamInvitationStatus::Expired), 5, "{statuses:?}");
}
