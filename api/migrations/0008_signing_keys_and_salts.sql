-- Token signing keys: random Ed25519 seeds, sealed under the KEK (the log
-- carries only each key's id and public half). A node signs with the newest
-- key of the log; every node finds its seed here.
CREATE TABLE token_signing_keys (
    kid TEXT PRIMARY KEY,
    sealed_seed BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A random salt for each Idempotency-Key, sealed under the KEK: the ids and
-- secrets a keyed command mints derive from it, so a key reused after its
-- retention (or a key reused for another operation) never mints the same
-- secret again. Kept when a first attempt fails with a 5xx, so the retry
-- mints what the first attempt may have recorded.
ALTER TABLE idempotency_keys ADD COLUMN salt BYTEA;
