-- The event log. Positions are allocated under the single log_head row lock,
-- so they are gap-free and in commit order; the row also carries the hash of
-- the last event, the link the next append chains from.
CREATE TABLE events (
    global_position BIGINT      PRIMARY KEY,
    stream_id       TEXT        NOT NULL,
    stream_version  BIGINT      NOT NULL,
    event_id        UUID        NOT NULL,
    event_type      TEXT        NOT NULL,
    schema_version  INT         NOT NULL,
    -- json, not jsonb: the hash chain covers the exact bytes written.
    data            JSON        NOT NULL,
    metadata        JSON        NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    prev_hash       BYTEA       NOT NULL,
    hash            BYTEA       NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_position_positive CHECK (global_position > 0),
    CONSTRAINT events_version_positive CHECK (stream_version > 0)
);

-- Rebuilds of projections that only care about a few types.
CREATE INDEX events_type_position_idx ON events (event_type, global_position);

CREATE TABLE log_head (
    id       BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    position BIGINT  NOT NULL,
    hash     BYTEA   NOT NULL
);
INSERT INTO log_head (id, position, hash) VALUES (TRUE, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- The log is immutable: refuse UPDATE, DELETE and TRUNCATE outright.
CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();
