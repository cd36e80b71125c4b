-- Messages this service sent to <topic>.dlq, recorded before the DLQ publish: for operators
-- (`subsidy dlq list`) and counts. Key and offset only: the message itself is on the DLQ topic.
CREATE TABLE dead_letters (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    message_key     text,
    reason          text        NOT NULL,
    detail          text        NOT NULL,
    dead_lettered_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic, kafka_partition, kafka_offset)
);
