-- Two indexes of audit_event that no query reads (issue 10).
--
-- Every group-commit batch inserts its events into every index of
-- audit_event, and the writer of the chain is busy the whole time at
-- concurrency 16 and up, so each index costs throughput. Measured on one
-- binary against two databases, one with these two indexes and one
-- without (docs/benchmarks.md): PostgreSQL's CPU per GetAccountLink 0.92x
-- at c=16 and 0.85x at c=64, the service's rps 1.04x and 1.07x.
--
-- * audit_event_request_id_idx: no query of the service filters by
--   request_id (ListAuditEvents has no such filter). The random keys made
--   it the costliest of the two.
-- * audit_event_event_time_idx: ListAuditEvents keeps the planner off it
--   already (src/store/postgres/audit_query.rs); `audit export --since
--   --until` now takes its seq range from audit_event_hour instead, like
--   ListAuditEvents, and retention finds its checkpoint by seq.
drop index audit_event_request_id_idx;
drop index audit_event_event_time_idx;
