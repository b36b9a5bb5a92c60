//! Undecodable requests reach the handler, so they are refused like any
//! other bad input: INVALID_ARGUMENT (or RESOURCE_EXHAUSTED when too large)
//! and an audit event (DESIGN §4, §6).
//!
//! tonic decodes request messages before a handler runs and answers a
//! protobuf error (truncated bytes, a wrong wire type, invalid UTF-8 in a
//! string) with an unaudited INTERNAL. [`MalformedRequestLayer`] buffers
//! each `AccountLinkService`, `AuditService` and `ResourceShareInvitationService`
//! request body (bounded), checks that it is one
//! uncompressed gRPC frame holding a message that decodes as the method's
//! request type, and otherwise replaces the body with an empty message and
//! marks the request with a [`Malformed`] extension, which the handler turns
//! into the refusal. Other services pass through untouched.
//!
//! Compression: the service accepts uncompressed messages only (the
//! largest legal request is under 4 KiB). A message with the compressed
//! flag set is refused here too, audited, instead of tonic's unaudited
//! INTERNAL or UNIMPLEMENTED: UNIMPLEMENTED `COMPRESSION_UNSUPPORTED` when
//! `grpc-encoding` names a compression (gRPC's "Compression" doc: an
//! unsupported encoding is UNIMPLEMENTED), INVALID_ARGUMENT
//! `MALFORMED_REQUEST` when it names none (the flag then contradicts the
//! headers). The `grpc-encoding` header is removed before tonic sees it,
//! so an uncompressed message sent with `grpc-encoding: gzip` (legal: the
//! flag is per message) is served.
//!
//! The layer also stamps each API request with [`Arrived`], the instant
//! tonic's own `grpc-timeout` timer starts from (tonic's `GrpcTimeout`
//! wraps every route and cannot be turned off), so the RPC's deadline can
//! fire, and its audited DEADLINE_EXCEEDED be answered, before tonic's
//! CANCELLED would.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use prost::Message;
use tonic::body::Body;

use crate::proto::pb;

/// The path prefixes of the API's methods.
const SERVICE_PREFIXES: [&str; 3] = [
    "/accountlink.v1.AccountLinkService/",
    "/accountlink.v1.AuditService/",
    "/accountlink.v1.ResourceShareInvitationService/",
];

/// Why a request message could not be used; set as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Malformed {
    /// The message is larger than the limit (bytes).
    TooLarge(usize),
    /// The body is not one valid gRPC frame with a decodable message.
    Undecodable(String),
    /// The message has the compressed flag set; `encoding` is the
    /// request's `grpc-encoding` (`None`: absent or `identity`).
    Compressed {
        /// The compression the caller named.
        encoding: Option<String>,
    },
}

/// When an API request reached the server's routes (a request extension
/// set by [`MalformedRequestLayer`]): where tonic's own `grpc-timeout`
/// timer started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arrived(pub(crate) tokio::time::Instant);

/// Wraps the server's routes; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct MalformedRequestLayer {
    max_message_bytes: usize,
}

impl MalformedRequestLayer {
    /// Refuses messages larger than `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Self { max_message_bytes }
    }
}

impl<S> tower::Layer<S> for MalformedRequestLayer {
    type Service = MalformedRequest<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MalformedRequest {
            inner,
            max_message_bytes: self.max_message_bytes,
        }
    }
}

/// The service of [`MalformedRequestLayer`].
#[derive(Debug, Clone)]
pub struct MalformedRequest<S> {
    inner: S,
    max_message_bytes: usize,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<Body>> for MalformedRequest<S>
where
    S: tower::Service<http::Request<Body>> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone is ready only if polled; swap so the polled one is used.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path();
        let Some(method) = SERVICE_PREFIXES
            .iter()
            .find_map(|prefix| path.strip_prefix(prefix))
            .map(str::to_owned)
        else {
            return Box::pin(inner.call(request));
        };
        let limit = self.max_message_bytes;
        let arrived = Arrived(tokio::time::Instant::now());
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            parts.extensions.insert(arrived);
            let encoding = parts
                .headers
                .remove("grpc-encoding")
                .and_then(|v| v.to_str().ok().map(str::to_owned))
                .filter(|e| e != "identity");
            // The frame header is 5 bytes; allow one more to detect excess.
            let collected = Limited::new(body, limit + 6).collect().await;
            let verdict = match collected {
                Ok(c) => check(&method, c.to_bytes(), limit),
                Err(_) => Err(Malformed::TooLarge(limit)),
            }
            .map_err(|m| match m {
                Malformed::Compressed { .. } => Malformed::Compressed { encoding },
                other => other,
            });
            let body = match verdict {
                Ok(bytes) => bytes,
                Err(malformed) => {
                    tracing::info!(method, ?malformed, "malformed request message");
                    parts.extensions.insert(malformed);
                    // An empty message: decodes as every request type.
                    Bytes::from_static(&[0, 0, 0, 0, 0])
                }
            };
            inner
                .call(http::Request::from_parts(parts, Body::new(Full::new(body))))
                .await
        })
    }
}

