-- Outbox rows that can never be published as they are (a permanent producer error: larger than
-- the producer may send, a topic that does not exist, headers that cannot be serialised), set
-- aside by the relay so that the rest of the outbox flows. An operator lists and requeues them
-- (`subsidy outbox dead list|requeue`); a requeued row goes back to the outbox as a new row with
-- the same event id (consumers deduplicate by it) and stays here, stamped, for the record.
CREATE TABLE outbox_dead (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id       bigint      NOT NULL,   -- its id in the outbox when it was set aside
    event_id        uuid        NOT NULL UNIQUE,
    topic           text        NOT NULL,
    message_key     text        NOT NULL,
    payload         jsonb       NOT NULL,
    headers         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL,   -- when the event was written
    reason          text        NOT NULL,   -- message_too_large | unknown_topic | unserializable | rejected_by_broker
    detail          text        NOT NULL,   -- the error's type and message, no payload
    set_aside_at    timestamptz NOT NULL DEFAULT now(),
    times_set_aside integer     NOT NULL DEFAULT 1,
    requeued_at     timestamptz,
    requeued_by     text
);
CREATE INDEX outbox_dead_waiting ON outbox_dead (id) WHERE requeued_at IS NULL;
