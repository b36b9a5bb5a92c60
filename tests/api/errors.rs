//! Every AWS exception of every operation, mapped to its gRPC code and
//! details (DESIGN §7): first through the emulator's real lifecycle rules,
//! then the full matrix through injected AWS errors.

use account_link_service::emulator::{Fault, FaultKind};
use tonic::{Code, Status};

use crate::helpers::{OTHER, SOURCE, TARGET, TestApp, details, reason, spawn_app};

const UNKNOWN_LINK: &str = "link-0000000000000000";

/// Asserts the ErrorInfo metadata names the AWS error and request.
fn assert_aws_metadata(status: &Status, aws_code: &str) {
    let d = status.check_error_details_ok();
    let info = d.error_info().expect("ErrorInfo");
    assert_eq!(
        info.metadata.get("aws_error_code").map(String::as_str),
        Some(aws_code),
        "{status:?}"
    );
    assert!(
        info.metadata
            .get("aws_request_id")
            .is_some_and(|id| !id.is_empty()),
        "{status:?}"
    );
}

trait DetailsOk {
    fn check_error_details_ok(&self) -> tonic_types::ErrorDetails;
}

impl DetailsOk for Status {
    fn check_error_details_ok(&self) -> tonic_types::ErrorDetails {
        use tonic_types::StatusExt;
        self.check_error_details().expect("details decode")
    }
}

