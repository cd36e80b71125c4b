-- Shenzhen expert review, scores and tiers (notice 02(一), 02(二), 02(四); services/review/scoring/).

-- The expert registry the conflict-of-interest check reads: an expert's id is their subject at the
-- issuer. Filled from the `experts` reference list (scoring/registry.py: register_experts), replaced
-- whole by each import; `source_version` is the imported file's SHA-256.
CREATE TABLE expert_registry (
    expert_id          text        PRIMARY KEY,
    name               text        NOT NULL,
    organisation       text        NOT NULL,
    organisation_uscc  text,
    fields             jsonb       NOT NULL DEFAULT '[]'::jsonb,
    affiliations       jsonb       NOT NULL DEFAULT '[]'::jsonb,   -- USCCs the expert declares a link with
    source_version     text        NOT NULL,
    registered_at      timestamptz NOT NULL DEFAULT now()
);

-- An expert may decline an assignment declaring a conflict: the assignment stays, declined.
ALTER TABLE expert_assignments
    ADD COLUMN declined_at     timestamptz,
    ADD COLUMN decline_reason  text,
    ADD CHECK ((declined_at IS NULL) = (decline_reason IS NULL));

-- Every conflict of interest found: refused at assignment (the registry says so) or declared by the
-- expert when declining. Their number is the `excluded_experts` the lifecycle receives.
CREATE TABLE expert_conflicts (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program         text        NOT NULL,
    application_no  text        NOT NULL,
    expert_subject  text        NOT NULL,
    source          text        NOT NULL CHECK (source IN ('assignment', 'declined')),
    reasons         jsonb       NOT NULL,
    recorded_by     text        NOT NULL,
    found_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX expert_conflicts_application ON expert_conflicts (application_no);

-- One expert's scores of one product, once: criterion key -> {points, justification}.
CREATE TABLE expert_scores (
    application_no   text        NOT NULL,
    expert_subject   text        NOT NULL,
    program          text        NOT NULL,
    scores           jsonb       NOT NULL,
    weighted_x100    integer     NOT NULL CHECK (weighted_x100 >= 0),
    idempotency_key  text        NOT NULL UNIQUE,
    submitted_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_no, expert_subject)
);

-- The product's score once all its experts scored (awards/shenzhen.py product_score), and when the
-- lifecycle accepted it.
CREATE TABLE product_scores (
    application_no    text        PRIMARY KEY,
    program           text        NOT NULL,
    applicant_uscc    text        NOT NULL,
    score_units       integer     NOT NULL,
    score_text        text        NOT NULL,
    tier              integer,
    criteria          jsonb       NOT NULL,   -- what the lifecycle received: criterion -> points
    excluded_experts  integer     NOT NULL,
    breakdown         jsonb       NOT NULL,
    computed_at       timestamptz NOT NULL DEFAULT now(),
    recorded_at       timestamptz
);
CREATE INDEX product_scores_program ON product_scores (program);

-- Amounts of confirmed tierings: the Shenzhen yearly cap per applicant (02(四)) sums the rows of
-- its cap year the lifecycle accepted (recorded_at). Confirmations are serialised by an advisory lock.
CREATE TABLE tier_amounts (
    application_no   text        PRIMARY KEY,
    program          text        NOT NULL,
    applicant_uscc   text        NOT NULL,
    cap_year         integer     NOT NULL,
    tier             integer,
    amount_fen       bigint      NOT NULL CHECK (amount_fen >= 0),
    breakdown        jsonb       NOT NULL,
    idempotency_key  text        NOT NULL,
    confirmed_by     text        NOT NULL,
    confirmed_at     timestamptz NOT NULL DEFAULT now(),
    recorded_at      timestamptz
);
CREATE INDEX tier_amounts_applicant ON tier_amounts (applicant_uscc, cap_year);

-- Tasks: one expert_scoring task per assigned expert (assignee = the expert), besides the
-- administrator's (compose the panel, or replace an expert who declined). Other steps keep one open
-- task per application and step.
DROP INDEX tasks_one_open_per_step;
CREATE UNIQUE INDEX tasks_one_open_per_step ON tasks (application_no, step) WHERE closed_at IS NULL AND role <> 'expert';
CREATE UNIQUE INDEX tasks_one_open_per_expert ON tasks (application_no, step, assignee) WHERE closed_at IS NULL AND role = 'expert';
