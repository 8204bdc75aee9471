-- VitalsStream schema for SQLite (the embedded default). Times are UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'.
-- Applied by `vitalsstream db upgrade` and at engine start; by hand: sqlite3 var/vitalsstream.db < 001_schema.sql

CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    name        VARCHAR(200) NOT NULL,
    checksum    VARCHAR(64) NOT NULL,
    applied_at  TIMESTAMP NOT NULL
);

-- Every message received, whatever became of it: the audit trail and the duplicate check.
CREATE TABLE IF NOT EXISTS messages (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    route                VARCHAR(100) NOT NULL,
    control_id           VARCHAR(200) NOT NULL,          -- MSH-10
    sending_application  VARCHAR(227) NOT NULL,          -- MSH-3
    sending_facility     VARCHAR(227) NOT NULL,          -- MSH-4
    message_type         VARCHAR(20) NOT NULL,           -- MSH-9, e.g. ORU^R01
    version              VARCHAR(10) NOT NULL,           -- MSH-12
    content_hash         VARCHAR(64) NOT NULL,           -- SHA-256 of the bytes received
    raw                  TEXT,                           -- NULL once retention has pruned it
    peer                 VARCHAR(200),
    status               VARCHAR(20) NOT NULL CHECK (status IN ('RECEIVED', 'FILTERED', 'TRANSFORMED', 'STORED', 'ERROR')),
    ack_code             VARCHAR(2),
    ack                  TEXT,
    error                TEXT,
    reading_count        INTEGER NOT NULL DEFAULT 0,
    duplicate_of         BIGINT REFERENCES messages (id),
    reprocess_of         BIGINT REFERENCES messages (id),    -- an operator sent this message's raw content again
    received_at          TIMESTAMP NOT NULL,
    processed_at         TIMESTAMP
);
-- One stored message per sender, facility and control id; rejected, filtered and audit copies may repeat it.
CREATE UNIQUE INDEX IF NOT EXISTS ux_messages_key ON messages (sending_application, sending_facility, control_id)
    WHERE duplicate_of IS NULL AND status = 'STORED';
-- The duplicate check looks a batch up by control id (the selective column) first.
CREATE INDEX IF NOT EXISTS ix_messages_control_id ON messages (control_id, sending_application, sending_facility);
CREATE INDEX IF NOT EXISTS ix_messages_received ON messages (received_at);
CREATE INDEX IF NOT EXISTS ix_messages_status ON messages (status, received_at);

CREATE TABLE IF NOT EXISTS device_readings (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id     BIGINT NOT NULL REFERENCES messages (id),
    patient_id     VARCHAR(100) NOT NULL,
    device_id      VARCHAR(200) NOT NULL,
    vital          VARCHAR(30) NOT NULL,
    value          REAL NOT NULL,           -- in the canonical unit
    unit           VARCHAR(20) NOT NULL,                -- UCUM
    observed_at    TIMESTAMP NOT NULL,
    status         VARCHAR(1) NOT NULL,                 -- OBX-11
    source_system  VARCHAR(50) NOT NULL,
    source_code    VARCHAR(100) NOT NULL,
    source_value   VARCHAR(100) NOT NULL,
    source_unit    VARCHAR(100) NOT NULL,
    comparator     VARCHAR(2) NOT NULL DEFAULT '' CHECK (comparator IN ('', '<', '>', '<=', '>=')),  -- SN bound
    created_at     TIMESTAMP NOT NULL
);
-- Covers the alert evaluation's windows (value, message_id): they are read from the index alone.
CREATE INDEX IF NOT EXISTS ix_readings_patient ON device_readings (patient_id, vital, observed_at, value, message_id);
CREATE INDEX IF NOT EXISTS ix_readings_device ON device_readings (device_id, observed_at);
CREATE INDEX IF NOT EXISTS ix_readings_message ON device_readings (message_id);

-- Alert bands: global rows (no patient, no device), per-patient and per-device overrides.
-- A value strictly beyond a warning bound is a warning, strictly beyond a critical bound is critical.
CREATE TABLE IF NOT EXISTS alert_thresholds (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    vital          VARCHAR(30) NOT NULL,
    patient_id     VARCHAR(100),
    device_id      VARCHAR(200),
    unit           VARCHAR(20) NOT NULL,
    critical_low   REAL,
    warning_low    REAL,
    warning_high   REAL,
    critical_high  REAL,
    updated_at     TIMESTAMP NOT NULL,
    CHECK (patient_id IS NULL OR device_id IS NULL)
);
CREATE UNIQUE INDEX IF NOT EXISTS ux_thresholds_global ON alert_thresholds (vital)
    WHERE patient_id IS NULL AND device_id IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS ux_thresholds_patient ON alert_thresholds (vital, patient_id)
    WHERE patient_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS ux_thresholds_device ON alert_thresholds (vital, device_id)
    WHERE device_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS alerts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    reading_id       BIGINT NOT NULL REFERENCES device_readings (id),   -- the reading that raised it
    last_reading_id  BIGINT NOT NULL REFERENCES device_readings (id),   -- the newest reading behind it
    patient_id       VARCHAR(100) NOT NULL,
    device_id        VARCHAR(200) NOT NULL,
    vital            VARCHAR(30) NOT NULL,                              -- 'heart_rate,spo2' for trend
    severity         VARCHAR(10) NOT NULL CHECK (severity IN ('warning', 'critical')),
    kind             VARCHAR(20) NOT NULL CHECK (kind IN ('threshold', 'trend')),
    state            VARCHAR(20) NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    message          VARCHAR(400) NOT NULL,
    value            REAL NOT NULL,
    last_value       REAL NOT NULL,
    occurrences      INTEGER NOT NULL,
    first_seen_at    TIMESTAMP NOT NULL,
    last_seen_at     TIMESTAMP NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    acknowledged_at  TIMESTAMP,
    acknowledged_by  VARCHAR(100),
    resolved_at      TIMESTAMP,
    resolved_by      VARCHAR(100)
);
-- At most one active (open or acknowledged) alert per patient, vital, severity and kind.
CREATE UNIQUE INDEX IF NOT EXISTS ux_alerts_active ON alerts (patient_id, vital, severity, kind)
    WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS ix_alerts_state ON alerts (state, severity, last_seen_at);
CREATE INDEX IF NOT EXISTS ix_alerts_patient ON alerts (patient_id, last_seen_at);
