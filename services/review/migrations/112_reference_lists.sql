-- Reference lists an operator imports (`subsidy reference import KIND FILE.csv`): each import kept,
-- versioned by the SHA-256 of the file; the latest import of a kind is the one in effect. Findings
-- name the version they read (pre_check_findings.evidence.reference_version and ruleset_version).
CREATE TABLE reference_lists (
    kind         text        NOT NULL CHECK (kind IN ('cac_filings', 'serious_dishonesty', 'scenarios', 'experts')),
    version      text        NOT NULL,
    rows         jsonb       NOT NULL,
    row_count    integer     NOT NULL,
    imported_by  text        NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    seq          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY
);
CREATE INDEX reference_lists_latest ON reference_lists (kind, seq DESC);
