//! A local Amazon WorkSpaces account-link emulator (DESIGN.md §9).
//!
//! An HTTP server speaking the AWS JSON 1.1 protocol for the six account-link operations, so
//! `aws-sdk-workspaces` and boto3 (with an endpoint URL override) talk to it unchanged, and
//! the AWS STS `AssumeRole` action, so `aws_config::sts::AssumeRoleProvider` can act as other
//! accounts through assumed roles against the same endpoint (DESIGN.md §8). It backs
//! `serve --dev`, the end-to-end tests, and `account-link-service emulator --listen`. It keeps
//! everything in memory and never pretends to be AWS in production.
//!
//! # Protocol
//! `POST /` serves both protocols, told apart by the request's shape: a request with
//! `X-Amz-Target` is a WorkSpaces JSON 1.1 call; one without it whose body is a form with an
//! `Action` field is an STS query call; anything else is a JSON 1.1 call with no target.
//! Huawei Cloud RAM's invitation operations have paths of their own
//! (`/v1/resource-share-invitations/...`, AK/SK signatures verified): see `huawei.rs`.
//!
//! ## WorkSpaces (AWS JSON 1.1)
//! `POST /` with `X-Amz-Target: WorkspacesService.<Operation>` and a JSON body. Success is
//! `200` with the operation's output; failure is `400` (`500` for `InternalServerException`,
//! `403` for authentication failures) with `x-amzn-ErrorType: <Code>` and
//! `{"__type": "<Code>", "message": "..."}`. Every response carries `x-amzn-RequestId`.
//! An unknown target is `UnknownOperationException`; a body that is not a JSON object, or a
//! member of the wrong JSON type, is `SerializationException`. `Content-Type` is not checked.
//!
//! ## STS `AssumeRole` (AWS query)
//! `POST /` with a `application/x-www-form-urlencoded` body
//! `Action=AssumeRole&Version=2011-06-15&RoleArn=…&RoleSessionName=…[&ExternalId=…]
//! [&DurationSeconds=…]`. Success is `200` with a `text/xml`
//! `AssumeRoleResponse` (namespace `https://sts.amazonaws.com/doc/2011-06-15/`) whose
//! credentials have the role's 12-digit account id as `AccessKeyId`, a random secret and
//! session token, and `Expiration` = now + `DurationSeconds` (900..43200, default 3600); the
//! `AssumedRoleUser` is `arn:aws:sts::<account>:assumed-role/<role name>/<session>`. Failure is
//! an `ErrorResponse/Error/{Type, Code, Message}` document: `ValidationError` (400) for a
//! parameter outside its constraint or a role ARN not of the form
//! `arn:aws:iam::<12 digits>:role/[<path>/]<name>`; `AccessDenied` (403) when the role
//! requires an external id ([`Emulator::require_external_id`]) and the call sends another or
//! none; `InvalidAction` (400) for another action or version; `MissingAuthenticationToken`
//! (403) for an unsigned call. Every well-formed role ARN names an assumable role, and any
//! signed caller may assume it. See `sts.rs` for the sources.
//!
//! ## AWS RAM (restJson1)
//! `POST /<operation in lowercase>` (e.g. `/acceptresourceshareinvitation`) for six AWS
//! Resource Access Manager operations: `CreateResourceShare`, `AssociateResourceShare`,
//! `GetResourceShareInvitations`, `AcceptResourceShareInvitation`,
//! `RejectResourceShareInvitation`, `ListPendingInvitationResources`; errors carry
//! `x-amzn-ErrorType` and `{"message": ...}`. Invitations expire 7 days after they are sent
//! on an emulator clock tests can advance. See `ram.rs`.
//!
//! # Caller identity
//! The caller's account is the access key id of the SigV4 `Authorization` header's
//! credential scope: a 12-digit access key id *is* the account id (the LocalStack
//! convention). Signatures are not verified. See `protocol.rs` for the exceptions. STS
//! accepts any access key id; the credentials it returns make WorkSpaces calls as the role's
//! account.
//!
//! # Test hooks
//! - A call log ([`CallRecord`]) of every request that reaches `POST /`, failures and
//!   injected faults included: [`Emulator::calls`], `GET /_emulator/calls`. `AssumeRole`
//!   calls are logged under the role's account with their form fields (external id redacted).
//! - Fault injection ([`Fault`]) for the next N calls, optionally of one operation
//!   (`AssumeRole` included): throttling, 5xx, any AWS exception, latency, dropped connection
//!   ([`FaultKind`]); [`Emulator::inject_fault`], `POST /_emulator/faults`.
//! - Roles that require an external id: [`Emulator::require_external_id`].
//! - `DELETE /_emulator/calls`, `DELETE /_emulator/faults`, and `GET /_emulator/links`
//!   (every link, in creation order).
//! - AWS RAM: [`Emulator::ram_invitations`] (`GET /_emulator/ram/invitations`) and
//!   [`Emulator::advance_ram_clock`] (`POST /_emulator/ram/clock`, `{"advance_seconds": N}`).
//! - The number of TCP connections accepted, for tests of client connection pooling:
//!   [`Emulator::connections_accepted`].
//!
//! # Layout
//! - `protocol`: `X-Amz-Target`, caller identity, the error envelope.
//! - `state`: links (indexed by id and by account), lifecycle rules, client-token
//!   idempotency, pagination.
//! - `sts`: `AssumeRole` over the query protocol: form decoding, validation, external ids,
//!   the XML documents.
//! - `ram`: AWS RAM over restJson1; `ram/state.rs` its shares, invitations and rules.
//! - `faults`: the fault queue.
//! - `huawei`: Huawei Cloud RAM's invitation operations, AK/SK signature checks, its hooks.
//! - `server`: the axum handlers.

