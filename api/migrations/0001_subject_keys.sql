-- Per-subject data keys (crypto-shredding). Personal data in events is sealed
-- under its subject's key; the key is sealed under the key-encryption key.
-- Deleting a row erases that subject's personal data from the log and every
-- backup of it, while the hash chain (over ciphertext) still verifies.
CREATE TABLE subject_keys (
    subject_id UUID        PRIMARY KEY,
    sealed_key BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
