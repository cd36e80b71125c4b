-- Each automatic pre-check finding as the reviewer reads it (services/review/rules/): the clause,
-- a Chinese explanation, the evidence it read (facts' values, no personal data) and the ruleset
-- version. The workflow gets the contract's PreCheckFinding; this table keeps the rest.
CREATE TABLE pre_check_findings (
    application_no   text        NOT NULL,
    version          integer     NOT NULL,
    rule             text        NOT NULL,
    clause           text        NOT NULL,
    passed           boolean     NOT NULL,
    detail           text        NOT NULL,
    explanation      text        NOT NULL,
    evidence         jsonb       NOT NULL,
    ruleset_version  text        NOT NULL,
    position         integer     NOT NULL,
    checked_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_no, version, rule)
);
