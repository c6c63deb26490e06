-- Idempotency-Key: the first response to a POST, replayed for a repeat.
-- `scope` and `fingerprint` are keyed hashes (of the credentials, and of the
-- path and body); `body` is sealed under the KEK because a response can hold
-- a secret shown once. `status` is NULL while the first request runs.
CREATE TABLE idempotency_keys (
    scope        BYTEA       NOT NULL,
    key          TEXT        NOT NULL,
    fingerprint  BYTEA       NOT NULL,
    status       SMALLINT,
    content_type TEXT,
    position     BIGINT,
    body         BYTEA,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
