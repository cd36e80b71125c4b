-- Public-notice lists (公示) as published: one row per notice, one per application on it.
CREATE TABLE publication_notices (
    notice_id        text        PRIMARY KEY,
    program          text        NOT NULL,
    published_at     timestamptz NOT NULL,
    published_by     text        NOT NULL,
    entries          integer     NOT NULL,
    total_award_fen  bigint      NOT NULL CHECK (total_award_fen >= 0),
    recorded_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE publication_entries (
    notice_id       text    NOT NULL REFERENCES publication_notices (notice_id),
    application_no  text    NOT NULL,
    award_fen       bigint  NOT NULL CHECK (award_fen >= 0),
    tier            integer,
    PRIMARY KEY (notice_id, application_no)
);
