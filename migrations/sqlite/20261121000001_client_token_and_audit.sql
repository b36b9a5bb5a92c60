-- The SQLite schema: the same tables, columns and rules as the PostgreSQL
-- migrations in ../postgres (client-token dedup records, DESIGN §5; the
-- hash-chained, append-only audit trail, DESIGN §6; checkpoints, the
-- retention anchor and the query indexes), in one migration because the
-- backend is new. Differences, all forced by SQLite:
--
-- * Tables are STRICT, so a value of the wrong type is refused as in
--   PostgreSQL instead of being stored as whatever it is.
-- * Times are INTEGER microseconds since the Unix epoch, UTC: sqlx would
--   write RFC 3339 text with a varying number of fraction digits, which
--   does not sort as time; integers compare exactly. (The audit hash uses
--   microseconds too, so nothing is lost.)
-- * uuid is a 16-byte BLOB, bytea a BLOB, jsonb a TEXT checked by
--   json_valid(), boolean an INTEGER 0/1.
-- * The append-only rule is three triggers with RAISE(ABORT, …) (UPDATE,
--   DELETE, and an INSERT that would REPLACE a row). The one
--   DELETE admitted is retention's: while a row of audit_retention_permit
--   names a stored checkpoint, rows up to its seq may be deleted. The store
--   writes and removes that row inside its retention transaction
--   (SqliteStore::retain_through), so it is never visible to anyone else.
--   SQLite has no roles: whoever can write the file can drop a trigger.
--   Tampering is still detected by `audit verify` and signed checkpoints,
--   which is the trail's real guarantee on either backend.
-- * The time-range probe table audit_event_hour of PostgreSQL migration 2
--   is not needed: the (chain_id, event_time) index serves the range.

create table client_token_record (
    principal               text    not null,
    method                  text    not null,
    client_token_sha256     text    not null,
    acting_account_id       text    not null,
    request_fingerprint     text    not null,
    upstream_client_token   text    not null,
    generation              integer not null default 0 check (generation >= 0),
    state                   text    not null
        check (state in ('in_progress', 'completed', 'retryable')),
    lease_id                blob    check (lease_id is null or length(lease_id) = 16),
    locked_until            integer,
    drive_count             integer not null default 1,
    grpc_code               integer,
    error_reason            text,
    response_message        text,
    response_details        blob,
    response_body           blob,
    created_at              integer not null,
    updated_at              integer not null,
    expires_at              integer not null,
    primary key (principal, method, client_token_sha256),
    check ((state = 'in_progress') = (lease_id is not null and locked_until is not null)),
    check (state <> 'completed' or grpc_code is not null)
) strict, without rowid;

create index client_token_record_expires_at_idx on client_token_record (expires_at);

create table audit_chain (
    chain_id    text    primary key,
    last_seq    integer not null check (last_seq >= 0),
    last_hash   blob    not null check (length(last_hash) = 32),
    created_at  integer not null default (cast(unixepoch('subsec') * 1000000 as integer))
) strict;

insert into audit_chain (chain_id, last_seq, last_hash) values ('default', 0, zeroblob(32));

create table audit_event (
    event_id                blob    primary key check (length(event_id) = 16),
    chain_id                text    not null references audit_chain (chain_id),
    seq                     integer not null check (seq >= 1),
    event_time              integer not null,
    method                  text    not null,
    read_only               integer not null check (read_only in (0, 1)),
    principal               text    not null,
    source_ip               text,
    user_agent              text,
    request_id              text    not null,
    account_id              text,
    request_parameters      text    not null check (json_valid(request_parameters)),
    response_elements       text    check (response_elements is null or json_valid(response_elements)),
    grpc_code               text    not null,
    error_reason            text,
    error_message           text,
    upstream_request_id     text,
    upstream_attempts       integer not null default 0 check (upstream_attempts >= 0),
    idempotency_outcome     text    not null
        check (idempotency_outcome in ('new', 'replayed', 'in_progress', 'mismatch', 'none')),
    client_token_sha256     text,
    duration_us             integer not null check (duration_us >= 0),
    prev_hash               blob    not null check (length(prev_hash) = 32),
    row_hash                blob    not null check (length(row_hash) = 32),
    unique (chain_id, seq)
) strict;

create index audit_event_request_id_idx on audit_event (request_id);

-- ListAuditEvents: one index per filter, leading with (chain_id, <filter>)
-- and ending in seq, so a newest-first page is an index range scan. Unlike
-- PostgreSQL's, none is partial: SQLite uses a partial index only when it
-- can prove the query implies the index's WHERE, which a bound parameter
-- never does. A time range uses (chain_id, event_time) and sorts its rows.
create index audit_event_event_time_idx on audit_event (chain_id, event_time);
create index audit_event_principal_seq_idx on audit_event (chain_id, principal, seq);
create index audit_event_method_seq_idx on audit_event (chain_id, method, seq);
create index audit_event_account_id_seq_idx on audit_event (chain_id, account_id, seq);
create index audit_event_grpc_code_seq_idx on audit_event (chain_id, grpc_code, seq);
create index audit_event_idempotency_outcome_seq_idx
    on audit_event (chain_id, idempotency_outcome, seq);
create index audit_event_request_link_id_idx
    on audit_event (chain_id, json_extract(request_parameters, '$.link_id'), seq);
create index audit_event_response_link_id_idx
    on audit_event (chain_id, json_extract(response_elements, '$.AccountLink.AccountLinkId'), seq);

create table audit_checkpoint (
    chain_id    text    not null references audit_chain (chain_id),
    to_seq      integer not null,
    head_hash   blob    not null check (length(head_hash) = 32),
    signature   text    not null,
    body        text    not null check (json_valid(body)),
    created_at  integer not null default (cast(unixepoch('subsec') * 1000000 as integer)),
    primary key (chain_id, to_seq)
) strict;

create table audit_anchor (
    chain_id    text    primary key references audit_chain (chain_id),
    seq         integer not null,
    row_hash    blob    not null check (length(row_hash) = 32),
    checkpoint  text    not null check (json_valid(checkpoint)),
    created_at  integer not null default (cast(unixepoch('subsec') * 1000000 as integer))
) strict;

-- Retention's permit: present only inside SqliteStore::retain_through.
create table audit_retention_permit (
    chain_id    text    primary key references audit_chain (chain_id),
    to_seq      integer not null
) strict;

-- INSERT OR REPLACE (and REPLACE) would delete the conflicting row without
-- firing the delete trigger (recursive_triggers is off): refuse any insert
-- that conflicts, before the conflict resolution runs.
create trigger audit_event_no_replace
before insert on audit_event
when exists (
    select 1 from audit_event
    where event_id = new.event_id or (chain_id = new.chain_id and seq = new.seq)
)
begin
    select raise(abort, 'audit_event is append-only: INSERT over an existing row refused');
end;

create trigger audit_event_no_update
before update on audit_event
begin
    select raise(abort, 'audit_event is append-only: UPDATE refused');
end;

create trigger audit_event_no_delete
before delete on audit_event
when not exists (
    select 1
    from audit_retention_permit as p
    join audit_checkpoint as c on c.chain_id = p.chain_id and c.to_seq = p.to_seq
    where p.chain_id = old.chain_id and old.seq <= p.to_seq
)
begin
    select raise(abort, 'audit_event is append-only: DELETE refused');
end;
