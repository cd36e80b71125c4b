-- Duplicate and multi-source claims (LG 三(一)4, SZ 03(四)): what each application claims (its latest
-- version), and the flags detection found, linking each application to the others. Never a
-- rejection: the reviewer acknowledges each flag (audited).
CREATE TABLE duplicate_claims (
    application_no  text        PRIMARY KEY,
    program         text        NOT NULL,
    version         integer     NOT NULL,
    claim           jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE duplicate_flags (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_no   text        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('same_invoice', 'same_contract', 'same_product', 'cross_program_applicant')),
    key              text        NOT NULL,   -- the normalised value the applications share
    clause           text        NOT NULL,
    others           jsonb       NOT NULL,   -- [{program, application_no, applicant_uscc, applicant_name, declarations}]
    message          text        NOT NULL,
    active           boolean     NOT NULL DEFAULT true,   -- false: no longer found (a later version dropped it)
    acknowledged_by  text,
    acknowledged_at  timestamptz,
    note             text,
    flagged_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (application_no, kind, key)
);
CREATE INDEX duplicate_flags_application ON duplicate_flags (application_no) WHERE active;
