//! The gRPC services: `accountlink.v1.AccountLinkService` and
//! `accountlink.v1.AuditService` ([`audit_service`]), both implemented by
//! [`AccountLinkApi`].
//!
//! Each RPC runs DESIGN §2: validate -> resolve the acting account ->
//! [mutations: claim the client token (phase 1)] -> upstream (phase 2) ->
//! [mutations: complete the record (phase 3)] + audit event in one
//! transaction -> answer. Every RPC, including refused and replayed ones,
//! is audited before it is answered.

pub mod audit_service;
mod completer;
mod context;
mod convert;
mod limits;
mod malformed;
mod operation;
#[cfg(test)]
mod proptests;
mod resource_share;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_util::task::TaskTracker;
use tonic::{Code, Request, Response, Status};

use self::context::{AuditDraft, CallContext};
use self::convert::{audit_str, link_to_pb};
use self::operation::{Operation, Resource};
use crate::auth::{Authenticator, Policy};
use crate::domain::{AccountId, ClientToken, FieldViolation, LinkId, Mutation};
use crate::error::ApiError;
use crate::proto::pb;
use crate::proto::pb::account_link_service_server::AccountLinkService;
use crate::store::{
    AnyStore, ClaimOutcome, IdempotencyOutcome, NewClaim, RecordKey, RecordOutcome, Store,
    StoredOutcome, UpstreamToken,
};
use crate::upstream::ram::InvitationProviders;
use crate::upstream::{AccountError, Upstream, UpstreamError, UpstreamOutput};

pub use self::completer::{COMPLETER_PRINCIPAL, CompleterPass, CompleterSettings};
pub use self::context::{REPLAYED_METADATA, REQUEST_ID_METADATA};
pub use self::limits::{InFlightLimit, InFlightLimitLayer};
pub use self::malformed::{Malformed, MalformedRequest, MalformedRequestLayer, frame};

/// The RPC method names of `AccountLinkService`, `AuditService` and
/// `ResourceShareInvitationService`, as policies and the audit trail name
/// them.
pub const METHODS: [&str; 11] = [
    "CreateAccountLinkInvitation",
    "AcceptAccountLinkInvitation",
    "RejectAccountLinkInvitation",
    "DeleteAccountLinkInvitation",
    "GetAccountLink",
    "ListAccountLinks",
    audit_service::LIST_AUDIT_EVENTS,
    "ListResourceShareInvitations",
    "GetResourceShareInvitation",
    "AcceptResourceShareInvitation",
    "RejectResourceShareInvitation",
];

/// Client-token dedup settings (DESIGN §5).
#[derive(Clone)]
pub struct DedupSettings {
    /// Lease of an in-progress record; must exceed the longest upstream
    /// call (SDK operation timeout), or a slow call may be re-driven.
    pub lease: Duration,
    /// How long records are kept (default 24 h).
    pub ttl: Duration,
    /// HMAC-SHA256 key deriving the upstream ClientToken from the dedup key.
    /// Replicas sharing a database must share it.
    pub upstream_token_key: Vec<u8>,
}

impl std::fmt::Debug for DedupSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedupSettings")
            .field("lease", &self.lease)
            .field("ttl", &self.ttl)
            .field("upstream_token_key", &"<redacted>")
            .finish()
    }
}

/// What the health probe last saw of the database, shared with the RPCs
/// (issue 11, fail fast): while it is down, an RPC is answered UNAVAILABLE
/// `DATABASE_UNAVAILABLE` at once, before any AWS call, instead of waiting
/// for the pool's acquire timeout (5 s). Up until a probe says otherwise.
#[derive(Debug, Clone, Default)]
pub struct DatabaseHealth(Arc<AtomicBool>);

impl DatabaseHealth {
    /// Records the probe's verdict.
    pub fn set_down(&self, down: bool) {
        self.0.store(down, Ordering::Relaxed);
    }

