-- What the portals submitted, immutable: one row per version (a resubmission is a new version).
-- Personal data (resident ID numbers, mobile numbers) is not in `payload`: each is sealed with
-- AES-GCM in `sealed` (key id kept for rotation), and a keyed hash in `personal_lookup` finds it.
CREATE TABLE application_versions (
    application_no  text        NOT NULL,
    version         integer     NOT NULL CHECK (version >= 1),
    program         text        NOT NULL,
    event_id        text        NOT NULL UNIQUE,
    submitted_at    timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    applicant_uscc  text        NOT NULL,
    payload         jsonb       NOT NULL,
    sealed          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (application_no, version)
);

CREATE TABLE personal_lookup (
    application_no  text    NOT NULL,
    version         integer NOT NULL,
    field           text    NOT NULL,   -- e.g. applicant.contact.mobile
    kind            text    NOT NULL,   -- id_number | mobile
    lookup_hash     text    NOT NULL,   -- HMAC-SHA256 with the hash key, hex
    PRIMARY KEY (application_no, version, field),
    FOREIGN KEY (application_no, version) REFERENCES application_versions (application_no, version)
);
CREATE INDEX personal_lookup_hash ON personal_lookup (kind, lookup_hash);

CREATE TABLE materials (
    application_no  text    NOT NULL,
    version         integer NOT NULL,
    file_id         text    NOT NULL,
    kind            text    NOT NULL,
    sha256          text    NOT NULL,
    pages           integer,
    PRIMARY KEY (application_no, version, file_id),
    FOREIGN KEY (application_no, version) REFERENCES application_versions (application_no, version)
);

-- Every valid inbound event and what became of it: applied, or refused with the reason (a late
-- first submission, a duplicate, a decision the workflow refused in its state).
CREATE TABLE inbound_events (
    event_id        text        PRIMARY KEY,
    topic           text        NOT NULL,
    type            text        NOT NULL,
    source          text        NOT NULL,
    application_no  text        NOT NULL,
    event_time      timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    outcome         text        NOT NULL CHECK (outcome IN ('applied', 'refused')),
    reason          text
);
CREATE INDEX inbound_events_application ON inbound_events (application_no, event_time);
