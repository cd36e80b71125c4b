-- A CloudEvents id is unique only per `source` (issue 14, defect 1): the inbox records the event's
-- source with its id, and an event is a redelivery only when both match. Platform events (our own
-- uuids) keep source ''. Intake's migration 102 fills the source of the rows it had already.
ALTER TABLE inbox ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT '';
ALTER TABLE inbox DROP CONSTRAINT inbox_pkey, ADD PRIMARY KEY (consumer, source, event_id);
