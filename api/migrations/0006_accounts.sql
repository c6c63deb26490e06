-- Account state that must never enter the immutable log: it changes, and
-- erasure must destroy it.

-- One argon2id hash per account (the PHC string).
CREATE TABLE credentials (
    user_id       UUID PRIMARY KEY,
    password_hash TEXT NOT NULL,
    changed_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Single-use tokens mailed to a person (address verification, invitation,
-- password reset): only their SHA-256 is kept.
CREATE TABLE account_tokens (
    token_hash  BYTEA PRIMARY KEY,
    purpose     TEXT NOT NULL,
    subject     UUID NOT NULL,
    email_index TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX account_tokens_subject_idx ON account_tokens (subject, purpose);
CREATE INDEX account_tokens_expiry_idx ON account_tokens (expires_at);

-- When a session was last used, for the idle timeout. Not a read model: a
-- rebuild must not forget it.
CREATE TABLE session_activity (
    session_id   UUID PRIMARY KEY,
    last_seen_at TIMESTAMPTZ NOT NULL
);

-- The mail outbox. The message (recipient, subject, bodies, links with
-- their tokens) is sealed under the KEK until it is sent, then dropped; the
-- row stays as the record of what was sent to whom (by keyed hash), when,
-- and how it went.
CREATE TABLE mail_outbox (
    mail_id         UUID PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient_index TEXT NOT NULL,
    sealed          BYTEA,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    leased_until    TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at) WHERE status = 'pending';
