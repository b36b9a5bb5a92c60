-- Issue 11: the completer (DESIGN §5) and two more audit outcomes; the
-- same changes as ../postgres/20261202000001_completer_and_outcomes.sql.

-- The canonical request of the record (JSON, written at claim time), so a
-- record whose driver went away can be re-driven by the completer without
-- its caller. Null in records claimed before this migration: those are
-- left to their callers' retries.
alter table client_token_record add column request_body text;

-- The completer's scan: the records not yet completed. Its queries spell
-- out `state <> 'completed'`, so SQLite uses this partial index.
create index client_token_record_unfinished_idx
    on client_token_record (updated_at) where state <> 'completed';

-- `takeover` and `recovered` join the audit outcomes. SQLite cannot alter a
-- CHECK constraint, so audit_event is rebuilt (SQLite's documented
-- "make other kinds of table schema changes" procedure): a new table with
-- the new check, every row copied as it is (the hash chain covers the
-- values, not the table), the old table dropped (DROP TABLE fires no
-- DELETE trigger, and no foreign key points at audit_event), the new one
-- renamed into place, then the indexes and the three append-only triggers
-- of migration 1 created again, unchanged.
create table audit_event_rebuilt (
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
        check (idempotency_outcome in
            ('new', 'takeover', 'recovered', 'replayed', 'in_progress', 'mismatch', 'none')),
    client_token_sha256     text,
    duration_us             integer not null check (duration_us >= 0),
    prev_hash               blob    not null check (length(prev_hash) = 32),
    row_hash                blob    not null check (length(row_hash) = 32),
    unique (chain_id, seq)
) strict;

insert into audit_event_rebuilt select * from audit_event;

drop table audit_event;

alter table audit_event_rebuilt rename to audit_event;

create index audit_event_request_id_idx on audit_event (request_id);
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