    /// Whether the last probe saw the database down.
    pub fn is_down(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The `AccountLinkService`, `AuditService` and
/// `ResourceShareInvitationService` implementation over an [`Upstream`], the
/// invitation providers and the store.
#[derive(Debug)]
pub struct AccountLinkApi<U> {
    inner: Arc<Inner<U>>,
}

impl<U> Clone for AccountLinkApi<U> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

#[derive(Debug)]
struct Inner<U> {
    store: AnyStore,
    upstream: U,
    /// The resource-share invitation providers (issue 12).
    invitations: InvitationProviders,
    dedup: DedupSettings,
    auth: Authenticator,
    policy: Policy,
    tasks: TaskTracker,
    /// Default RPC deadline; a shorter `grpc-timeout` wins.
    rpc_timeout: Duration,
    /// The health probe's view of the database.
    database: DatabaseHealth,
}

/// Phase 3's reading of one drive's upstream result (DESIGN §5): what the
/// record stores, what the driver answers, and the upstream facts of the
/// audit event. Shared by callers' drives and the completer's re-drives,
/// for every provider's operations.
struct Settled {
    record: RecordOutcome,
    answer: Result<Resource, ApiError>,
    upstream_request_id: Option<String>,
    upstream_attempts: u32,
}

impl Settled {
    /// Success and deterministic provider client errors are final
    /// (`completed`, replayed to later requests); transient ones leave the
    /// record `retryable`.
    fn of(
        result: Result<UpstreamOutput<Resource>, UpstreamError>,
        operation: &Operation,
        acting: &AccountId,
    ) -> Self {
        match result {
            Ok(out) => {
                let stored = StoredOutcome {
                    grpc_code: Code::Ok as i32,
                    error_reason: None,
                    message: None,
                    details: None,
                    body: Some(out.value.encode()),
                };
                Self {
                    record: RecordOutcome::Completed(stored),
                    answer: Ok(out.value),
                    upstream_request_id: out.aws_request_id,
                    upstream_attempts: out.attempts,
                }
            }
            Err(e) => {
                let api = ApiError::upstream(
                    &e,
                    &operation.upstream_resource(),
                    operation.subject(),
                    acting.as_str(),
                );
                let record = if e.kind.is_final() {
                    let status = Status::from(api.clone());
                    RecordOutcome::Completed(StoredOutcome {
                        grpc_code: api.code() as i32,
                        error_reason: Some(api.reason().to_owned()),
                        message: Some(api.message().to_owned()),
                        details: Some(status.details().to_vec()),
                        body: None,
                    })
                } else {
                    RecordOutcome::Retryable
                };
                Self {
                    record,
                    answer: Err(api),
                    upstream_request_id: e.aws_request_id,
                    upstream_attempts: e.attempts,
                }
            }
        }
    }
}

/// A mutation's answer before it is wrapped in the method's response type.
struct MutationReply {
    resource: Resource,
    client_token: String,
    replayed: bool,
}

/// A validated mutating request: the named acting account (if any), the
/// operation and the client token (if sent).
type OperationInput = (Option<AccountId>, (Operation, Option<ClientToken>));

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The upstream ClientToken of a dedup key: lowercase hex HMAC-SHA256 over
/// `principal \n method \n client_token`, then `\n generation` for
/// generations above 0 (64 characters, within AWS's `^.{1,64}$`).
/// Deterministic, so a re-drive is the same AWS request; a token reused
/// after its record expired (next generation) is a new one.
pub fn upstream_client_token(
    key: &[u8],
    principal: &str,
    method: &str,
    token: &ClientToken,
    generation: i32,
) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch is unreachable.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&[]).expect("hmac accepts an empty key")
    });
    mac.update(principal.as_bytes());
    mac.update(b"\n");
    mac.update(method.as_bytes());
    mac.update(b"\n");
    mac.update(token.as_str().as_bytes());
    if generation > 0 {
        mac.update(format!("\n{generation}").as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

impl<U: Upstream> AccountLinkApi<U> {
    /// Builds the service.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: AnyStore,
        upstream: U,
        invitations: InvitationProviders,
        dedup: DedupSettings,
        auth: Authenticator,
        policy: Policy,
        rpc_timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                upstream,
                invitations,
                dedup,
                auth,
                policy,
                tasks: TaskTracker::new(),
                rpc_timeout,
                database: DatabaseHealth::default(),
            }),
        }
    }

    /// The database health the RPCs act on; the health probe sets it.
    pub fn database_health(&self) -> DatabaseHealth {
        self.inner.database.clone()
    }

    /// Fails fast while the health probe sees the database down.
    fn database_up(&self) -> Result<(), ApiError> {
        if self.inner.database.is_down() {
            return Err(ApiError::database_down());
        }
        Ok(())
    }

    /// The tracker of running RPC tasks (waited for at shutdown).
    pub fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    /// Runs an RPC body as its own task, so that once started it finishes —
    /// upstream call, client-token record, audit event — even when the
    /// caller cancels or its deadline passes (DESIGN §2: every RPC is
    /// audited; nothing is lost). The task starts when this is called.
    ///
    /// `body` is boxed first: its state holds the AWS SDK's call future
    /// (kilobytes), and tokio moves a future it spawns by value several
    /// times (into the task cell, and its stage on completion), where a box
    /// moves as a pointer (docs/benchmarks.md).
    fn detach<T: Send + 'static>(
        &self,
        span: tracing::Span,
        body: impl Future<Output = Result<T, Status>> + Send + 'static,
    ) -> impl Future<Output = Result<T, Status>> + Send + 'static {
        use tracing::Instrument;
        let body = Box::pin(body);
        let in_flight = metrics::gauge!(crate::metrics::RPC_IN_FLIGHT);
        in_flight.increment(1.0);
        let task = self.inner.tasks.spawn(
            async move {
                let result = body.await;
                in_flight.decrement(1.0);
                result
            }
            .instrument(span),
        );
        async move {
            match task.await {
                Ok(result) => result,
                Err(e) => Err(ApiError::internal(&e).into()),
            }
        }
    }

    /// Captures the caller of `request` (authenticating it).
    fn context<T>(
        &self,
        method: &'static str,
        read_only: bool,
        request: &Request<T>,
    ) -> CallContext {
        CallContext::new(
            method,
            read_only,
            request,
            &self.inner.auth,
            self.inner.rpc_timeout,
        )
    }

    /// Audits a refused or failed RPC and returns its status. While the
    /// database is known to be down the event cannot be written: it is
    /// logged as unrecorded and the answer is `DATABASE_UNAVAILABLE`, at
    /// once.
    async fn refuse(&self, ctx: &CallContext, draft: AuditDraft, err: ApiError) -> Status {
        let event = ctx.event(draft, Err(&err));
        if let Err(down) = self.database_up() {
            ctx.log_unrecorded(&event);
            return ctx.status(down.into());
        }
        if let Err(e) = self.inner.store.append_audit_event(&event).await {
            ctx.log_unrecorded(&event);
            return ctx.status(ApiError::database(&e).into());
        }
        ctx.status(err.into())
    }

    /// Audits a successful read and returns its response.
    async fn answer<T>(
        &self,
        ctx: &CallContext,
        draft: AuditDraft,
        body: T,
    ) -> Result<Response<T>, Status> {
        let event = ctx.event(draft, Ok(()));
        if let Err(e) = self.inner.store.append_audit_event(&event).await {
            ctx.log_unrecorded(&event);
            return Err(ctx.status(ApiError::database(&e).into()));
        }
        Ok(ctx.response(body, false))
    }

    /// Audits and answers a read-only RPC from its upstream `result`;
    /// `kind` and `subject` name the resource for error details.
    #[allow(clippy::too_many_arguments)]
    async fn finish_read<O, R>(
        &self,
        ctx: &CallContext,
        mut draft: AuditDraft,
        acting: &AccountId,
        result: Result<UpstreamOutput<O>, UpstreamError>,
        kind: &crate::error::UpstreamResource,
        subject: (&str, &str),
        respond: impl FnOnce(O) -> R,
    ) -> Result<Response<R>, Status> {
        match result {
            Ok(out) => {
                draft.upstream_request_id = out.aws_request_id;
                draft.upstream_attempts = out.attempts;
                self.answer(ctx, draft, respond(out.value)).await
            }
            Err(e) => {
                draft.upstream_request_id = e.aws_request_id.clone();
                draft.upstream_attempts = e.attempts;
                let err = ApiError::upstream(&e, kind, subject, acting.as_str());
                Err(self.refuse(ctx, draft, err).await)
            }
        }
    }

    /// Everything before the first write, in DESIGN §2 order:
    /// authentication, validation, the method policy, then the acting
    /// account (policy first when the request names it, so a caller learns
    /// nothing about accounts it may not use). Records the acting account
    /// in `draft` as soon as it is known. `resolve` finds the acting account
    /// with the provider of the request (`None`: the named one, or the
    /// provider's only configured one).
    fn admit<T>(
        &self,
        ctx: &CallContext,
        draft: &mut AuditDraft,
        parsed: Result<(Option<AccountId>, T), Vec<FieldViolation>>,
        resolve: impl FnOnce(&Inner<U>, &T, Option<AccountId>) -> Result<AccountId, AccountError>,
    ) -> Result<(AccountId, T), ApiError> {
        self.database_up()?;
        if let Some(err) = ctx.auth_error {
            return Err(ApiError::unauthenticated(err));
        }
        if let Some(malformed) = &ctx.malformed {
            draft.set_parameters(json!({ "malformed": true }));
            return Err(ApiError::malformed(malformed));
        }
        let (requested, input) = parsed.map_err(|v| ApiError::invalid_argument(&v))?;
        let policy = &self.inner.policy;
        let deny = |account: Option<&AccountId>| {
            ApiError::caller_not_allowed(&ctx.principal, ctx.method, account)
        };
        if !policy.allows_method(&ctx.principal, ctx.method) {
            draft.account_id = requested.as_ref().map(AccountId::to_string);
            return Err(deny(requested.as_ref()));
        }
        if let Some(account) = &requested {
            draft.account_id = Some(account.to_string());
            if !policy.allows(&ctx.principal, ctx.method, account) {
                return Err(deny(Some(account)));
            }
        }
        let acting = resolve(&self.inner, &input, requested).map_err(|e| ApiError::account(&e))?;
        draft.account_id = Some(acting.to_string());
        ctx.record_account(acting.as_str());
        if !policy.allows(&ctx.principal, ctx.method, &acting) {
            return Err(deny(Some(&acting)));
        }
        Ok((acting, input))
    }

    /// Runs a mutating RPC of any provider through the three phases of
    /// DESIGN §5: the one pipeline every operation shares (issue 12).
    async fn mutation(
        &self,
        ctx: &CallContext,
        parsed: Result<OperationInput, Vec<FieldViolation>>,
        mut draft: AuditDraft,
    ) -> Result<MutationReply, Status> {
        let resolve = |inner: &Inner<U>, (op, _): &(Operation, _), requested| {
            Operation::resolve_account(op, inner, requested)
        };
        let (acting, (mutation, token)) = match self.admit(ctx, &mut draft, parsed, resolve) {
            Ok(v) => v,
            Err(e) => return Err(self.refuse(ctx, draft, e).await),
        };
        let token = token.unwrap_or_else(ClientToken::generate);
        let token_sha256 = sha256_hex(token.as_str().as_bytes());
        draft.client_token_sha256 = Some(token_sha256.clone());
        let key = RecordKey {
            principal: ctx.principal.clone(),
            method: ctx.method,
            client_token_sha256: token_sha256,
        };
        let claim = NewClaim {
            key: key.clone(),
            acting_account_id: acting.to_string(),
            request_fingerprint: mutation.fingerprint(&acting),
            lease: self.inner.dedup.lease,
            ttl: self.inner.dedup.ttl,
            request_body: Some(mutation.request_body()),
        };

        // Phase 1.
        let derive: UpstreamToken = {
            let inner = Arc::clone(&self.inner);
            let (principal, method, token) = (ctx.principal.clone(), ctx.method, token.clone());
            Arc::new(move |generation: i32| {
                upstream_client_token(
                    &inner.dedup.upstream_token_key,
                    &principal,
                    method,
                    &token,
                    generation,
                )
            })
        };
        let claimed = match self.inner.store.claim(&claim, None, derive).await {
            Ok(c) => c,
            Err(e) => return Err(self.refuse(ctx, draft, ApiError::database(&e)).await),
        };
        let outcome_label = match &claimed {
            ClaimOutcome::Acquired { takeover: true, .. } => "takeover",
            ClaimOutcome::Acquired { .. } => "new",
            ClaimOutcome::Replay(_) => "replayed",
            ClaimOutcome::InProgress { .. } => "in_progress",
            ClaimOutcome::Mismatch => "mismatch",
        };
        metrics::counter!(crate::metrics::IDEMPOTENCY_OUTCOMES, "outcome" => outcome_label)
            .increment(1);
        let (lease_id, upstream_token) = match claimed {
            ClaimOutcome::Acquired {
                lease_id,
                upstream_client_token,
                takeover,
            } => {
                draft.idempotency_outcome = if takeover {
                    tracing::info!(
                        method = ctx.method,
                        "re-driving a retryable client-token record"
                    );
                    IdempotencyOutcome::Takeover
                } else {
                    IdempotencyOutcome::New
                };
                (lease_id, upstream_client_token)
            }
            ClaimOutcome::Replay(stored) => {
                draft.idempotency_outcome = IdempotencyOutcome::Replayed;
                return self.replay(ctx, draft, &mutation, stored, token).await;
            }
            ClaimOutcome::InProgress { retry_after } => {
                draft.idempotency_outcome = IdempotencyOutcome::InProgress;
                let retry_after =
                    retry_after.clamp(Duration::from_millis(100), Duration::from_secs(5));
                return Err(self
                    .refuse(ctx, draft, ApiError::idempotency_key_in_use(retry_after))
                    .await);
            }
            ClaimOutcome::Mismatch => {
                draft.idempotency_outcome = IdempotencyOutcome::Mismatch;
                return Err(self
                    .refuse(ctx, draft, ApiError::idempotency_parameter_mismatch())
                    .await);
            }
        };

        // Phase 2: no transaction is open here.
        let result = ctx
            .within_deadline(mutation.drive(&self.inner, &acting, &upstream_token))
            .await;

        // Phase 3.
        let Settled {
            record,
            answer,
            upstream_request_id,
            upstream_attempts,
        } = Settled::of(result, &mutation, &acting);
        draft.upstream_request_id = upstream_request_id;
        draft.upstream_attempts = upstream_attempts;
        draft.response_elements = answer.as_ref().ok().map(Resource::to_json);
        let event = ctx.event(draft, answer.as_ref().map(|_| ()));
        match self
            .inner
            .store
            .complete(&key, lease_id, &record, &event)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                method = ctx.method,
                request_id = %ctx.request_id,
                "client-token lease lost to a takeover; outcome recorded by the other driver"
            ),
            Err(e) => {
                ctx.log_unrecorded(&event);
                return Err(ctx.status(ApiError::database(&e).into()));
            }
        }
        match answer {
            Ok(resource) => Ok(MutationReply {
                resource,
                client_token: token.as_str().to_owned(),
                replayed: false,
            }),
            Err(api) => Err(ctx.status(api.into())),
        }
    }

    /// Replays a completed outcome (no upstream call) and audits it.
    async fn replay(
        &self,
        ctx: &CallContext,
        mut draft: AuditDraft,
        operation: &Operation,
        stored: StoredOutcome,
        token: ClientToken,
    ) -> Result<MutationReply, Status> {
        if stored.grpc_code == Code::Ok as i32 {
            let resource = match operation.decode(stored.body.as_deref()) {
                Ok(r) => r,
                Err(err) => return Err(self.refuse(ctx, draft, err).await),
            };
            draft.response_elements = Some(resource.to_json());
            let event = ctx.event(draft, Ok(()));
            if let Err(e) = self.inner.store.append_audit_event(&event).await {
                ctx.log_unrecorded(&event);
                return Err(ctx.status(ApiError::database(&e).into()));
            }
            return Ok(MutationReply {
                resource,
                client_token: token.as_str().to_owned(),
                replayed: true,
            });
        }
        let status = Status::with_details(
            Code::from(stored.grpc_code),
            stored.message.clone().unwrap_or_default(),
            stored.details.clone().unwrap_or_default().into(),
        );
        let event = ctx.event_replayed_error(draft, &status, stored.error_reason.as_deref());
        if let Err(e) = self.inner.store.append_audit_event(&event).await {
            ctx.log_unrecorded(&event);
            return Err(ctx.status(ApiError::database(&e).into()));
        }
        let mut status = ctx.status(status);
        context::mark_replayed(status.metadata_mut());
        Err(status)
    }
}

