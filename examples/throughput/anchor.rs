//! What the two anchor servers of the throughput benchmark share
//! (`examples/bare_tonic_server.rs`, `examples/direct_sdk_server.rs`):
//! the tonic server setup and the shutdown signal. Included with
//! `#[path = "throughput/anchor.rs"] mod anchor;`.

use std::net::SocketAddr;

use account_link_service::proto::pb::account_link_service_server::{
    AccountLinkService, AccountLinkServiceServer,
};
use account_link_service::startup::{MAX_CONCURRENT_STREAMS, MAX_REQUEST_BYTES};
use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

/// Serves `service` on `listen` until SIGTERM or SIGINT, with the HTTP/2
/// settings the real server uses (TCP_NODELAY, at most
/// [`MAX_CONCURRENT_STREAMS`] streams per connection, requests up to
/// [`MAX_REQUEST_BYTES`]), and nothing else: no reflection, health, auth or
/// limits.
pub(crate) async fn serve<S: AccountLinkService>(
    listen: SocketAddr,
    service: S,
    what: &str,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch sigterm")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch sigint")?;
    eprintln!("{what}: listening on {listen}");
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .max_concurrent_streams(Some(MAX_CONCURRENT_STREAMS))
        .add_service(
            AccountLinkServiceServer::new(service).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .serve_with_shutdown(listen, async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
        .await
        .with_context(|| format!("{what}: server failed"))
}
