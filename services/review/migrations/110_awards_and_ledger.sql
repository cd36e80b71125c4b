-- Longgang awards computed by review (services/review/awards/service.py), never typed in: one row per
-- application and version, with the breakdown the administrator reads (each contract, its clause).
-- status: computed (waiting for the administrator), confirmed (as computed), adjusted (with a reason).
CREATE TABLE award_computations (
    application_no      text        NOT NULL,
    version             integer     NOT NULL,
    program             text        NOT NULL,
    applicant_uscc      text        NOT NULL,
    cap_year            integer     NOT NULL,
    breakdown           jsonb       NOT NULL,
    eligible_total_fen  bigint      NOT NULL CHECK (eligible_total_fen >= 0),
    computed_fen        bigint      NOT NULL CHECK (computed_fen >= 0),   -- rate x eligible, rounded, before the cap
    award_fen           bigint      NOT NULL CHECK (award_fen >= 0),      -- after the cap, when computed
    status              text        NOT NULL DEFAULT 'computed' CHECK (status IN ('computed', 'confirmed', 'adjusted')),
    confirmed_fen       bigint      CHECK (confirmed_fen >= 0),
    adjustment_reason   text,
    decided_by          text,
    decided_at          timestamptz,
    computed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_no, version),
    CHECK ((status = 'computed') = (confirmed_fen IS NULL)),
    CHECK (status <> 'adjusted' OR adjustment_reason IS NOT NULL)
);
CREATE INDEX award_computations_program ON award_computations (program, status);

-- The yearly cap per enterprise (Longgang 二(二): CNY 2M per USCC per year, across all its
-- applications and batches). One row per (uscc, year), locked FOR UPDATE by each confirmation; one
-- reservation per application, written in the confirmation's transaction. The sum of the
-- reservations is what the enterprise has been granted that year.
CREATE TABLE award_ledger (
    uscc        text    NOT NULL,
    cap_year    integer NOT NULL,
    cap_fen     bigint  NOT NULL CHECK (cap_fen >= 0),
    PRIMARY KEY (uscc, cap_year)
);

CREATE TABLE award_reservations (
    application_no  text        PRIMARY KEY,
    uscc            text        NOT NULL,
    cap_year        integer     NOT NULL,
    program         text        NOT NULL,
    amount_fen      bigint      NOT NULL CHECK (amount_fen >= 0),
    idempotency_key text        NOT NULL,
    reserved_at     timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (uscc, cap_year) REFERENCES award_ledger (uscc, cap_year)
);
CREATE INDEX award_reservations_enterprise ON award_reservations (uscc, cap_year);
