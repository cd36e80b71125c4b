-- A CloudEvents id is unique only per `source` (issue 14, defect 1): a Shenzhen submission that
-- reused an id a Longgang portal had used was taken for a redelivery and vanished. The inbox, the
-- inbound events and the versions are keyed on (source, id) from here on.

-- The inbox (its `source` column: shared migration 005): intake's rows get their event's source.
UPDATE inbox i SET source = e.source FROM inbound_events e WHERE i.consumer = 'intake.inbound' AND e.event_id = i.event_id;

ALTER TABLE inbound_events DROP CONSTRAINT inbound_events_pkey, ADD PRIMARY KEY (source, event_id);
CREATE INDEX inbound_events_id ON inbound_events (event_id);

ALTER TABLE application_versions ADD COLUMN event_source text NOT NULL DEFAULT '';
UPDATE application_versions v SET event_source = e.source FROM inbound_events e WHERE e.event_id = v.event_id;
ALTER TABLE application_versions DROP CONSTRAINT application_versions_event_id_key,
    ADD CONSTRAINT application_versions_event_key UNIQUE (event_source, event_id);
ALTER TABLE application_versions ALTER COLUMN event_source DROP DEFAULT;