/// Checks `body` is one uncompressed frame whose message decodes as
/// `method`'s request; returns the body unchanged when it is. A compressed
/// frame is [`Malformed::Compressed`] (with no encoding: the caller fills
/// in the header's).
pub(super) fn check(method: &str, body: Bytes, limit: usize) -> Result<Bytes, Malformed> {
    if body.len() < 5 {
        return Err(Malformed::Undecodable(format!(
            "the body holds {} bytes, less than a gRPC frame header",
            body.len()
        )));
    }
    let compressed = body[0];
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if len > limit {
        return Err(Malformed::TooLarge(limit));
    }
    if body.len() != 5 + len {
        return Err(Malformed::Undecodable(format!(
            "the frame header announces {len} bytes but the body holds {}",
            body.len() - 5
        )));
    }
    if compressed != 0 {
        return Err(Malformed::Compressed { encoding: None });
    }
    let message = &body[5..];
    let decoded = match method {
        "CreateAccountLinkInvitation" => {
            pb::CreateAccountLinkInvitationRequest::decode(message).map(drop)
        }
        "AcceptAccountLinkInvitation" => {
            pb::AcceptAccountLinkInvitationRequest::decode(message).map(drop)
        }
        "RejectAccountLinkInvitation" => {
            pb::RejectAccountLinkInvitationRequest::decode(message).map(drop)
        }
        "DeleteAccountLinkInvitation" => {
            pb::DeleteAccountLinkInvitationRequest::decode(message).map(drop)
        }
        "GetAccountLink" => pb::GetAccountLinkRequest::decode(message).map(drop),
        "ListAccountLinks" => pb::ListAccountLinksRequest::decode(message).map(drop),
        "ListAuditEvents" => pb::ListAuditEventsRequest::decode(message).map(drop),
        "ListResourceShareInvitations" => {
            pb::ListResourceShareInvitationsRequest::decode(message).map(drop)
        }
        "GetResourceShareInvitation" => {
            pb::GetResourceShareInvitationRequest::decode(message).map(drop)
        }
        "AcceptResourceShareInvitation" => {
            pb::AcceptResourceShareInvitationRequest::decode(message).map(drop)
        }
        "RejectResourceShareInvitation" => {
            pb::RejectResourceShareInvitationRequest::decode(message).map(drop)
        }
        // Unknown methods are tonic's to refuse (UNIMPLEMENTED).
        _ => Ok(()),
    };
    decoded.map(|()| body).map_err(|e| {
        Malformed::Undecodable(format!("the request message is not valid protobuf: {e}"))
    })
}

/// One gRPC frame around `message` (for tests and tools).
pub fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    out.put_slice(message);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_accepts_valid_frames_and_names_what_is_wrong() {
        let good = pb::GetAccountLinkRequest {
            link_id: "link-12345678".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert!(check("GetAccountLink", frame(&good), 100).is_ok());
        assert!(matches!(
            check("GetAccountLink", Bytes::from_static(&[0, 0]), 100),
            Err(Malformed::Undecodable(_))
        ));
        assert!(matches!(
            check("GetAccountLink", frame(&[0xff; 3]), 100),
            Err(Malformed::Undecodable(_))
        ));
        assert!(matches!(
            check("GetAccountLink", frame(&[0; 200]), 100),
            Err(Malformed::TooLarge(100))
        ));
        // Field 2 (link_id) with invalid UTF-8.
        let bad_utf8 = [0x12, 0x02, 0xc3, 0x28];
        assert!(matches!(
            check("GetAccountLink", frame(&bad_utf8), 100),
            Err(Malformed::Undecodable(_))
        ));
        let mut compressed = frame(&good).to_vec();
        compressed[0] = 1;
        assert_eq!(
            check("GetAccountLink", Bytes::from(compressed), 100),
            Err(Malformed::Compressed { encoding: None })
        );
        let mut truncated = frame(&good).to_vec();
        truncated.pop();
        assert!(matches!(
            check("GetAccountLink", Bytes::from(truncated), 100),
            Err(Malformed::Undecodable(_))
        ));
    }
}
