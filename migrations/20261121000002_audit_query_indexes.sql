-- Indexes for AuditService.ListAuditEvents (src/store/audit_query.rs).
-- Conventions: migrations/README.md. Measurements: docs/benchmarks.md.
--
-- A page is `where chain_id = $1 and <filters> [and seq < $cursor]
-- order by seq desc limit $n`. An index on (chain_id, <filter column>, seq)
-- hands out the matching rows already in seq order, so PostgreSQL scans it
-- backward and stops after n rows, whatever the filter's selectivity and
-- however deep the cursor is. The bare first page and time ranges use the
-- existing unique (chain_id, seq) and audit_event_event_time_idx.
--
-- Built without CONCURRENTLY (sqlx runs a migration file in one
-- transaction): appends wait while these are built, about 1 s per index per
-- million events.

create index audit_event_principal_seq_idx
    on audit_event (chain_id, principal, seq);

create index audit_event_method_seq_idx
    on audit_event (chain_id, method, seq);

create index audit_event_account_id_seq_idx
    on audit_event (chain_id, account_id, seq)
    where account_id is not null;

-- Low-cardinality columns: the rare values (INTERNAL, mismatch…) are the
-- ones worth filtering on, and only an index finds them without reading
-- every common row in between.
create index audit_event_grpc_code_seq_idx
    on audit_event (chain_id, grpc_code, seq);

create index audit_event_idempotency_outcome_seq_idx
    on audit_event (chain_id, idempotency_outcome, seq);

-- The link id of an event is the request's link_id (Accept, Reject, Delete,
-- Get) or the response's AccountLink.AccountLinkId (every successful
-- mutation, including Create). The filter ORs the two expressions, which
-- PostgreSQL answers with a BitmapOr of these two expression indexes; a link
-- has few events, so sorting them by seq is cheap. Not partial: the planner
-- takes an expression's statistics only from a non-partial index, and
-- without them it guesses 0.5 % of the table per link and prefers scanning
-- the whole trail backward (0.5 s at 1 000 000 events).
create index audit_event_request_link_id_idx
    on audit_event ((request_parameters ->> 'link_id'));

create index audit_event_response_link_id_idx
    on audit_event ((response_elements -> 'AccountLink' ->> 'AccountLinkId'));

-- Time ranges. Rows are ordered by seq but filtered by event_time, and the
-- two only roughly agree (event_time is taken before the chain lock), so
-- neither index alone serves "the newest 50 events before an old end_time":
-- scanning seq backward first skips every newer event, and scanning
-- event_time collects the whole range before sorting it (0.15 s for half of
-- 1 000 000 events). This summary keeps, per chain and hour of event_time,
-- the lowest and highest seq. Every event with event_time < t lies in an hour
-- <= hour(t), so its seq is <= the max of those hours' max_seq; every event
-- with event_time >= t has seq >= the min of min_seq over hours >= hour(t).
-- The query adds both bounds (exact, only looser by up to an hour of events)
-- as an index condition on seq. Rows deleted by retention leave their hours
-- behind, which only loosens the bounds.
create table audit_event_hour (
    chain_id    text    not null references audit_chain (chain_id),
    -- floor(unix seconds of event_time / 3600)
    hour        bigint  not null,
    min_seq     bigint  not null,
    max_seq     bigint  not null,
    primary key (chain_id, hour)
);

insert into audit_event_hour (chain_id, hour, min_seq, max_seq)
select chain_id, floor(extract(epoch from event_time) / 3600)::bigint, min(seq), max(seq)
from audit_event
group by 1, 2;

create function audit_event_hour_track() returns trigger
language plpgsql as $$
begin
    insert into audit_event_hour (chain_id, hour, min_seq, max_seq)
    select chain_id, floor(extract(epoch from event_time) / 3600)::bigint, min(seq), max(seq)
    from inserted
    group by 1, 2
    on conflict (chain_id, hour) do update
        set min_seq = least(audit_event_hour.min_seq, excluded.min_seq),
            max_seq = greatest(audit_event_hour.max_seq, excluded.max_seq);
    return null;
end;
$$;

create trigger audit_event_hour_track
    after insert on audit_event
    referencing new table as inserted
    for each statement execute function audit_event_hour_track();
