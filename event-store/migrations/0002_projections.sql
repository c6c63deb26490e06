-- One row per generation of each projection. A generation owns a schema
-- (rm_<name>_g<generation>) filled from position 0; exactly one generation per
-- name is active and exposed through views in schema rm. The checkpoint row is
-- locked FOR UPDATE SKIP LOCKED inside every batch transaction: that lock is
-- the fence that keeps one runner per generation across processes.
CREATE TABLE projection_generations (
    name        TEXT        NOT NULL,
    generation  INT         NOT NULL,
    version     INT         NOT NULL,
    position    BIGINT      NOT NULL DEFAULT 0,
    state       TEXT        NOT NULL CHECK (state IN ('building', 'active', 'retired')),
    error       TEXT,
    error_position BIGINT,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (name, generation)
);
CREATE UNIQUE INDEX projection_one_active ON projection_generations (name) WHERE state = 'active';

CREATE SCHEMA IF NOT EXISTS rm;
