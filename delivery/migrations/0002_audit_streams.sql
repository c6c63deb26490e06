-- Audit log streams: endpoints of an organisation, not of an app, that
-- receive its audit entries (`audit.entry`) recorded after their creation
-- (`from_position`). A second feeder turns the audit read model into
-- their messages, from a checkpoint of its own.
ALTER TABLE delivery.endpoints ALTER COLUMN app_id DROP NOT NULL;
ALTER TABLE delivery.endpoints ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE delivery.endpoints ADD COLUMN from_position BIGINT NOT NULL DEFAULT 0;
CREATE INDEX endpoints_audit ON delivery.endpoints (org_id) WHERE kind = 'audit';

ALTER TABLE delivery.messages ALTER COLUMN app_id DROP NOT NULL;

CREATE TABLE delivery.audit_feed (
    id INT PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL
);
INSERT INTO delivery.audit_feed (id, position) VALUES (1, 0);
