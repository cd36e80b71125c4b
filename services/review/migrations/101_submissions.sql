-- What each version of an application says, as intake recorded it
-- (subsidy.application.submission-recorded.v1): the facts the automatic pre-checks read. No people:
-- names, ID and mobile numbers of the legal representative and the contact stay with intake.
CREATE TABLE submissions (
    application_no  text        NOT NULL,
    version         integer     NOT NULL CHECK (version >= 1),
    program         text        NOT NULL,
    applicant_uscc  text        NOT NULL,
    submitted_at    timestamptz NOT NULL,
    facts           jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_no, version)
);
CREATE INDEX submissions_applicant ON submissions (program, applicant_uscc);
