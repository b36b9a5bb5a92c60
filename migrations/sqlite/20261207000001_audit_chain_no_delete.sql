-- audit_chain's rows cannot be deleted (issue 10; PostgreSQL migration
-- 20261207000001, which drops audit_event's foreign key there and adds the
-- same rule as a trigger).
--
-- Here the foreign key of audit_event.chain_id stays (SQLite checks it with
-- an index probe inside its one writer's transaction, and dropping it would
-- rebuild the table); it already refuses deleting a chain that has events.
-- This trigger refuses every DELETE, with or without events, so both stores
-- keep the same rule with the same message. SQLite's DELETE without WHERE
-- (its truncate optimization) is off while a table has a DELETE trigger.
create trigger audit_chain_no_delete
before delete on audit_chain
begin
    select raise(abort, 'audit_chain holds the heads of the append-only audit trail: DELETE refused');
end;
