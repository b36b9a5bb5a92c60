-- Client-token dedup records (DESIGN §5) and the audit trail (DESIGN §6).
-- Conventions: migrations/README.md.

-- One row per (principal, method, client token): phase 1 claims it
-- (in_progress, with a lease), phase 3 completes it (completed or retryable).
create table client_token_record (
    principal               text        not null,
    method                  text        not null,
    -- hex SHA-256 of the client token; the token itself is never stored
    client_token_sha256     text        not null,
    acting_account_id       text        not null,
    -- hex SHA-256 of the canonical request (domain::Mutation::fingerprint)
    request_fingerprint     text        not null,
    -- the ClientToken sent to AWS, derived from the key and the generation: a re-drive
    -- is the same AWS request
    upstream_client_token   text        not null,
    -- bumped when an expired record is reused, so a new use of the token is a new AWS request
    generation              integer     not null default 0 check (generation >= 0),
    state                   text        not null
        check (state in ('in_progress', 'completed', 'retryable')),
    -- the lease of the request driving it; null unless in_progress
    lease_id                uuid,
    locked_until            timestamptz,
    -- how many times phase 1 handed the record to a driver
    drive_count             integer     not null default 1,
    -- the stored outcome, once completed
    grpc_code               integer,
    error_reason            text,
    response_message        text,
    -- encoded google.rpc.Status details of an error outcome
    response_details        bytea,
    -- encoded accountlink.v1.AccountLink of a success
    response_body           bytea,
    created_at              timestamptz not null,
    updated_at              timestamptz not null,
    expires_at              timestamptz not null,
    primary key (principal, method, client_token_sha256),
    check ((state = 'in_progress') = (lease_id is not null and locked_until is not null)),
    check (state <> 'completed' or grpc_code is not null)
);

create index client_token_record_expires_at_idx on client_token_record (expires_at);

-- The head of each audit hash chain. Appending an event locks its chain row
-- (update ... returning) for the rest of the appending transaction, which
-- serializes appends across replicas and keeps seq gapless.
create table audit_chain (
    chain_id    text        primary key,
    last_seq    bigint      not null check (last_seq >= 0),
    -- row_hash of the row at last_seq; 32 zero bytes before the first row
    last_hash   bytea       not null check (length(last_hash) = 32),
    created_at  timestamptz not null default now()
);

insert into audit_chain (chain_id, last_seq, last_hash)
values ('default', 0, decode(repeat('00', 32), 'hex'));

-- One append-only row per RPC, CloudTrail-like.
create table audit_event (
    event_id                uuid        primary key,
    chain_id                text        not null references audit_chain (chain_id),
    seq                     bigint      not null check (seq >= 1),
    -- completion time, UTC
    event_time              timestamptz not null,
    method                  text        not null,
    read_only               boolean     not null,
    principal               text        not null,
    source_ip               text,
    user_agent              text,
    request_id              text        not null,
    -- the acting account, when it was resolved
    account_id              text,
    -- redacted request fields (no client token, no secrets)
    request_parameters      jsonb       not null,
    -- the answer of a mutation (null for reads and errors)
    response_elements       jsonb,
    -- google.rpc.Code name, e.g. OK, INVALID_ARGUMENT
    grpc_code               text        not null,
    error_reason            text,
    error_message           text,
    upstream_request_id     text,
    upstream_attempts       integer     not null default 0 check (upstream_attempts >= 0),
    idempotency_outcome     text        not null
        check (idempotency_outcome in ('new', 'replayed', 'in_progress', 'mismatch', 'none')),
    client_token_sha256     text,
    duration_us             bigint      not null check (duration_us >= 0),
    -- the hash chain: row_hash = sha256(prev_hash || canonical v1 of the row), see src/audit
    prev_hash               bytea       not null check (length(prev_hash) = 32),
    row_hash                bytea       not null check (length(row_hash) = 32),
    unique (chain_id, seq)
);

create index audit_event_event_time_idx on audit_event (event_time);
create index audit_event_request_id_idx on audit_event (request_id);

-- Append-only: UPDATE, DELETE and TRUNCATE are refused.
create function audit_event_refuse_change() returns trigger
language plpgsql as $$
begin
    raise exception 'audit_event is append-only: % refused', tg_op
        using errcode = 'insufficient_privilege';
end;
$$;

create trigger audit_event_no_update_delete
    before update or delete on audit_event
    for each row execute function audit_event_refuse_change();

create trigger audit_event_no_truncate
    before truncate on audit_event
    for each statement execute function audit_event_refuse_change();