/// The acting account of an account-link RPC: WorkSpaces' resolution.
fn link_account<U: Upstream, T>(
    inner: &Inner<U>,
    _input: &T,
    requested: Option<AccountId>,
) -> Result<AccountId, AccountError> {
    inner.upstream.resolve_account(requested)
}

/// Audit parameters of an Accept/Reject/Delete request.
fn link_params(account_id: &str, link_id: &str) -> serde_json::Value {
    json!({ "account_id": audit_str(account_id), "link_id": audit_str(link_id) })
}

/// The three requests that act on an existing link share one shape.
trait LinkRequest {
    fn parts(&self) -> (&str, &str, &str);
}

macro_rules! impl_link_request {
    ($($t:ty),*) => {$(
        impl LinkRequest for $t {
            fn parts(&self) -> (&str, &str, &str) {
                (&self.account_id, &self.link_id, &self.client_token)
            }
        }
    )*};
}

impl_link_request!(
    pb::AcceptAccountLinkInvitationRequest,
    pb::RejectAccountLinkInvitationRequest,
    pb::DeleteAccountLinkInvitationRequest
);

impl<U: Upstream> AccountLinkApi<U> {
    /// Accept, Reject or Delete: `build` makes the mutation from the link id.
    async fn on_link<Req, Resp>(
        &self,
        method: &'static str,
        request: Request<Req>,
        build: fn(LinkId) -> Mutation,
    ) -> Result<Response<Resp>, Status>
    where
        Req: LinkRequest + Send + 'static,
        Resp: FromReply + Send + 'static,
    {
        let ctx = self.context(method, false, &request);
        let req = request.into_inner();
        let this = self.clone();
        self.detach(ctx.span(), async move {
            let (account_id, link_id, client_token) = req.parts();
            let draft = AuditDraft::new(link_params(account_id, link_id));
            let parsed = convert::on_link(account_id, link_id, client_token, build)
                .map(convert::link_operation);
            let reply = this.mutation(&ctx, parsed, draft).await?;
            Ok(ctx.response(
                Resp::from_reply(reply.resource, reply.client_token),
                reply.replayed,
            ))
        })
        .await
    }
}

