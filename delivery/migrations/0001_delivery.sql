-- The dispatcher's working state. Not a read model: attempts and leases
-- happen here, and the log records only what people act on (replays,
-- exhausted messages, disabled endpoints). The feeder fills it from the log.
CREATE SCHEMA IF NOT EXISTS delivery;

-- The feeder's checkpoint: one row, locked FOR UPDATE SKIP LOCKED by the
-- node that feeds, so two nodes never fan out the same batch.
CREATE TABLE delivery.feed (
    id INT PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL
);
INSERT INTO delivery.feed (id, position) VALUES (1, 0);

CREATE TABLE delivery.endpoints (
    endpoint_id UUID PRIMARY KEY,
    app_id UUID NOT NULL,
    org_id UUID NOT NULL,
    mode TEXT NOT NULL,
    scheme TEXT NOT NULL,
    url TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    event_types JSONB NOT NULL,
    rate_limit INT,
    status TEXT NOT NULL,
    disabled_reason TEXT,
    -- [{sealed, kek_id, public_key?, until?}]: the current secret first.
    secrets JSONB NOT NULL,
    failing_since TIMESTAMPTZ,
    lease_owner UUID,
    lease_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX endpoints_by_app ON delivery.endpoints (app_id);
CREATE INDEX endpoints_by_org ON delivery.endpoints (org_id);

-- Which app a key belongs to, for routing api_key.* events.
CREATE TABLE delivery.key_owners (
    key_id UUID PRIMARY KEY,
    app_id UUID NOT NULL,
    org_id UUID NOT NULL,
    mode TEXT NOT NULL
);

-- A message as delivered: the public body, kept until retention purges it.
CREATE TABLE delivery.messages (
    message_id UUID PRIMARY KEY,
    app_id UUID NOT NULL,
    org_id UUID NOT NULL,
    event_type TEXT NOT NULL,
    position BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    body BYTEA
);
CREATE INDEX messages_by_time ON delivery.messages (created_at);

-- One message to one endpoint, once per round (0, then a replay's position).
-- seq orders an endpoint's deliveries: the log position that caused it.
CREATE TABLE delivery.deliveries (
    id BIGSERIAL PRIMARY KEY,
    endpoint_id UUID NOT NULL,
    message_id UUID NOT NULL,
    round BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INT NOT NULL DEFAULT 0,
    next_at TIMESTAMPTZ,
    last_status INT,
    created_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    UNIQUE (endpoint_id, message_id, round)
);
CREATE INDEX deliveries_due ON delivery.deliveries (next_at) WHERE status = 'pending';
CREATE INDEX deliveries_lane ON delivery.deliveries (endpoint_id, seq) WHERE status = 'pending';
CREATE INDEX deliveries_log ON delivery.deliveries (endpoint_id, created_at, id);

CREATE TABLE delivery.attempts (
    delivery_id BIGINT NOT NULL REFERENCES delivery.deliveries (id),
    n INT NOT NULL,
    endpoint_id UUID NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    status_code INT,
    latency_ms INT NOT NULL,
    error_class TEXT,
    body_excerpt TEXT,
    next_at TIMESTAMPTZ,
    PRIMARY KEY (delivery_id, n)
);
CREATE INDEX attempts_by_endpoint ON delivery.attempts (endpoint_id, at);
