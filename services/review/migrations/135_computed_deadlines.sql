-- Deadlines counted in working days (the paper deadline), as review's deadline activity computed
-- them: with the working calendar's data version they were counted with, so the console's 期限 tab
-- can say which holiday schedule a deadline rests on. Written by the activity (idempotent: a retry
-- that computes the same deadline again keeps one row, the latest calendar version it returned).
CREATE TABLE computed_deadlines (
    application_no    text        NOT NULL,
    program           text        NOT NULL,
    kind              text        NOT NULL,          -- DeadlineRecord.kind ("paper")
    trigger_at        timestamptz NOT NULL,          -- what started the clock (SMS delivered, phone confirmation)
    trigger_kind      text        NOT NULL,
    deadline          timestamptz NOT NULL,
    working_days      integer     NOT NULL,
    calendar_version  text        NOT NULL,
    computed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_no, kind, trigger_at)
);
CREATE INDEX computed_deadlines_deadline ON computed_deadlines (application_no, deadline);
