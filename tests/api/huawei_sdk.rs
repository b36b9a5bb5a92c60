//! The Huawei RAM emulator against Huawei Cloud's official Python SDK:
//! `tests/huawei/check_emulator.py` drives search, accept and reject through an unmodified
//! `huaweicloudsdkram` `RamClient` pointed at the emulator with `with_endpoints`, proving the
//! emulator verifies the SDK's own `SDK-HMAC-SHA256` signatures (and refuses a wrong SK
//! with `APIGW.0301`) and speaks the wire shapes the SDK reads.
//!
//! The SDK is installed once into `<target dir>/huawei-venv` from
//! `tests/huawei/requirements.txt`, as the boto3 test does (see `ensure_venv_at` there).
//! Needs `python3` with the `venv` module and access to PyPI the first time.

use account_link_service::emulator::Emulator;

use crate::boto3::{assert_saw_operations, ensure_venv_at, manifest_dir};

const SENDER: &str = "0123456789abcdef0123456789abcdef";
const RECEIVER: &str = "fedcba9876543210fedcba9876543210";
const ACCESS_KEY_ID: &str = "HPUAEXAMPLEACCESSKEY";
const SECRET_ACCESS_KEY: &str = "example-secret-access-key-for-the-python-sdk";

#[tokio::test]
async fn huawei_python_sdk_searches_accepts_and_rejects_against_the_emulator() {
    let python = tokio::task::spawn_blocking(|| {
        ensure_venv_at("huawei-venv", "tests/huawei/requirements.txt")
    })
    .await
    .expect("venv setup task");
    let running = Emulator::new().spawn().await.expect("emulator starts");
    let emulator = running.emulator();
    emulator.huawei_register_credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY, RECEIVER);
    let script = manifest_dir().join("tests/huawei/check_emulator.py");

    // Async process so the emulator keeps serving on this runtime while the script runs.
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .args(["--endpoint", &running.endpoint_url()])
        .args(["--ak", ACCESS_KEY_ID, "--sk", SECRET_ACCESS_KEY])
        .args(["--domain-id", RECEIVER, "--sender", SENDER])
        // The SDK reads credentials and proxies from the environment; keep it to the flags.
        .env_remove("HUAWEICLOUD_SDK_AK")
        .env_remove("HUAWEICLOUD_SDK_SK")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .output()
        .await
        .expect("run check_emulator.py");
    assert!(
        output.status.success(),
        "check_emulator.py failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );

    let calls = emulator.calls();
    assert_saw_operations(
        &calls,
        &[
            "SearchResourceShareInvitation",
            "AcceptResourceShareInvitation",
            "RejectResourceShareInvitation",
        ],
    );
    let refused: Vec<_> = calls
        .iter()
        .filter(|c| c.error_code.as_deref() == Some("APIGW.0301"))
        .collect();
    assert_eq!(refused.len(), 2, "the wrong-SK search and accept");
    assert!(refused.iter().all(|c| c.account_id.is_none()));
    assert!(
        calls
            .iter()
            .filter(|c| c.error_code.is_none())
            .all(|c| c.account_id.as_deref() == Some(RECEIVER)),
        "every accepted call was signed as the receiver"
    );
    let statuses: Vec<_> = emulator
        .huawei_invitations()
        .into_iter()
        .map(|i| i.status)
        .collect();
    assert_eq!(statuses, ["accepted", "rejected", "pending"]);
}
