-- The chain's row hashes, computed in the database (issue 10).
--
-- A group-commit batch of the audit writer (src/store/postgres/batch.rs)
-- used to take the chain head in a transaction of its own whenever another
-- replica had appended since its last batch: `begin`, `select … for
-- update`, the hashes computed by the service, the batch statement,
-- `commit`. The head's row lock was held across three round trips, and with
-- three replicas about half of the lock's time was spent waiting on the
-- network and the services' schedulers. With this function a batch is one
-- statement at any head: it locks the head, chains its events after it
-- here, writes them and moves the head, and the lock is held only while
-- the statement runs and commits.
--
-- `row_hash = SHA-256(prev_hash || canonical_v1(event))` (src/audit/mod.rs).
-- The service sends each event's canonical encoding with the `seq` left
-- open: the bytes before the `seq` member's value (`before`) and after it
-- (`after`). JCS (RFC 8785) writes a number as the shortest form of its
-- IEEE 754 double; for an integer below 2^53 that is its decimal digits,
-- which is what `bigint::text` gives. A `seq` from 2^53 on would need the
-- double's rounding, so this function refuses it (at 10 000 events a
-- second, a chain reaches 2^53 after 28 000 years).
--
-- Returns, for the `n` events of the batch, their previous rows' hashes and
-- their own, in order: `prev_hashes[1]` is `last_hash`, and
-- `row_hashes[n]` the chain's new head.
create function audit_row_hashes(
    last_seq bigint,
    last_hash bytea,
    before bytea[],
    after bytea[],
    out prev_hashes bytea[],
    out row_hashes bytea[]
)
language plpgsql immutable strict parallel safe as $$
declare
    n integer := coalesce(array_length(before, 1), 0);
    prev bytea := last_hash;
    seq bigint;
begin
    if coalesce(array_length(after, 1), 0) <> n then
        raise exception 'audit_row_hashes: % parts before the seq, % after', n,
            coalesce(array_length(after, 1), 0);
    end if;
    if last_seq + n >= 9007199254740992 then
        raise exception 'audit_row_hashes: seq % is beyond 2^53, where the canonical encoding v1 writes a rounded number',
            last_seq + n;
    end if;
    prev_hashes := array[]::bytea[];
    row_hashes := array[]::bytea[];
    for i in 1 .. n loop
        seq := last_seq + i;
        prev_hashes := prev_hashes || prev;
        prev := sha256(prev || before[i] || convert_to(seq::text, 'UTF8') || after[i]);
        row_hashes := row_hashes || prev;
    end loop;
end
$$;
