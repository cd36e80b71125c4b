-- Watermarked application forms as issued (services/review/forms.py): one per application version.
-- The Guangdong portal's submission names the form id and the SHA-256 of the file it received.
CREATE TABLE forms (
    form_id         text        PRIMARY KEY,
    program         text        NOT NULL,
    application_no  text        NOT NULL,
    version         integer     NOT NULL CHECK (version >= 1),
    sha256          text        NOT NULL,
    pdf             bytea       NOT NULL,
    issued_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (application_no, version)
);
