-- Whom to text: per application, from intake's contact-recorded events (the latest version wins).
-- The mobile number stays sealed (AES-GCM, subsidy/crypto.py); it is opened only to send.
CREATE TABLE contacts (
    application_no   text        PRIMARY KEY,
    program          text        NOT NULL,
    version          integer     NOT NULL,
    applicant_name   text        NOT NULL,
    mobile_sealed    jsonb       NOT NULL,
    mobile_hash      text        NOT NULL,   -- keyed hash: rate limits per number without the number
    mobile_masked    text        NOT NULL,   -- 138****8000, for the SMS log
    award_fen        bigint,                 -- from the lifecycle's state changes, for the award notices
    tier             integer,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per notice to send, keyed by (application, notice kind, deadline or version): a redelivered
-- event or a retried step finds the row and sends nothing twice. The row is written (and marked
-- `sending`) before any provider is called; a `sending` row found after a crash is first reconciled
-- with the providers' own records (our message id is their OutId / SessionContext).
CREATE TABLE sms_messages (
    message_id          uuid        PRIMARY KEY,
    idempotency_key     text        NOT NULL UNIQUE,
    application_no      text        NOT NULL,
    program             text        NOT NULL,
    kind                text        NOT NULL,
    text                text        NOT NULL,   -- the rendered Chinese notice (no personal data)
    sign_name           text        NOT NULL,
    params              jsonb       NOT NULL,
    mobile_hash         text        NOT NULL,
    mobile_masked       text        NOT NULL,
    source_event_id     text        NOT NULL,
    status              text        NOT NULL CHECK (status IN
                          ('pending', 'sending', 'accepted', 'delivered', 'failed', 'phone_task')),
    not_before          timestamptz NOT NULL,   -- quiet hours, rate limits and retry backoff move it
    lease_until         timestamptz,            -- a sender works on it until then (several may run)
    attempts            integer     NOT NULL DEFAULT 0,
    delivery_failures   integer     NOT NULL DEFAULT 0,
    tried_providers     text[]      NOT NULL DEFAULT '{}',
    next_provider       text,                   -- tried first on the next attempt
    provider            text,
    provider_message_id text,
    last_error          text,
    correlation_id      text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    delivered_at        timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sms_messages_due ON sms_messages (not_before) WHERE status IN ('pending', 'sending');
CREATE INDEX sms_messages_application ON sms_messages (application_no, created_at);
CREATE INDEX sms_messages_number ON sms_messages (mobile_hash, sent_at);

-- The local provider of the embedded stack: what it "sent" (no real SMS leaves the machine).
CREATE TABLE local_provider_messages (
    message_id    text        PRIMARY KEY,
    mobile_masked text        NOT NULL,
    template_code text        NOT NULL,
    text          text        NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);

-- Enterprises no provider could reach: a reviewer phones them.
CREATE TABLE phone_tasks (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id      uuid        NOT NULL UNIQUE REFERENCES sms_messages (message_id),
    application_no  text        NOT NULL,
    reason          text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz
);
