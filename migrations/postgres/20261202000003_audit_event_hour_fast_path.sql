-- A fast path for the `audit_event_hour` trigger (issue 10).
--
-- A profile of the group-commit batch at concurrency 1 put this trigger at
-- 23 % of the PostgreSQL backend's CPU: two statements per batch, an
-- upsert grouped by hour and an update of the running extremes with two
-- window functions and a join. Almost every batch is the common case: its
-- events are of one chain and one hour, and that hour is already the
-- chain's latest. Then, because new events have higher seqs than every
-- stored event of their chain (what appends guarantee, see
-- 20261121000002), exactly two columns of one row change:
--
-- * `max_seq` and `max_seq_upto` of that hour become the batch's highest
--   seq (`greatest` with the stored values, which are lower);
-- * `min_seq` keeps its stored, lower value, so no `min_seq_from` changes;
--   and there is no later hour whose `max_seq_upto` would move.
--
-- That is one primary-key update. Any other batch (a new hour, a late
-- event of an earlier hour, several chains) takes the general path,
-- unchanged from 20261121000002.
create or replace function audit_event_hour_track() returns trigger
language plpgsql as $$
declare
    v_chain text;
    v_one_chain boolean;
    v_first bigint;
    v_last bigint;
    v_max_seq bigint;
begin
    select min(chain_id), min(chain_id) = max(chain_id),
           min(floor(extract(epoch from event_time) / 3600)::bigint),
           max(floor(extract(epoch from event_time) / 3600)::bigint),
           max(seq)
    into v_chain, v_one_chain, v_first, v_last, v_max_seq
    from inserted;
    if v_chain is null then
        return null;
    end if;
    if v_one_chain and v_first = v_last then
        update audit_event_hour
        set max_seq = greatest(max_seq, v_max_seq),
            max_seq_upto = greatest(max_seq_upto, v_max_seq)
        where chain_id = v_chain and hour = v_first
          and hour = (select max(hour) from audit_event_hour where chain_id = v_chain);
        if found then
            return null;
        end if;
    end if;

    -- The general path. The hours of the new events and their own extremes.
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
