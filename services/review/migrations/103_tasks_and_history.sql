-- The reviewers' read models, built from subsidy.application.state-changed.v1 (and notify's phone
-- tasks) by review's own subscribers (services/review/tasks/): where each application is, its
-- history, and the tasks waiting for a person (待办) and closed by one (已办).

-- Where each application is, as the last state change said: the program and status the API checks
-- before it asks the workflow (which stays authoritative).
CREATE TABLE applications (
    application_no  text        PRIMARY KEY,
    program         text        NOT NULL,
    status          text        NOT NULL,
    version         integer,
    deadline        timestamptz,
    status_since    timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applications_program_status ON applications (program, status);

-- A copy of every state change, for the application view's history.
CREATE TABLE state_changes (
    event_id        text        PRIMARY KEY,
    program         text        NOT NULL,
    application_no  text        NOT NULL,
    from_status     text,
    to_status       text        NOT NULL,
    reason          text,
    actor           text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    deadline        timestamptz,
    version         integer,
    fields          jsonb       NOT NULL DEFAULT '{}'::jsonb,  -- typed fields the event carries beyond these
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX state_changes_application ON state_changes (application_no, occurred_at);

-- Tasks: one per application and step that waits for a person. Opened when the application
-- reaches the step, closed when it leaves it (or by the decision taken through the API, which
-- names who closed it).
CREATE TABLE tasks (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program           text        NOT NULL,
    application_no    text        NOT NULL,
    step              text        NOT NULL CHECK (step IN (
                          'online_review', 'back_office_review', 'confirm_notice_by_phone', 'paper',
                          'formal_pre_review', 'expert_scoring', 'tiering', 'award', 'publication')),
    role              text        NOT NULL,   -- the StaffRole that works it
    opened_status     text,                   -- the application's status when the task opened
    assignee          text,                   -- a subject, when the administrator assigned it
    opened_at         timestamptz NOT NULL,
    deadline          timestamptz,
    closed_at         timestamptz,
    closed_by         text,                   -- the actor id (staff:<sub>, system:lifecycle, ...)
    closed_to_status  text,
    source_event_id   text        NOT NULL,   -- the event that opened it (idempotent opening)
    CHECK ((closed_at IS NULL) = (closed_by IS NULL))
);
-- At most one open task per application and step; the event that opened a task opens it once.
CREATE UNIQUE INDEX tasks_one_open_per_step ON tasks (application_no, step) WHERE closed_at IS NULL;
CREATE UNIQUE INDEX tasks_opened_by_event ON tasks (source_event_id, step);
-- The list query: open tasks by program and role, by deadline or by age.
CREATE INDEX tasks_open_by_deadline ON tasks (program, role, deadline, opened_at) WHERE closed_at IS NULL;
CREATE INDEX tasks_open_by_age ON tasks (program, role, opened_at) WHERE closed_at IS NULL;
CREATE INDEX tasks_closed_by ON tasks (closed_by, closed_at DESC) WHERE closed_at IS NOT NULL;
CREATE INDEX tasks_application ON tasks (application_no, opened_at);

-- Every action taken through the API and accepted: the answer a repeated Idempotency-Key gets.
CREATE TABLE decisions (
    idempotency_key  text        PRIMARY KEY,
    program          text        NOT NULL,
    application_no   text,                    -- NULL for a program's publication
    action           text        NOT NULL,
    actor_subject    text        NOT NULL,
    actor_id         text        NOT NULL,
    actor_role       text        NOT NULL,
    input            jsonb       NOT NULL,
    outcome_status   text,
    answer           jsonb       NOT NULL,
    decided_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decisions_application ON decisions (application_no, decided_at);

-- Experts assigned to an application by the program's administrator.
CREATE TABLE expert_assignments (
    program          text        NOT NULL,
    application_no   text        NOT NULL,
    expert_subject   text        NOT NULL,
    assigned_by      text        NOT NULL,
    assigned_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_no, expert_subject)
);
CREATE INDEX expert_assignments_expert ON expert_assignments (expert_subject);