#[tokio::test]
async fn lifecycle_rules_map_to_grpc_codes() {
    let app = spawn_app().await;

    // Create: target == source -> ValidationException -> INVALID_ARGUMENT + BadRequest.
    let err = app.create(SOURCE, SOURCE, "").await.unwrap_err();
    let d = details(&err, Code::InvalidArgument);
    assert_eq!(reason(&err), "AWS_VALIDATION");
    assert_eq!(
        d.bad_request().unwrap().field_violations[0].field,
        "target_account_id"
    );
    assert_aws_metadata(&err, "ValidationException");

    // Create: target already invited -> ConflictException -> ALREADY_EXISTS.
    let id = app
        .create(SOURCE, TARGET, "")
        .await
        .unwrap()
        .account_link
        .unwrap()
        .account_link_id;
    let err = app.create(OTHER, TARGET, "").await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert_eq!(reason(&err), "AWS_CONFLICT");
    assert_aws_metadata(&err, "ConflictException");

    // Accept/Reject by the source -> AccessDeniedException -> PERMISSION_DENIED.
    for status in [
        app.accept(SOURCE, &id, "").await.unwrap_err(),
        app.reject(SOURCE, &id, "").await.unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert_eq!(reason(&status), "AWS_ACCESS_DENIED");
        assert_aws_metadata(&status, "AccessDeniedException");
    }
    // Delete by the target -> PERMISSION_DENIED.
    let err = app.delete(TARGET, &id, "").await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_aws_metadata(&err, "AccessDeniedException");

    // Unknown link -> ResourceNotFoundException -> NOT_FOUND + ResourceInfo.
    for err in [
        app.accept(TARGET, UNKNOWN_LINK, "").await.unwrap_err(),
        app.reject(TARGET, UNKNOWN_LINK, "").await.unwrap_err(),
        app.delete(SOURCE, UNKNOWN_LINK, "").await.unwrap_err(),
        app.get(SOURCE, UNKNOWN_LINK).await.unwrap_err(),
    ] {
        let d = details(&err, Code::NotFound);
        let info = d.resource_info().expect("ResourceInfo");
        assert_eq!(info.resource_type, "workspaces.amazonaws.com/AccountLink");
        assert_eq!(info.resource_name, UNKNOWN_LINK);
        assert_eq!(reason(&err), "RESOURCE_NOT_FOUND");
        assert_aws_metadata(&err, "ResourceNotFoundException");
    }

    // Accept twice -> ConflictException -> FAILED_PRECONDITION + PreconditionFailure.
    app.accept(TARGET, &id, "").await.unwrap();
    let err = app.accept(TARGET, &id, "").await.unwrap_err();
    let d = details(&err, Code::FailedPrecondition);
    assert_eq!(d.precondition_failure().unwrap().violations[0].subject, id);
    assert_aws_metadata(&err, "ConflictException");
    // Reject after accept, delete after accept (no unlinking) -> FAILED_PRECONDITION.
    assert_eq!(
        app.reject(TARGET, &id, "").await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    let err = app.delete(SOURCE, &id, "").await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_aws_metadata(&err, "ConflictException");

    // List with a page token AWS does not know -> ValidationException.
    let err = app.list(SOURCE, &[], 0, "bogus-token").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(reason(&err), "AWS_VALIDATION");
}

/// The operations and the AWS exceptions each may raise (AWS API reference).
const MATRIX: &[(&str, &[&str])] = &[
    (
        "CreateAccountLinkInvitation",
        &[
            "ValidationException",
            "AccessDeniedException",
            "ConflictException",
            "InternalServerException",
            "ThrottlingException",
        ],
    ),
    (
        "AcceptAccountLinkInvitation",
        &[
            "ValidationException",
            "AccessDeniedException",
            "ConflictException",
            "ResourceNotFoundException",
            "InternalServerException",
            "ThrottlingException",
        ],
    ),
    (
        "RejectAccountLinkInvitation",
        &[
            "ValidationException",
            "AccessDeniedException",
            "ConflictException",
            "ResourceNotFoundException",
            "InternalServerException",
            "ThrottlingException",
        ],
    ),
    (
        "DeleteAccountLinkInvitation",
        &[
            "ValidationException",
            "AccessDeniedException",
            "ConflictException",
            "ResourceNotFoundException",
            "InternalServerException",
            "ThrottlingException",
        ],
    ),
    (
        "GetAccountLink",
        &[
            "ValidationException",
            "AccessDeniedException",
            "ResourceNotFoundException",
            "InternalServerException",
            "ThrottlingException",
        ],
    ),
    (
        "ListAccountLinks",
        &[
            "ValidationException",
            "AccessDeniedException",
            "InternalServerException",
            "ThrottlingException",
        ],
    ),
];

async fn call(app: &TestApp, operation: &str, token: &str) -> Status {
    let link = "link-1234567890abcdef";
    let result = match operation {
        "CreateAccountLinkInvitation" => app.create(SOURCE, TARGET, token).await.map(drop),
        "AcceptAccountLinkInvitation" => app.accept(TARGET, link, token).await.map(drop),
        "RejectAccountLinkInvitation" => app.reject(TARGET, link, token).await.map(drop),
        "DeleteAccountLinkInvitation" => app.delete(SOURCE, link, token).await.map(drop),
        "GetAccountLink" => app.get(SOURCE, link).await.map(drop),
        "ListAccountLinks" => app.list(SOURCE, &[], 0, "").await.map(drop),
        other => panic!("unknown operation {other}"),
    };
    result.expect_err("the injected AWS error surfaces")
}

fn expected(operation: &str, aws_code: &str) -> (Code, &'static str) {
    match aws_code {
        "ValidationException" => (Code::InvalidArgument, "AWS_VALIDATION"),
        "AccessDeniedException" => (Code::PermissionDenied, "AWS_ACCESS_DENIED"),
        "ResourceNotFoundException" => (Code::NotFound, "RESOURCE_NOT_FOUND"),
        "ConflictException" if operation == "CreateAccountLinkInvitation" => {
            (Code::AlreadyExists, "AWS_CONFLICT")
        }
        "ConflictException" => (Code::FailedPrecondition, "AWS_CONFLICT"),
        "ThrottlingException" => (Code::ResourceExhausted, "UPSTREAM_THROTTLED"),
        "InternalServerException" => (Code::Unavailable, "UPSTREAM_UNAVAILABLE"),
        other => panic!("unmapped {other}"),
    }
}

#[tokio::test]
async fn every_aws_exception_of_every_operation_maps_to_its_code_and_details() {
    let app = spawn_app().await;
    let mut n = 0;
    for (operation, exceptions) in MATRIX {
        for aws_code in *exceptions {
            n += 1;
            app.emu().inject_fault(
                Fault::new(
                    FaultKind::AwsError {
                        code: (*aws_code).to_owned(),
                        message: format!("injected {aws_code}"),
                    },
                    1,
                )
                .only_for(*operation),
            );
            let status = call(&app, operation, &format!("matrix-{n}")).await;
            let (code, why) = expected(operation, aws_code);
            let d = details(&status, code);
            assert_eq!(reason(&status), why, "{operation} {aws_code}");
            assert_aws_metadata(&status, aws_code);
            match code {
                Code::InvalidArgument => {
                    assert!(d.bad_request().is_some(), "{operation} {aws_code}")
                }
                Code::NotFound => assert!(d.resource_info().is_some()),
                Code::FailedPrecondition => assert!(d.precondition_failure().is_some()),
                Code::ResourceExhausted | Code::Unavailable => {
                    assert!(
                        d.retry_info().and_then(|r| r.retry_delay).is_some(),
                        "{operation} {aws_code}"
                    );
                }
                _ => {}
            }
            if aws_code != &"InternalServerException" && aws_code != &"ThrottlingException" {
                assert_eq!(status.message(), format!("injected {aws_code}"));
            }
        }
    }
    // Each case reached the emulator exactly once (one SDK attempt configured).
    assert_eq!(app.calls().len(), n);
    assert!(app.calls().iter().all(|c| c.error_code.is_some()));
}

#[tokio::test]
async fn transport_failures_are_unavailable_with_an_unknown_outcome() {
    let app = spawn_app().await;
    app.fault(FaultKind::DropConnection, 1);
    let err = app.create(SOURCE, TARGET, "drop-1").await.unwrap_err();
    let d = details(&err, Code::Unavailable);
    assert_eq!(reason(&err), "OUTCOME_UNKNOWN");
    assert!(d.retry_info().is_some());
    app.fault(FaultKind::DropConnection, 1);
    let err = app.get(SOURCE, UNKNOWN_LINK).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}

#[tokio::test]
async fn sdk_retries_are_counted_in_the_audit_trail() {
    let app = crate::helpers::spawn_app_with(|a| a.aws_max_attempts = 3).await;
    app.fault(FaultKind::InternalServerError, 2);
    let link = app
        .create(SOURCE, TARGET, "retried")
        .await
        .expect("third attempt succeeds");
    assert!(link.account_link.is_some());
    assert_eq!(app.calls().len(), 3);
    let events = app.audit_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].upstream_attempts, 3);
    assert_eq!(events[0].grpc_code, "OK");
}
