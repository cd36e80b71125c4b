-- Applied to every service schema (intake, review, notify): the platform's messaging conventions.

-- Inbox: one row per consumed event, written in the same transaction as the event's effect,
-- so a redelivered event (same id) is recognised and has no second effect.
CREATE TABLE inbox (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    topic        text        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Outbox: events to publish, written in the same transaction as the state that caused them;
-- a relay publishes them to Kafka (idempotent producer) and stamps published_at.
CREATE TABLE outbox (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      uuid        NOT NULL UNIQUE,
    topic         text        NOT NULL,
    message_key   text        NOT NULL,
    payload       jsonb       NOT NULL,
    headers       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Audit log: who did what to which application, append-only.
CREATE TABLE audit_log (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_no  text,
    actor           text        NOT NULL,
    action          text        NOT NULL,
    detail          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    correlation_id  text,
    occurred_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_application ON audit_log (application_no, occurred_at);
