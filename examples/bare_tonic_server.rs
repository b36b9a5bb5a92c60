//! The bare anchor of the throughput benchmark (docs/benchmarks.md,
//! "Service throughput vs its anchors"): a tonic server for
//! `accountlink.v1.AccountLinkService` over our proto that answers from
//! memory, with no I/O at all. It prices tonic, HTTP/2 and protobuf on this
//! machine: no server over our proto can be faster.
//!
//! - `CreateAccountLinkInvitation` stores a new `PENDING_ACCEPTANCE_BY_TARGET_ACCOUNT`
//!   link (id `link-` and 16 hex digits) in a map and answers it, with the
//!   caller's client token or a fresh UUIDv4.
//! - `GetAccountLink` answers the link of `link_id` from the map, or
//!   NOT_FOUND.
//! - The other four RPCs are UNIMPLEMENTED.
//!
//! Nothing is validated, authorized, deduplicated or audited.
//!
//! ```sh
//! cargo run --release --example bare_tonic_server -- --listen 127.0.0.1:50061
//! ```

#[path = "throughput/anchor.rs"]
mod anchor;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::RwLock;

use account_link_service::proto::pb;
use account_link_service::proto::pb::account_link_service_server::AccountLinkService;
use clap::Parser;
use tonic::{Request, Response, Status};

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:50061")]
    listen: SocketAddr,
}

/// The links created so far, by id.
#[derive(Debug, Default)]
struct MemoryLinks {
    links: RwLock<HashMap<String, pb::AccountLink>>,
}

#[tonic::async_trait]
impl AccountLinkService for MemoryLinks {
    async fn create_account_link_invitation(
        &self,
        request: Request<pb::CreateAccountLinkInvitationRequest>,
    ) -> Result<Response<pb::CreateAccountLinkInvitationResponse>, Status> {
        let request = request.into_inner();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let link = pb::AccountLink {
            account_link_id: format!("link-{}", &id[..16]),
            account_link_status: pb::AccountLinkStatus::PendingAcceptanceByTargetAccount.into(),
            source_account_id: request.account_id,
            target_account_id: request.target_account_id,
        };
        self.links
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(link.account_link_id.clone(), link.clone());
        let client_token = if request.client_token.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            request.client_token
        };
        Ok(Response::new(pb::CreateAccountLinkInvitationResponse {
            account_link: Some(link),
            client_token,
        }))
    }

    async fn accept_account_link_invitation(
        &self,
        _request: Request<pb::AcceptAccountLinkInvitationRequest>,
    ) -> Result<Response<pb::AcceptAccountLinkInvitationResponse>, Status> {
        Err(Status::unimplemented("not part of the benchmark"))
    }

    async fn reject_account_link_invitation(
        &self,
        _request: Request<pb::RejectAccountLinkInvitationRequest>,
    ) -> Result<Response<pb::RejectAccountLinkInvitationResponse>, Status> {
        Err(Status::unimplemented("not part of the benchmark"))
    }

    async fn delete_account_link_invitation(
        &self,
        _request: Request<pb::DeleteAccountLinkInvitationRequest>,
    ) -> Result<Response<pb::DeleteAccountLinkInvitationResponse>, Status> {
        Err(Status::unimplemented("not part of the benchmark"))
    }

    async fn get_account_link(
        &self,
        request: Request<pb::GetAccountLinkRequest>,
    ) -> Result<Response<pb::GetAccountLinkResponse>, Status> {
        let request = request.into_inner();
        let link = self
            .links
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&request.link_id)
            .cloned()
            .ok_or_else(|| Status::not_found("no such link"))?;
        Ok(Response::new(pb::GetAccountLinkResponse {
            account_link: Some(link),
        }))
    }

    async fn list_account_links(
        &self,
        _request: Request<pb::ListAccountLinksRequest>,
    ) -> Result<Response<pb::ListAccountLinksResponse>, Status> {
        Err(Status::unimplemented("not part of the benchmark"))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anchor::serve(args.listen, MemoryLinks::default(), "bare tonic server").await
}
