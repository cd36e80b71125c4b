-- The Longgang batch budget applied (按比例核减, services/review/awards/budget.py): each time the
-- program administrator applies the budget to a program batch's unpublished public-notice list, and
-- the amount each application on the list was revised to. `recorded_at` is set once the application's
-- lifecycle accepted the revision (update revise_award); a row without it was planned, not applied.
CREATE TABLE budget_applications (
    id                    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program               text        NOT NULL,
    idempotency_key       text        NOT NULL UNIQUE,
    budget_fen            bigint      NOT NULL CHECK (budget_fen >= 0),
    published_before_fen  bigint      NOT NULL CHECK (published_before_fen >= 0), -- on lists of the program already published
    available_fen         bigint      NOT NULL CHECK (available_fen >= 0),        -- budget - published_before (never negative)
    confirmed_total_fen   bigint      NOT NULL CHECK (confirmed_total_fen >= 0),  -- the list's awards as confirmed
    revised_total_fen     bigint      NOT NULL CHECK (revised_total_fen >= 0),    -- the list's awards after proration
    applied_by            text        NOT NULL,
    applied_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX budget_applications_program ON budget_applications (program, applied_at DESC);

CREATE TABLE award_revisions (
    budget_application_id  bigint      NOT NULL REFERENCES budget_applications (id),
    application_no         text        NOT NULL,
    confirmed_fen          bigint      NOT NULL CHECK (confirmed_fen >= 0),
    listed_fen             bigint      NOT NULL CHECK (listed_fen >= 0),   -- on the list before this application
    revised_fen            bigint      NOT NULL CHECK (revised_fen >= 0 AND revised_fen <= confirmed_fen),
    recorded_at            timestamptz,
    PRIMARY KEY (budget_application_id, application_no)
);
CREATE INDEX award_revisions_application ON award_revisions (application_no, recorded_at DESC);
