-- The public notice (公示) as people read it: each published list of a program batch, its versions
-- (never edited in place: an upheld objection makes a new version), the entries of each version,
-- and the objections (异议) filed during the notice period.
CREATE TABLE notice_lists (
    notice_id         text        PRIMARY KEY,
    program           text        NOT NULL,
    published_at      timestamptz NOT NULL,
    published_by      text        NOT NULL,          -- actor id (staff:<sub>)
    period_starts_at  timestamptz NOT NULL,
    period_ends_at    timestamptz NOT NULL,          -- N working days, the office's closing time
    working_days      integer     NOT NULL CHECK (working_days >= 1),
    final_version     integer,                       -- set once the period ended with no open objection
    finalized_at      timestamptz,
    CHECK ((final_version IS NULL) = (finalized_at IS NULL)),
    CHECK (period_ends_at > period_starts_at)
);
CREATE INDEX notice_lists_program ON notice_lists (program, published_at DESC);

CREATE TABLE notice_list_versions (
    notice_id     text        NOT NULL REFERENCES notice_lists (notice_id),
    version       integer     NOT NULL CHECK (version >= 1),
    created_at    timestamptz NOT NULL,
    created_by    text        NOT NULL,
    reason        text,                               -- why this version (the upheld objection's reason)
    objection_id  bigint,                             -- the objection that made it (NULL for version 1)
    PRIMARY KEY (notice_id, version)
);

CREATE TABLE notice_entries (
    notice_id        text    NOT NULL,
    version          integer NOT NULL,
    application_no   text    NOT NULL,
    workflow_id      text    NOT NULL,
    enterprise_name  text    NOT NULL,
    project          text    NOT NULL,
    tier             integer,
    award_fen        bigint  NOT NULL CHECK (award_fen >= 0),
    PRIMARY KEY (notice_id, version, application_no),
    FOREIGN KEY (notice_id, version) REFERENCES notice_list_versions (notice_id, version)
);

-- Objections: never anonymous (name and phone required). The phone is personal data: only its
-- masked form is kept (138****5678), which is what the administrator sees.
CREATE TABLE notice_objections (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notice_id        text        NOT NULL REFERENCES notice_lists (notice_id),
    application_no   text        NOT NULL,            -- the entry objected to
    objector_name    text        NOT NULL CHECK (length(objector_name) BETWEEN 1 AND 50),
    phone_masked     text        NOT NULL,
    organisation     text        NOT NULL DEFAULT '',
    grounds          text        NOT NULL CHECK (length(grounds) BETWEEN 1 AND 2000),
    filed_at         timestamptz NOT NULL,
    status           text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'upheld', 'dismissed')),
    decided_at       timestamptz,
    decided_by       text,
    decision_reason  text,
    new_award_fen    bigint      CHECK (new_award_fen >= 0),
    new_tier         integer,
    removed          boolean     NOT NULL DEFAULT false,
    resulting_version integer,
    CHECK ((status = 'open') = (decided_at IS NULL))
);
CREATE INDEX notice_objections_open ON notice_objections (notice_id) WHERE status = 'open';

-- An objection is a task for the program's administrator (step notice_objection).
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_step_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_step_check CHECK (step IN (
    'online_review', 'back_office_review', 'confirm_notice_by_phone', 'paper',
    'formal_pre_review', 'expert_scoring', 'tiering', 'award', 'publication', 'notice_objection'));
