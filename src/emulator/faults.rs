//! Fault injection: failures the emulator applies to the next calls it receives, so tests
//! can exercise retries, timeouts and outcome-unknown handling against the real SDK.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::protocol::Operation;
use super::sts::ASSUME_ROLE;

/// A fault to apply to the next `count` calls, optionally only to calls of one operation.
///
/// JSON form (`POST /_emulator/faults`):
/// `{"kind": {"type": "throttling"}, "count": 2, "operation": "GetAccountLink"}`;
/// `operation` may be omitted (every operation, including unknown targets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// What happens to a matching call.
    pub kind: FaultKind,
    /// How many matching calls it applies to; at least 1.
    pub count: u32,
    /// The AWS operation name (e.g. `CreateAccountLinkInvitation`, or `AssumeRole` for STS)
    /// the fault is limited to; `None` matches every call to `POST /`, STS calls included.
    #[serde(default)]
    pub operation: Option<String>,
}

impl Fault {
    /// A fault of `kind` for the next `count` calls of any operation.
    pub fn new(kind: FaultKind, count: u32) -> Self {
        Self {
            kind,
            count,
            operation: None,
        }
    }

    /// Limits the fault to calls of `operation` (its AWS name).
    #[must_use]
    pub fn only_for(mut self, operation: impl Into<String>) -> Self {
        self.operation = Some(operation.into());
        self
    }

    /// Checks the fault can ever fire.
    ///
    /// # Errors
    /// [`FaultError::ZeroCount`] when `count` is 0; [`FaultError::UnknownOperation`] when
    /// `operation` is none of the six account-link operations, `AssumeRole`, the six AWS
    /// RAM operations (e.g. `AcceptResourceShareInvitation`) and the three Huawei RAM
    /// invitation operations (`SearchResourceShareInvitation`, …);
    /// [`FaultError::InvalidErrorCode`] for an `AwsError` code that cannot be sent.
    pub fn validate(&self) -> Result<(), FaultError> {
        if self.count == 0 {
            return Err(FaultError::ZeroCount);
        }
        if let FaultKind::AwsError { code, .. } = &self.kind {
            let valid = !code.is_empty()
                && code
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
            if !valid {
                return Err(FaultError::InvalidErrorCode(code.clone()));
            }
        }
        match &self.operation {
            Some(name)
                if Operation::from_name(name).is_none()
                    && name != ASSUME_ROLE
                    && !super::ram::is_operation(name)
                    && !super::huawei::OPERATIONS.contains(&name.as_str()) =>
            {
                Err(FaultError::UnknownOperation(name.clone()))
            }
            _ => Ok(()),
        }
    }
}

/// What an injected fault does to a call (JSON: internally tagged by `type`, snake_case).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answers `ThrottlingException` (STS: `Throttling`; HTTP 400) without handling the call.
    Throttling,
    /// Answers `InternalServerException` (STS: `InternalFailure`; HTTP 500) without handling
    /// the call.
    InternalServerError,
    /// Waits `millis` milliseconds (on the tokio clock, so paused-clock tests auto-advance),
    /// then handles the call normally. The call completes even if the client gives up first.
    Latency {
        /// Delay before handling, in milliseconds.
        millis: u64,
    },
    /// Answers the exception named `code` (e.g. `ConflictException`) with `message`, without
    /// handling the call. The HTTP status is the one the emulator uses for that exception
    /// (500 for `InternalServerException`, 403 for the authentication failures), else 400;
    /// for an STS call, the status of that STS error code (403 for `AccessDenied` and the
    /// authentication failures, 500 for `InternalFailure`), else 400. An injected
    /// `ResourceNotFoundException` names the request's `LinkId` (or `LinkedAccountId`) as its
    /// `ResourceId`.
    AwsError {
        /// The exception name, e.g. `AccessDeniedException`; ASCII letters, digits, `.`, `_`.
        code: String,
        /// The exception's message.
        message: String,
    },
    /// Handles the call (its state change is applied and logged), then loses the response:
    /// the status line and headers never reach the client and the connection is closed, so
    /// the client sees a transport failure and cannot know the outcome.
    DropConnection,
}

