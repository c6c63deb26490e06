-- The retention key of each day's published webhook payloads, so the
-- retention job finds every day to purge (also days whose messages reached
-- no endpoint) and destroys the day's key in subject_keys.
CREATE TABLE webhook_retention_keys (
    day DATE PRIMARY KEY,
    subject_id UUID NOT NULL
);
