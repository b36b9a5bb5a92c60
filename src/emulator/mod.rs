//! A local Amazon WorkSpaces account-link emulator (DESIGN.md §9).
//!
//! An HTTP server speaking the AWS JSON 1.1 protocol for the six account-link operations, so
//! `aws-sdk-workspaces` and boto3 (with an endpoint URL override) talk to it unchanged. It
//! backs `serve --dev`, the end-to-end tests, and `account-link-service emulator --listen`.
//! It keeps everything in memory and never pretends to be AWS in production.
//!
//! # Protocol
//! `POST /` with `X-Amz-Target: WorkspacesService.<Operation>` and a JSON body. Success is
//! `200` with the operation's output; failure is `400` (`500` for `InternalServerException`,
//! `403` for authentication failures) with `x-amzn-ErrorType: <Code>` and
//! `{"__type": "<Code>", "message": "..."}`. Every response carries `x-amzn-RequestId`.
//! An unknown target is `UnknownOperationException`; a body that is not a JSON object, or a
//! member of the wrong JSON type, is `SerializationException`. `Content-Type` is not checked.
//!
//! # Caller identity
//! The caller's account is the access key id of the SigV4 `Authorization` header's
//! credential scope: a 12-digit access key id *is* the account id (the LocalStack
//! convention). Signatures are not verified. See `protocol.rs` for the exceptions.
//!
//! # Test hooks
//! - A call log ([`CallRecord`]) of every request that reaches `POST /`, failures and
//!   injected faults included: [`Emulator::calls`], `GET /_emulator/calls`.
//! - Fault injection ([`Fault`]) for the next N calls, optionally of one operation:
//!   throttling, 5xx, any AWS exception, latency, dropped connection ([`FaultKind`]);
//!   [`Emulator::inject_fault`], `POST /_emulator/faults`.
//! - `DELETE /_emulator/calls`, `DELETE /_emulator/faults`, and `GET /_emulator/links`
//!   (every link, in creation order).
//!
//! # Layout
//! - `protocol`: `X-Amz-Target`, caller identity, the error envelope.
//! - `state`: links, lifecycle rules, client-token idempotency, pagination.
//! - `faults`: the fault queue.
//! - `server`: the axum handlers.

mod faults;
mod protocol;
mod server;
mod state;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use self::faults::{Fault, FaultError, FaultKind};
pub use self::state::{AccountLink, AccountLinkStatus};

/// The emulator: its links, call log and pending faults, shared by every clone.
///
/// Cloning is cheap and every clone sees the same state, so a test can keep one while the
/// server runs another.
#[derive(Clone, Debug, Default)]
pub struct Emulator {
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug, Default)]
struct Shared {
    links: state::LinkStore,
    calls: Vec<CallRecord>,
    /// Last call sequence number handed out; never reset, so `seq` stays unique.
    last_seq: u64,
    faults: faults::FaultQueue,
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
    /// names no known operation.
    pub operation: String,
    /// The caller's account, when the `Authorization` header names a 12-digit access key id.
    pub account_id: Option<String>,
    /// The request's `ClientToken` member, when it is a string.
    pub client_token: Option<String>,
    /// The request body as JSON; a body that is not JSON is kept as a string.
    pub request: serde_json::Value,
    /// The exception the call ended with (`None` on success or while still in flight).
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

    /// The axum router: `POST /` (JSON 1.1) plus the `/_emulator/*` control endpoints.
    pub fn router(&self) -> axum::Router {
        server::router(self.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, then drains open connections.
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

    /// A snapshot of every link (deleted ones excluded), in creation order.
    pub fn links(&self) -> Vec<AccountLink> {
        self.lock().links.links()
    }

    /// The shared state; a panic while it was held does not make it unusable.
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
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
