//! The AWS RAM emulator against boto3: `tests/boto3/check_ram.py` drives the
//! resource-share invitation flow (create, associate, get, accept, reject, re-associate,
//! expiry, and the errors) through an unmodified boto3 `ram` client pointed at the emulator
//! with `endpoint_url`, proving the emulator speaks restJson1 the way AWS SDKs other than the
//! Rust one expect. The venv is the one of `boto3.rs` (same requirements).

use std::collections::BTreeSet;

use account_link_service::emulator::{Emulator, RamInvitationStatus};

use crate::boto3::{ensure_venv, manifest_dir};

#[tokio::test]
async fn boto3_drives_the_ram_invitation_flow_against_the_emulator() {
    let python = tokio::task::spawn_blocking(ensure_venv)
        .await
        .expect("venv setup task");
    let running = Emulator::new().spawn().await.expect("emulator starts");
    let script = manifest_dir().join("tests/boto3/check_ram.py");

    // Async process so the emulator keeps serving on this runtime while the script runs.
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .arg("--endpoint")
        .arg(running.endpoint_url())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .await
        .expect("run check_ram.py");
    assert!(
        output.status.success(),
        "check_ram.py failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );

    let calls = running.emulator().calls();
    let seen: BTreeSet<&str> = calls.iter().map(|c| c.operation.as_str()).collect();
    for operation in [
        "CreateResourceShare",
        "AssociateResourceShare",
        "GetResourceShareInvitations",
        "AcceptResourceShareInvitation",
        "RejectResourceShareInvitation",
        "ListPendingInvitationResources",
    ] {
        assert!(
            seen.contains(operation),
            "emulator never saw {operation}; saw {seen:?}"
        );
    }
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
