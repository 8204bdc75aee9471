-- The outbox: what each destination (the EHR over SOAP, notifications) still has to be sent, written in the
-- transaction that stores the message, so nothing stored is forgotten and nothing unstored is sent.
-- The SQLite twin of sql/postgresql/004_outbox.sql.

CREATE TABLE IF NOT EXISTS outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    destination      VARCHAR(100) NOT NULL,             -- the destination's name in its route file
    route            VARCHAR(100) NOT NULL,
    kind             VARCHAR(20) NOT NULL CHECK (kind IN ('observations', 'alert', 'alert_resolved')),
    idempotency_key  VARCHAR(200) NOT NULL,             -- the same on every attempt: the receiver can tell a resend
    message_id       BIGINT REFERENCES messages (id),
    alert_id         BIGINT REFERENCES alerts (id),
    patient_id       VARCHAR(100) NOT NULL,             -- order is kept per destination and patient
    payload          TEXT NOT NULL,                     -- the JSON document sent (docs/outbox.md)
    state            VARCHAR(20) NOT NULL CHECK (state IN ('PENDING', 'SENDING', 'SENT', 'DEAD', 'SUPPRESSED')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMP NOT NULL,
    claimed_by       VARCHAR(100),                      -- the engine node sending it (state SENDING)
    claimed_until    TIMESTAMP,                         -- after this the claim lapses and the row is PENDING again
    remote_id        VARCHAR(200),                      -- the receiver's id for the record
    last_error       TEXT,
    created_at       TIMESTAMP NOT NULL,
    sent_at          TIMESTAMP
);
CREATE UNIQUE INDEX IF NOT EXISTS ux_outbox_key ON outbox (destination, idempotency_key);
-- The queue: rows still to send, per destination and patient, oldest first.
CREATE INDEX IF NOT EXISTS ix_outbox_queue ON outbox (destination, patient_id, id) WHERE state IN ('PENDING', 'SENDING');
CREATE INDEX IF NOT EXISTS ix_outbox_state ON outbox (state, destination, created_at);
CREATE INDEX IF NOT EXISTS ix_outbox_message ON outbox (message_id);
CREATE INDEX IF NOT EXISTS ix_outbox_alert ON outbox (alert_id);

-- Every delivery attempt with its outcome: the audit trail of what was sent, when, and what came back.
CREATE TABLE IF NOT EXISTS outbox_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id    BIGINT NOT NULL REFERENCES outbox (id),
    attempt      INTEGER NOT NULL,
    node         VARCHAR(100) NOT NULL,
    started_at   TIMESTAMP NOT NULL,
    duration_ms  INTEGER NOT NULL,
    outcome      VARCHAR(10) NOT NULL CHECK (outcome IN ('sent', 'retry', 'dead')),
    remote_id    VARCHAR(200),
    error        TEXT
);
CREATE INDEX IF NOT EXISTS ix_outbox_attempts_row ON outbox_attempts (outbox_id);
CREATE INDEX IF NOT EXISTS ix_outbox_attempts_started ON outbox_attempts (started_at);

-- Operators pause and resume a destination; its rows wait in the queue meanwhile.
CREATE TABLE IF NOT EXISTS destinations (
    name        VARCHAR(100) PRIMARY KEY,
    paused      BOOLEAN NOT NULL,
    changed_at  TIMESTAMP NOT NULL,
    changed_by  VARCHAR(100) NOT NULL
);
