-- Issue 11: the completer (DESIGN §5) and two more audit outcomes.

-- The canonical request of the record (JSON, written at claim time), so a
-- record whose driver went away can be re-driven by the completer without
-- its caller: {"v": 1, "target_account_id": "…"} or {"v": 1, "link_id": "…"}.
-- Null in records claimed before this migration: those cannot be re-driven
-- by the completer and are left to their callers' retries.
alter table client_token_record add column request_body text;

-- The completer's scan: the records not yet completed (in progress or
-- retryable), a small part of the table.
create index client_token_record_unfinished_idx
    on client_token_record (updated_at) where state <> 'completed';

-- `takeover`: a caller re-drove a retryable or lease-expired record;
-- `recovered`: the completer (principal system:completer) re-drove one.
alter table audit_event drop constraint audit_event_idempotency_outcome_check;
alter table audit_event add constraint audit_event_idempotency_outcome_check
    check (idempotency_outcome in
        ('new', 'takeover', 'recovered', 'replayed', 'in_progress', 'mismatch', 'none'));
