-- How far the notice mailer has read the notifications read model: the
-- notifications up to this log position have their mail in the outbox.
CREATE TABLE mail_notice_checkpoint (
    id       INT PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL
);
INSERT INTO mail_notice_checkpoint (id, position)
    VALUES (1, (SELECT COALESCE(max(global_position), 0) FROM events));
