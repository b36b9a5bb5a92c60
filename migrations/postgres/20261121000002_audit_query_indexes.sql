-- Indexes for AuditService.ListAuditEvents (src/store/audit_query.rs), and
-- a per-hour summary of seqs for its time-range filters.
-- Conventions: migrations/README.md. Measurements: docs/benchmarks.md.
--
-- A page is `where chain_id = $1 and <filters> [and seq < $cursor]
-- order by seq desc limit $n`. An index on (chain_id, <filter column>, seq)
-- hands out the matching rows already in seq order, so PostgreSQL scans it
-- backward and stops after n rows, whatever the filter's selectivity and
-- however deep the cursor is. The bare first page, the common values of
-- grpc_code and idempotency_outcome, and time ranges (bounded through
-- audit_event_hour below) scan the existing unique (chain_id, seq).
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

-- Low-cardinality columns: only the rare values (errors, client-token
-- outcomes of mutations) need an index; the common one (OK, none) matches
-- almost every row, so scanning (chain_id, seq) backward fills a page at
-- once. Partial, these indexes are a tenth and a quarter of the full size.
-- The query is planned with its actual values (src/store/audit_query.rs),
-- so `grpc_code = 'INTERNAL'` proves the predicate and uses the index.
create index audit_event_grpc_code_seq_idx
    on audit_event (chain_id, grpc_code, seq)
    where grpc_code <> 'OK';

create index audit_event_idempotency_outcome_seq_idx
    on audit_event (chain_id, idempotency_outcome, seq)
    where idempotency_outcome <> 'none';

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

-- Time ranges. Pages are ordered by seq but filtered by event_time, and the
-- two only roughly agree (event_time is taken before the chain lock), so
-- neither index alone serves "the newest 50 events before an old end_time":
-- scanning seq backward first skips every newer event, and scanning
-- event_time collects the whole range before sorting it (0.15-0.35 s for
-- half of 1 000 000 events). This summary keeps, per chain and hour of
-- event_time, the lowest and highest seq of that hour and the running
-- extremes: `min_seq_from` is the lowest seq of the events of this hour or
-- any later one, `max_seq_upto` the highest of this hour or any earlier one.
-- Every event with event_time >= t therefore has seq >= min_seq_from of the
-- first hour >= hour(t), and every event with event_time < t has seq <=
-- max_seq_upto of the last hour <= hour(t): two primary-key probes give a
-- seq range (at most an hour of events wider on each side) that the query
-- adds to its time filter, so the seq-ordered scan starts and stops near the
-- range. Results stay exact: the range only narrows where to look.
--
-- Maintained by a statement trigger on insert; it relies on what appends
-- guarantee: new events have higher seqs than every stored event of their
-- chain. Rows deleted by retention leave their hours behind, which only
-- loosens the bounds.
create table audit_event_hour (
    chain_id        text    not null references audit_chain (chain_id),
    -- floor(unix seconds of event_time / 3600)
    hour            bigint  not null,
    min_seq         bigint  not null,
    max_seq         bigint  not null,
    min_seq_from    bigint  not null,
    max_seq_upto    bigint  not null,
    primary key (chain_id, hour)
);

insert into audit_event_hour (chain_id, hour, min_seq, max_seq, min_seq_from, max_seq_upto)
select chain_id, hour, min_seq, max_seq,
       min(min_seq) over (partition by chain_id order by hour desc),
       max(max_seq) over (partition by chain_id order by hour)
from (
    select chain_id, floor(extract(epoch from event_time) / 3600)::bigint as hour,
           min(seq) as min_seq, max(seq) as max_seq
    from audit_event
    group by 1, 2
) as per_hour;

create function audit_event_hour_track() returns trigger
language plpgsql as $$
begin
    -- The hours of the new events and their own extremes.
    insert into audit_event_hour as h
        (chain_id, hour, min_seq, max_seq, min_seq_from, max_seq_upto)
    select chain_id, floor(extract(epoch from event_time) / 3600)::bigint,
           min(seq), max(seq), min(seq), max(seq)
    from inserted
    group by 1, 2
    on conflict (chain_id, hour) do update
        set min_seq = least(h.min_seq, excluded.min_seq),
            max_seq = greatest(h.max_seq, excluded.max_seq);
    -- The running extremes from the earliest touched hour on (usually just
    -- the current hour). Earlier hours keep theirs: the new seqs are higher
    -- than every stored one.
    with first_hour as (
        select chain_id, min(floor(extract(epoch from event_time) / 3600)::bigint) as hour
        from inserted
        group by chain_id
    ),
    running as (
        select h.chain_id, h.hour,
               max(h.max_seq) over (partition by h.chain_id order by h.hour) as upto,
               min(h.min_seq) over (partition by h.chain_id order by h.hour desc) as from_
        from audit_event_hour as h
        join first_hour as f on f.chain_id = h.chain_id and h.hour >= f.hour
    ),
    prior as (
        select f.chain_id, (
            select p.max_seq_upto from audit_event_hour as p
            where p.chain_id = f.chain_id and p.hour < f.hour
            order by p.hour desc
            limit 1
        ) as upto
        from first_hour as f
    )
    update audit_event_hour as h
    set max_seq_upto = greatest(r.upto, coalesce(b.upto, 0)),
        min_seq_from = r.from_
    from running as r
    join prior as b on b.chain_id = r.chain_id
    where h.chain_id = r.chain_id and h.hour = r.hour;
    return null;
end;
$$;

create trigger audit_event_hour_track
    after insert on audit_event
    referencing new table as inserted
    for each statement execute function audit_event_hour_track();