/// A fault that could never fire.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// `count` was 0.
    #[error("fault count must be at least 1")]
    ZeroCount,
    /// `operation` named nothing the emulator serves.
    #[error(
        "unknown operation {0:?}: expected an account-link operation, AssumeRole, an AWS RAM or a Huawei RAM operation"
    )]
    UnknownOperation(String),
    /// An `AwsError` code was empty or not made of ASCII letters, digits, `.` and `_`.
    #[error("invalid aws error code {0:?}")]
    InvalidErrorCode(String),
}

/// Injected faults waiting to fire, oldest first.
#[derive(Debug, Default)]
pub(super) struct FaultQueue {
    faults: VecDeque<Fault>,
}

impl FaultQueue {
    /// Queues `fault` behind the ones already waiting.
    pub(super) fn push(&mut self, fault: Fault) {
        self.faults.push_back(fault);
    }

    /// Consumes one use of the oldest fault matching `operation` (the call's operation name,
    /// or its raw target when unknown) and returns what to do.
    pub(super) fn take(&mut self, operation: &str) -> Option<FaultKind> {
        let index = self
            .faults
            .iter()
            .position(|f| f.operation.as_deref().is_none_or(|op| op == operation))?;
        let fault = self.faults.get_mut(index)?;
        let kind = fault.kind.clone();
        fault.count = fault.count.saturating_sub(1);
        if fault.count == 0 {
            self.faults.remove(index);
        }
        Some(kind)
    }

    /// The faults still waiting, oldest first, with their remaining counts.
    pub(super) fn pending(&self) -> Vec<Fault> {
        self.faults.iter().cloned().collect()
    }

    /// Drops every waiting fault.
    pub(super) fn clear(&mut self) {
        self.faults.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fire_in_order_for_matching_operations_only() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::new(FaultKind::Throttling, 1).only_for("GetAccountLink"));
        queue.push(Fault::new(FaultKind::DropConnection, 2));
        assert_eq!(
            queue.take("ListAccountLinks"),
            Some(FaultKind::DropConnection)
        );
        assert_eq!(queue.take("GetAccountLink"), Some(FaultKind::Throttling));
        assert_eq!(
            queue.take("GetAccountLink"),
            Some(FaultKind::DropConnection)
        );
        assert_eq!(queue.take("GetAccountLink"), None);
        assert!(queue.pending().is_empty());
    }

    #[test]
    fn json_form_is_tagged_by_type() {
        let fault: Fault = serde_json::from_str(
            r#"{"kind":{"type":"latency","millis":250},"count":1,"operation":"GetAccountLink"}"#,
        )
        .expect("valid fault json");
        assert_eq!(
            fault,
            Fault::new(FaultKind::Latency { millis: 250 }, 1).only_for("GetAccountLink")
        );
        let fault: Fault = serde_json::from_str(r#"{"kind":{"type":"drop_connection"},"count":3}"#)
            .expect("valid fault json");
        assert_eq!(fault.operation, None);
        let fault: Fault = serde_json::from_str(
            r#"{"kind":{"type":"aws_error","code":"ConflictException","message":"m"},"count":1}"#,
        )
        .expect("valid fault json");
        assert_eq!(
            fault.kind,
            FaultKind::AwsError {
                code: "ConflictException".to_owned(),
                message: "m".to_owned()
            }
        );
    }

    #[test]
    fn useless_faults_are_rejected() {
        let bad_code = FaultKind::AwsError {
            code: "Bad Code".to_owned(),
            message: String::new(),
        };
        assert!(matches!(
            Fault::new(bad_code, 1).validate(),
            Err(FaultError::InvalidErrorCode(_))
        ));
        assert_eq!(
            Fault::new(FaultKind::Throttling, 0).validate(),
            Err(FaultError::ZeroCount)
        );
        assert_eq!(
            Fault::new(FaultKind::Throttling, 1)
                .only_for("AssumeRole")
                .validate(),
            Ok(())
        );
        assert!(matches!(
            Fault::new(FaultKind::Throttling, 1)
                .only_for("DescribeWorkspaces")
                .validate(),
            Err(FaultError::UnknownOperation(_))
        ));
    }
}
