-- `subsidy dlq replay`: a dead letter put back on its source topic is stamped (once only; who did
-- it is in audit_log too, as is every refusal).
ALTER TABLE dead_letters
    ADD COLUMN replayed_at   timestamptz,
    ADD COLUMN replayed_by   text,
    ADD COLUMN replay_offset bigint;   -- where the replayed message landed on the source topic
