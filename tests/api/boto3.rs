//! The WorkSpaces emulator against boto3: `tests/boto3/check_emulator.py` drives all six
//! account-link operations through an unmodified boto3 client pointed at the emulator with
//! `endpoint_url`, proving the emulator speaks the JSON 1.1 protocol the way AWS SDKs other
//! than the Rust one expect.
//!
//! boto3 is installed once into a virtualenv at `<target dir>/boto3-venv` (the target dir is
//! `CARGO_TARGET_DIR`, else `target/` in the crate), from `tests/boto3/requirements.txt`.
//! The venv is rebuilt when the requirements change, and published atomically so concurrent
//! test runs never see a half-built one. Needs `python3` with the `venv` module and access to
//! PyPI the first time.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use account_link_service::emulator::{CallRecord, Emulator, RunningEmulator};

/// The crate root (where `tests/boto3/` lives).
pub(crate) fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `CARGO_TARGET_DIR` (relative paths taken from the crate root), else `<crate>/target`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => manifest_dir().join(dir),
        _ => manifest_dir().join("target"),
    }
}

/// The venv's interpreter.
fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// Runs `command` to completion, panicking with its output when it fails.
fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {what}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// Whether `venv` is complete and was built from `requirements` (its marker file matches).
fn venv_is_current(venv: &Path, requirements: &str) -> bool {
    venv_python(venv).exists()
        && fs::read_to_string(venv.join(MARKER)).is_ok_and(|built| built == requirements)
}

/// Marker file inside a finished venv: a copy of the requirements it was built from.
const MARKER: &str = ".requirements-installed";

/// Creates (or reuses) the boto3 venv and returns its interpreter.
fn ensure_venv() -> PathBuf {
    ensure_venv_at("boto3-venv", "tests/boto3/requirements.txt")
}

/// Creates (or reuses) the venv `<target dir>/<name>` with the packages of `requirements`
/// (a path relative to the crate root) and returns its interpreter.
///
/// Idempotent and safe under concurrent test processes without a lock: a venv is built in a
/// per-process staging directory and published with an atomic rename, and only a venv whose
/// marker matches the current requirements is used. A process that loses the race discards
/// its staging copy. (A venv invoked as `<venv>/bin/python` works after being moved; pip is
/// only run before the move.)
pub(crate) fn ensure_venv_at(name: &str, requirements: &str) -> PathBuf {
    let requirements_path = manifest_dir().join(requirements);
    let requirements = fs::read_to_string(&requirements_path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", requirements_path.display()));
    let target = target_dir();
    let venv = target.join(name);
    if venv_is_current(&venv, &requirements) {
        return venv_python(&venv);
    }

    fs::create_dir_all(&target)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", target.display()));
    let pid = std::process::id();
    let staging = target.join(format!("{name}.staging-{pid}"));
    // A leftover from an earlier run that had the same pid and was killed.
    let _ = fs::remove_dir_all(&staging);
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&staging),
        "python3 -m venv",
    );
    run(
        Command::new(venv_python(&staging))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements_path),
        &format!("pip install -r {}", requirements_path.display()),
    );
    let marker = staging.join(MARKER);
    fs::write(&marker, &requirements)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", marker.display()));

    // Publish: retire an outdated venv, then move the new one into place.
    if venv.exists() && !venv_is_current(&venv, &requirements) {
        let retired = target.join(format!("{name}.retired-{pid}"));
        if fs::rename(&venv, &retired).is_ok() {
            let _ = fs::remove_dir_all(&retired);
        }
    }
    if let Err(error) = fs::rename(&staging, &venv) {
        // Another process published first; use its venv if it is current.
        let _ = fs::remove_dir_all(&staging);
        assert!(
            venv_is_current(&venv, &requirements),
            "cannot publish {} as {}: {error}",
            staging.display(),
            venv.display()
        );
    }
    venv_python(&venv)
}

/// Runs the boto3 script `tests/boto3/<script>` against a fresh emulator with the boto3 venv
/// (no AWS config or profile of the machine), asserts that it exited 0, and returns the
/// emulator for the caller's checks of what the script did.
pub(crate) async fn run_boto3_script(script: &str) -> RunningEmulator {
    let python = tokio::task::spawn_blocking(ensure_venv)
        .await
        .expect("venv setup task");
    let running = Emulator::new().spawn().await.expect("emulator starts");
    let path = manifest_dir().join("tests/boto3").join(script);

    // Async process so the emulator keeps serving on this runtime while the script runs.
    let output = tokio::process::Command::new(&python)
        .arg(&path)
        .arg("--endpoint")
        .arg(running.endpoint_url())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .await
        .unwrap_or_else(|error| panic!("run {script}: {error}"));
    assert!(
        output.status.success(),
        "{script} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    running
}

/// Asserts that the emulator's call log holds each of `operations`.
pub(crate) fn assert_saw_operations(calls: &[CallRecord], operations: &[&str]) {
    let seen: BTreeSet<&str> = calls.iter().map(|c| c.operation.as_str()).collect();
    for operation in operations {
        assert!(
            seen.contains(operation),
            "emulator never saw {operation}; saw {seen:?}"
        );
    }
}

#[tokio::test]
async fn boto3_drives_every_account_link_operation_against_the_emulator() {
    let running = run_boto3_script("check_emulator.py").await;
    let calls = running.emulator().calls();
    assert_saw_operations(
        &calls,
        &[
            "CreateAccountLinkInvitation",
            "AcceptAccountLinkInvitation",
            "RejectAccountLinkInvitation",
            "DeleteAccountLinkInvitation",
            "GetAccountLink",
            "ListAccountLinks",
        ],
    );
    assert!(
        calls.iter().all(|c| c.account_id.is_some()),
        "every boto3 call must carry a 12-digit access key id"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.error_code.as_deref() == Some("ResourceNotFoundException")),
        "the script checks at least one ResourceNotFoundException"
    );
}