/// The four mutating responses share one shape.
trait FromReply {
    fn from_reply(resource: Resource, client_token: String) -> Self;
}

macro_rules! impl_from_reply {
    ($($t:ty),*) => {$(
        impl FromReply for $t {
            /// An account-link operation answers a link (`Operation::drive`).
            fn from_reply(resource: Resource, client_token: String) -> Self {
                let account_link = match resource {
                    Resource::Link(link) => Some(link),
                    Resource::Invitation(_) => None,
                };
                Self { account_link, client_token }
            }
        }
    )*};
}

impl_from_reply!(
    pb::CreateAccountLinkInvitationResponse,
    pb::AcceptAccountLinkInvitationResponse,
    pb::RejectAccountLinkInvitationResponse,
    pb::DeleteAccountLinkInvitationResponse
);

#[tonic::async_trait]
impl<U: Upstream> AccountLinkService for AccountLinkApi<U> {
    async fn create_account_link_invitation(
        &self,
        request: Request<pb::CreateAccountLinkInvitationRequest>,
    ) -> Result<Response<pb::CreateAccountLinkInvitationResponse>, Status> {
        let ctx = self.context("CreateAccountLinkInvitation", false, &request);
        let req = request.into_inner();
        let this = self.clone();
        self.detach(ctx.span(), async move {
            let draft = AuditDraft::new(json!({
                "account_id": audit_str(&req.account_id),
                "target_account_id": audit_str(&req.target_account_id),
            }));
            let parsed = convert::create(&req).map(convert::link_operation);
            let reply = this.mutation(&ctx, parsed, draft).await?;
            Ok(ctx.response(
                pb::CreateAccountLinkInvitationResponse::from_reply(
                    reply.resource,
                    reply.client_token,
                ),
                reply.replayed,
            ))
        })
        .await
    }

