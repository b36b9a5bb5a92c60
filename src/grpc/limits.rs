//! Load shedding (DESIGN §12): past the in-flight limit, API RPCs are
//! refused at once with RESOURCE_EXHAUSTED (reason `OVERLOADED`, with
//! `RetryInfo`) instead of queueing without bound. Health and reflection
//! are never shed, so probes see the truth under load.
//!
//! The refusal is deliberately not audited: writing to the database is the
//! work being shed. It is counted in `accountlink_load_shed_total`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::body::Body;

use crate::error::{ERROR_DOMAIN, reason};

/// Paths of the services that are shed.
const SHED_PREFIXES: [&str; 2] = [
    "/accountlink.v1.AccountLinkService/",
    "/accountlink.v1.AuditService/",
];

/// Suggested back-off for shed RPCs.
const SHED_RETRY_DELAY: Duration = Duration::from_millis(250);

/// Limits in-flight API RPCs to `max`.
#[derive(Debug, Clone)]
pub struct InFlightLimitLayer {
    permits: Arc<Semaphore>,
}

impl InFlightLimitLayer {
    /// At most `max` API RPCs in flight.
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
        }
    }
}

impl<S> tower::Layer<S> for InFlightLimitLayer {
    type Service = InFlightLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InFlightLimit {
            inner,
            permits: Arc::clone(&self.permits),
        }
    }
}

/// The service of [`InFlightLimitLayer`].
#[derive(Debug, Clone)]
pub struct InFlightLimit<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

fn overloaded() -> http::Response<Body> {
    use tonic_types::{ErrorDetails, StatusExt};
    let mut details = ErrorDetails::new();
    details.set_error_info(
        reason::OVERLOADED,
        ERROR_DOMAIN,
        std::collections::HashMap::new(),
    );
    details.set_retry_info(Some(SHED_RETRY_DELAY));
    tonic::Status::with_error_details(
        tonic::Code::ResourceExhausted,
        "the service is at its in-flight RPC limit; retry later",
        details,
    )
    .into_http()
}

impl<S> tower::Service<http::Request<Body>> for InFlightLimit<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path();
        if !SHED_PREFIXES.iter().any(|p| path.starts_with(p)) {
            return Box::pin(inner.call(request));
        }
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => Box::pin(async move {
                let response = inner.call(request).await;
                drop(permit);
                response
            }),
            Err(_) => {
                metrics::counter!(crate::metrics::LOAD_SHED).increment(1);
                Box::pin(async { Ok(overloaded()) })
            }
        }
    }
}
