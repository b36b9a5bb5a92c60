-- Signed checkpoints of the audit chain, and retention that deletes only a
-- whole verified prefix ending at a checkpoint (DESIGN §6; issue "audit trail").

-- Every checkpoint `audit checkpoint` signed (the file it writes, as stored JSON).
create table audit_checkpoint (
    chain_id    text        not null references audit_chain (chain_id),
    to_seq      bigint      not null,
    head_hash   bytea       not null check (length(head_hash) = 32),
    signature   text        not null,
    body        jsonb       not null,
    created_at  timestamptz not null default now(),
    primary key (chain_id, to_seq)
);

-- Where a chain starts after retention deleted its prefix: the last deleted
-- row's seq and row_hash (the next row's prev_hash) and the checkpoint that
-- vouched for it. `audit verify` starts here.
create table audit_anchor (
    chain_id    text        primary key references audit_chain (chain_id),
    seq         bigint      not null,
    row_hash    bytea       not null check (length(row_hash) = 32),
    checkpoint  jsonb       not null,
    created_at  timestamptz not null default now()
);

-- The append-only trigger admits exactly one kind of DELETE: the one made
-- inside audit_event_retain() below, which sets this transaction-local flag.
create or replace function audit_event_refuse_change() returns trigger
language plpgsql as $$
begin
    if tg_op = 'DELETE' and current_setting('account_link.audit_retention', true) = 'on' then
        return old;
    end if;
    raise exception 'audit_event is append-only: % refused', tg_op
        using errcode = 'insufficient_privilege';
end;
$$;

-- Deletes the prefix of `p_chain` through `p_to_seq`, which must be a
-- stored checkpoint whose head hash is still the row_hash at that seq, and
-- records the new anchor. The caller verified the chain and the checkpoint's
-- signature first (src/audit/retention.rs).
--
-- Privileges: in production the service role should hold only INSERT and
-- SELECT on audit_event (plus EXECUTE on this function), e.g.
--   revoke update, delete, truncate on audit_event from account_link;
--   grant select, insert on audit_event to account_link;
--   alter function audit_event_retain(text, bigint) security definer;
-- so that this function, owned by the migration role, is the only way rows
-- leave the table.
create function audit_event_retain(p_chain text, p_to_seq bigint) returns bigint
language plpgsql as $$
declare
    v_checkpoint audit_checkpoint%rowtype;
    v_hash bytea;
    v_deleted bigint;
begin
    select * into v_checkpoint from audit_checkpoint where chain_id = p_chain and to_seq = p_to_seq;
    if not found then
        raise exception 'no checkpoint at seq % of chain %', p_to_seq, p_chain;
    end if;
    select row_hash into v_hash from audit_event where chain_id = p_chain and seq = p_to_seq;
    if v_hash is distinct from v_checkpoint.head_hash then
        raise exception 'the row at seq % does not match its checkpoint', p_to_seq;
    end if;
    perform set_config('account_link.audit_retention', 'on', true);
    delete from audit_event where chain_id = p_chain and seq <= p_to_seq;
    get diagnostics v_deleted = row_count;
    perform set_config('account_link.audit_retention', 'off', true);
    insert into audit_anchor (chain_id, seq, row_hash, checkpoint)
    values (p_chain, p_to_seq, v_checkpoint.head_hash, v_checkpoint.body)
    on conflict (chain_id) do update
        set seq = excluded.seq, row_hash = excluded.row_hash,
            checkpoint = excluded.checkpoint, created_at = now();
    return v_deleted;
end;
$$;