    async fn accept_account_link_invitation(
        &self,
        request: Request<pb::AcceptAccountLinkInvitationRequest>,
    ) -> Result<Response<pb::AcceptAccountLinkInvitationResponse>, Status> {
        self.on_link("AcceptAccountLinkInvitation", request, |link_id| {
            Mutation::Accept { link_id }
        })
        .await
    }

    async fn reject_account_link_invitation(
        &self,
        request: Request<pb::RejectAccountLinkInvitationRequest>,
    ) -> Result<Response<pb::RejectAccountLinkInvitationResponse>, Status> {
        self.on_link("RejectAccountLinkInvitation", request, |link_id| {
            Mutation::Reject { link_id }
        })
        .await
    }

    async fn delete_account_link_invitation(
        &self,
        request: Request<pb::DeleteAccountLinkInvitationRequest>,
    ) -> Result<Response<pb::DeleteAccountLinkInvitationResponse>, Status> {
        self.on_link("DeleteAccountLinkInvitation", request, |link_id| {
            Mutation::Delete { link_id }
        })
        .await
    }

    async fn get_account_link(
        &self,
        request: Request<pb::GetAccountLinkRequest>,
    ) -> Result<Response<pb::GetAccountLinkResponse>, Status> {
        let ctx = self.context("GetAccountLink", true, &request);
        let req = request.into_inner();
        let this = self.clone();
        self.detach(ctx.span(), async move {
            let mut draft = AuditDraft::new(json!({
                "account_id": audit_str(&req.account_id),
                "link_id": audit_str(&req.link_id),
                "linked_account_id": audit_str(&req.linked_account_id),
            }));
            let (acting, input) =
                match this.admit(&ctx, &mut draft, convert::get(&req), link_account) {
                    Ok(v) => v,
                    Err(e) => return Err(this.refuse(&ctx, draft, e).await),
                };
            let result = ctx
                .within_deadline(this.inner.upstream.get_account_link(&acting, &input))
                .await;
            let subject = match (&input.link_id, &input.linked_account_id) {
                (Some(link), _) => ("link_id", link.as_str()),
                (None, Some(account)) => ("linked_account_id", account.as_str()),
                (None, None) => ("link_id", ""),
            };
            let kind = crate::error::UpstreamResource::ACCOUNT_LINK;
            this.finish_read(&ctx, draft, &acting, result, &kind, subject, |link| {
                pb::GetAccountLinkResponse {
                    account_link: Some(link_to_pb(&link)),
                }
            })
            .await
        })
        .await
    }

    async fn list_account_links(
        &self,
        request: Request<pb::ListAccountLinksRequest>,
    ) -> Result<Response<pb::ListAccountLinksResponse>, Status> {
        let ctx = self.context("ListAccountLinks", true, &request);
        let req = request.into_inner();
        let this = self.clone();
        self.detach(ctx.span(), async move {
            let mut draft = AuditDraft::new(convert::list_params(&req));
            let (acting, input) =
                match this.admit(&ctx, &mut draft, convert::list(&req), link_account) {
                    Ok(v) => v,
                    Err(e) => return Err(this.refuse(&ctx, draft, e).await),
                };
            let result = ctx
                .within_deadline(this.inner.upstream.list_account_links(&acting, &input))
                .await;
            let token = input.next_token.as_ref().map_or("", |t| t.as_str());
            this.finish_read(
                &ctx,
                draft,
                &acting,
                result,
                &crate::error::UpstreamResource::ACCOUNT_LINK,
                ("page_token", token),
                |page| pb::ListAccountLinksResponse {
                    account_links: page.account_links.iter().map(link_to_pb).collect(),
                    next_page_token: page.next_token.unwrap_or_default(),
                },
            )
            .await
        })
        .await
    }
}
