-- Housekeeping (engine/scheduler.py, docs/housekeeping.md): job leases, incidents, device status, job
-- watermarks and the hourly reconciliation. The SQLite twin of sql/postgresql/005_housekeeping.sql.

-- One row per scheduled job: the engine node that runs it until expires_at (the leader for that job).
CREATE TABLE IF NOT EXISTS job_leases (
    name         VARCHAR(100) PRIMARY KEY,
    holder       VARCHAR(100) NOT NULL,                 -- the engine node's name
    acquired_at  TIMESTAMP NOT NULL,                    -- when this holder took it (kept while it renews)
    expires_at   TIMESTAMP NOT NULL                     -- after this any node may take it over
);

-- Where a job left off (e.g. the last device_readings.id the stale-device job has seen).
CREATE TABLE IF NOT EXISTS job_state (
    name        VARCHAR(200) PRIMARY KEY,
    value       VARCHAR(200) NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

-- Operational problems (not clinical alerts): open -> acknowledged -> resolved, with who and when.
-- Summaries and details never carry patient data.
CREATE TABLE IF NOT EXISTS incidents (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             VARCHAR(30) NOT NULL
        CHECK (kind IN ('device_offline', 'destination_down', 'dead_letters', 'reconciliation_mismatch')),
    subject          VARCHAR(200) NOT NULL,             -- what it is about: a device id, a destination, route/hour
    state            VARCHAR(20) NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    severity         VARCHAR(10) NOT NULL CHECK (severity IN ('warning', 'critical')),
    summary          VARCHAR(400) NOT NULL,
    details          TEXT,                              -- JSON object
    opened_at        TIMESTAMP NOT NULL,
    last_seen_at     TIMESTAMP NOT NULL,                -- the last check that found the problem
    occurrences      INTEGER NOT NULL,                  -- how many checks found it
    acknowledged_at  TIMESTAMP,
    acknowledged_by  VARCHAR(100),
    resolved_at      TIMESTAMP,
    resolved_by      VARCHAR(100)                       -- 'system' when a check found it fixed
);
-- At most one open or acknowledged incident per kind and subject.
CREATE UNIQUE INDEX IF NOT EXISTS ux_incidents_active ON incidents (kind, subject) WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS ix_incidents_state ON incidents (state, opened_at);
CREATE INDEX IF NOT EXISTS ix_incidents_opened ON incidents (opened_at);

-- Every device the engine has heard from, as the stale-device job learned it from the readings.
CREATE TABLE IF NOT EXISTS device_status (
    device_id                  VARCHAR(200) PRIMARY KEY,
    route                      VARCHAR(100) NOT NULL,   -- the route of its latest reading
    patient_id                 VARCHAR(100) NOT NULL,   -- the patient of its latest reading
    last_seen_at               TIMESTAMP NOT NULL,      -- when its latest reading was stored
    expected_interval_seconds  INTEGER NOT NULL,        -- as configured at the last check; 0: not watched
    offline_since              TIMESTAMP                -- set while it is overdue
);

-- Per route and hour of receipt: messages received and stored, observation records forwarded to outbox
-- destinations and confirmed by them, and the records found missing, delayed or duplicated.
CREATE TABLE IF NOT EXISTS reconciliation (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    route        VARCHAR(100) NOT NULL,
    hour_start   TIMESTAMP NOT NULL,                    -- the hour's first moment (UTC)
    received     INTEGER NOT NULL,
    stored       INTEGER NOT NULL,
    forwarded    INTEGER NOT NULL,
    confirmed    INTEGER NOT NULL,
    missing      INTEGER NOT NULL,
    delayed      INTEGER NOT NULL,
    duplicated   INTEGER NOT NULL,
    computed_at  TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ux_reconciliation_hour ON reconciliation (route, hour_start);
CREATE INDEX IF NOT EXISTS ix_reconciliation_hour ON reconciliation (hour_start);
