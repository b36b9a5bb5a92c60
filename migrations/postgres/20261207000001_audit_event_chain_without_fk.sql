-- audit_event.chain_id loses its foreign key to audit_chain (issue 10);
-- a trigger keeps audit_chain's rows instead.
--
-- PostgreSQL checks a foreign key once per inserted row, with a query of its
-- own (`select 1 from audit_chain where chain_id = $1 for key share`). In a
-- group-commit batch of GetAccountLink events at c=16 that was 6 % of the
-- audit writer's backend (docs/benchmarks.md), and dropping it took
-- PostgreSQL's CPU per RPC at c=64 from 0.083 to 0.068 ms (medians of four
-- runs each, one binary, two databases).
--
-- What the key guaranteed still holds without it:
--
-- * every event names an existing chain: both ways to append (the batch
--   statement of src/store/postgres/batch.rs and `insert_audit_event` of
--   src/store/sql.rs) first lock and move that chain's head row, in the same
--   statement or transaction, and insert nothing when it is missing;
-- * no chain row disappears from under its events: the key refused deleting
--   or truncating a referenced audit_chain row, and the triggers below refuse
--   every DELETE and TRUNCATE of audit_chain (nothing in the service deletes
--   a chain; retention moves audit_anchor, not the head). SQLite's migration
--   of the same name adds the same DELETE rule.
--
-- SQLite keeps its foreign key: it checks it with an index probe inside the
-- one writer's transaction, and dropping it would rebuild the table.

alter table audit_event drop constraint audit_event_chain_id_fkey;

create function audit_chain_refuse_delete() returns trigger
language plpgsql as $$
begin
    raise exception 'audit_chain holds the heads of the append-only audit trail: % refused', tg_op
        using errcode = 'insufficient_privilege';
end;
$$;

create trigger audit_chain_no_delete
    before delete on audit_chain
    for each row execute function audit_chain_refuse_delete();

create trigger audit_chain_no_truncate
    before truncate on audit_chain
    for each statement execute function audit_chain_refuse_delete();