mod faults;
mod huawei;
mod protocol;
mod ram;
mod server;
mod state;
mod sts;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::serve::ListenerExt;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use self::faults::{Fault, FaultError, FaultKind};
pub use self::huawei::{HUAWEI_DEV_SECRET_ACCESS_KEY, HuaweiInvitation};
pub use self::ram::{RamInvitation, RamInvitationStatus};
pub use self::state::{AccountLink, AccountLinkStatus};

/// The emulator: its links, call log, pending faults and role requirements, shared by every
/// clone.
///
/// Cloning is cheap and every clone sees the same state, so a test can keep one while the
/// server runs another.
#[derive(Clone, Debug, Default)]
pub struct Emulator {
    /// The call log, faults and roles: held only to append to or read the log, take a
    /// fault or read the roles, never while an operation runs.
    shared: Arc<Mutex<Shared>>,
    /// The links, under their own lock: `GetAccountLink` and `ListAccountLinks` share it,
    /// the four mutating operations hold it alone, each for the operation only (the
    /// response is serialized after it is released).
    links: Arc<RwLock<state::LinkStore>>,
    /// TCP connections accepted by [`Emulator::serve`] since the emulator was created.
    connections: Arc<AtomicU64>,
    /// AWS RAM: shares, associations, invitations, the emulator clock.
    ram: Arc<Mutex<ram::RamState>>,
    /// Huawei RAM: invitations and the AK/SK credentials it verifies.
    huawei: Arc<Mutex<huawei::HuaweiState>>,
}

#[derive(Debug, Default)]
struct Shared {
    calls: Vec<CallRecord>,
    /// Last call sequence number handed out; never reset, so `seq` stays unique.
    last_seq: u64,
    faults: faults::FaultQueue,
    roles: sts::Roles,
}

/// One request that reached `POST /`, as the call log records it.
///
/// The record is appended when the request arrives and `error_code` is filled in when the
/// emulator has finished handling it; a call delayed by a latency fault therefore shows
/// `error_code: None` until it completes. Handling completes even if the client disconnects.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CallRecord {
    /// Arrival order, starting at 1, unique for the emulator's lifetime (not reset by
    /// [`Emulator::clear_calls`]).
    pub seq: u64,
    /// The AWS operation name, or the raw `X-Amz-Target` value (empty when missing) when it
    /// names no known operation; for an STS query call, its `Action` (e.g. `AssumeRole`).
    pub operation: String,
    /// The caller's account, when the `Authorization` header names a 12-digit access key id;
    /// for an STS call, the account of its `RoleArn` when that is a well-formed role ARN.
    pub account_id: Option<String>,
    /// The request's `ClientToken` member, when it is a string (`None` for STS calls).
    pub client_token: Option<String>,
    /// The request body as JSON; a body that is not JSON is kept as a string. For an STS
    /// call, its form fields as a JSON object of strings (the first value of each field),
    /// with `ExternalId` and `TokenCode` replaced by `"<redacted>"`.
    pub request: serde_json::Value,
    /// The exception (STS: error code) the call ended with (`None` on success or while still
    /// in flight).
    pub error_code: Option<String>,
    /// The `x-amzn-RequestId` of the response.
    pub request_id: String,
    /// The injected fault applied to the call, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultKind>,
}

