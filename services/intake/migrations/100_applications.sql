-- Intake owns the application aggregate's read side: where each application is, and every state
-- change the lifecycle workflows recorded (lifecycle.record_state_change). No personal data here:
-- applications are known by program and number.

CREATE TABLE applications (
    application_no  text        PRIMARY KEY,
    program         text        NOT NULL,
    status          text        NOT NULL,
    version         integer     NOT NULL,
    deadline        timestamptz,
    status_since    timestamptz NOT NULL,  -- occurred_at of the change that set `status`
    correlation_id  text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One row per change, keyed by the workflow's deterministic event id: a retried activity finds it.
CREATE TABLE state_changes (
    event_id        uuid        PRIMARY KEY,
    application_no  text        NOT NULL,
    program         text        NOT NULL,
    from_status     text,
    to_status       text        NOT NULL,
    reason          text,
    actor           text        NOT NULL,
    deadline        timestamptz,
    occurred_at     timestamptz NOT NULL,
    correlation_id  text        NOT NULL,
    version         integer     NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX state_changes_application ON state_changes (application_no, occurred_at);
