-- A claim on an Idempotency-Key has an owner (the request running it) and a
-- lease the owner renews while it runs: another request may take the key
-- over only once the lease has lapsed (its owner died), and the owner
-- records its response only while it still holds the claim.
-- `headers` keeps the response headers a replay must repeat (Retry-After,
-- ETag, Location); `subject_id` names the subject whose own key sealed
-- `body` (a response holding personal data), so erasure reaches it.
ALTER TABLE idempotency_keys
    ADD COLUMN owner       UUID,
    ADD COLUMN lease_until TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN headers     JSONB,
    ADD COLUMN subject_id  UUID;