impl Emulator {
    /// An emulator with no links, no calls and no faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The axum router: `POST /` (JSON 1.1 and STS query) plus the `/_emulator/*` control
    /// endpoints.
    pub fn router(&self) -> axum::Router {
        server::router(self.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, then drains open connections.
    /// Every accepted connection is counted ([`Emulator::connections_accepted`]) and gets
    /// `TCP_NODELAY`.
    ///
    /// # Errors
    /// The I/O error that stopped the server.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if let Ok(addr) = listener.local_addr() {
            tracing::debug!(%addr, "workspaces emulator serving");
        }
        let connections = Arc::clone(&self.connections);
        let listener = listener.tap_io(move |stream| {
            connections.fetch_add(1, Ordering::Relaxed);
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot set tcp_nodelay on an emulator connection");
            }
        });
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Binds `127.0.0.1:0` and serves in a spawned task until the returned handle is dropped.
    ///
    /// # Errors
    /// The I/O error from binding the listener.
    pub async fn spawn(self) -> std::io::Result<RunningEmulator> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let server = self.clone();
        let task = tokio::spawn(async move {
            let shutdown = async {
                // Resolves when the handle sends or is dropped.
                let _ = shutdown_rx.await;
            };
            if let Err(error) = server.serve(listener, shutdown).await {
                tracing::error!(%error, "workspaces emulator stopped");
            }
        });
        Ok(RunningEmulator {
            addr,
            emulator: self,
            task,
            _shutdown: shutdown_tx,
        })
    }

    /// A snapshot of the call log, in arrival order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.lock().calls.clone()
    }

    /// Empties the call log (sequence numbers keep counting).
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Queues `fault`. A fault that could never fire (count 0, unknown operation) is logged
    /// and ignored; use [`Emulator::try_inject_fault`] to get the error instead.
    pub fn inject_fault(&self, fault: Fault) {
        if let Err(error) = self.try_inject_fault(fault) {
            tracing::warn!(%error, "ignoring emulator fault");
        }
    }

    /// Queues `fault` behind any already waiting.
    ///
    /// # Errors
    /// [`FaultError`] when the fault could never fire.
    pub fn try_inject_fault(&self, fault: Fault) -> Result<(), FaultError> {
        fault.validate()?;
        self.lock().faults.push(fault);
        Ok(())
    }

    /// The faults still waiting, oldest first, with their remaining counts.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.lock().faults.pending()
    }

    /// Drops every waiting fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Makes the role `role_arn` (`arn:aws:iam::<account>:role/<name>`) assumable only with
    /// `ExternalId` `external_id`, replacing any earlier requirement for it: an `AssumeRole`
    /// call for it with another external id or none is `AccessDenied` (403). Roles without a
    /// requirement accept any external id, as a trust policy without an `sts:ExternalId`
    /// condition does.
    pub fn require_external_id(&self, role_arn: impl Into<String>, external_id: impl Into<String>) {
        self.lock()
            .roles
            .require_external_id(role_arn.into(), external_id.into());
    }

    /// A snapshot of every link (deleted ones excluded), in creation order.
    pub fn links(&self) -> Vec<AccountLink> {
        self.read_links().links()
    }

    /// How many TCP connections [`Emulator::serve`] has accepted since the emulator was
    /// created, over every clone and every listener (a test's measure of connection reuse:
    /// a client that pools its connections opens few).
    pub fn connections_accepted(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// The shared state; a panic while it was held does not make it unusable.
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The links, for a read-only operation; poisoning is ignored as in [`Emulator::lock`].
    fn read_links(&self) -> RwLockReadGuard<'_, state::LinkStore> {
        self.links.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The links, for a mutating operation; poisoning is ignored as in [`Emulator::lock`].
    fn write_links(&self) -> RwLockWriteGuard<'_, state::LinkStore> {
        self.links.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An emulator serving on a local port in a background task.
///
/// Dropping it stops accepting connections, asks open ones to close, and aborts the task.
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    emulator: Emulator,
    task: JoinHandle<()>,
    /// Dropped with the handle, which starts the graceful shutdown of open connections.
    _shutdown: oneshot::Sender<()>,
}

impl RunningEmulator {
    /// The bound address (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, for the SDK's or boto3's endpoint URL override.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The emulator being served, for its call log, faults and links.
    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
