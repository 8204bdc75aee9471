-- Housekeeping (engine/scheduler.py, docs/housekeeping.md): job leases, incidents, device status, job
-- watermarks and the hourly reconciliation.
-- The T-SQL twin of sql/postgresql/005_housekeeping.sql. Batches are separated by GO lines.

SET ANSI_NULLS ON;
SET ANSI_PADDING ON;
SET ANSI_WARNINGS ON;
SET ARITHABORT ON;
SET CONCAT_NULL_YIELDS_NULL ON;
SET QUOTED_IDENTIFIER ON;
SET NUMERIC_ROUNDABORT OFF;
GO

-- One row per scheduled job: the engine node that runs it until expires_at (the leader for that job).
IF OBJECT_ID(N'dbo.job_leases', N'U') IS NULL
CREATE TABLE dbo.job_leases (
    name         NVARCHAR(100) NOT NULL CONSTRAINT pk_job_leases PRIMARY KEY,
    holder       NVARCHAR(100) NOT NULL,                 -- the engine node's name
    acquired_at  DATETIME2(6) NOT NULL,                  -- when this holder took it (kept while it renews)
    expires_at   DATETIME2(6) NOT NULL                   -- after this any node may take it over
);
GO

-- Where a job left off (e.g. the last device_readings.id the stale-device job has seen).
IF OBJECT_ID(N'dbo.job_state', N'U') IS NULL
CREATE TABLE dbo.job_state (
    name        NVARCHAR(200) NOT NULL CONSTRAINT pk_job_state PRIMARY KEY,
    value       NVARCHAR(200) NOT NULL,
    updated_at  DATETIME2(6) NOT NULL
);
GO

-- Operational problems (not clinical alerts): open -> acknowledged -> resolved, with who and when.
-- Summaries and details never carry patient data.
IF OBJECT_ID(N'dbo.incidents', N'U') IS NULL
CREATE TABLE dbo.incidents (
    id               BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT pk_incidents PRIMARY KEY,
    kind             NVARCHAR(30) NOT NULL CONSTRAINT ck_incidents_kind
        CHECK (kind IN (N'device_offline', N'destination_down', N'dead_letters', N'reconciliation_mismatch')),
    subject          NVARCHAR(200) NOT NULL,             -- what it is about: a device id, a destination, route/hour
    state            NVARCHAR(20) NOT NULL
        CONSTRAINT ck_incidents_state CHECK (state IN (N'open', N'acknowledged', N'resolved')),
    severity         NVARCHAR(10) NOT NULL
        CONSTRAINT ck_incidents_severity CHECK (severity IN (N'warning', N'critical')),
    summary          NVARCHAR(400) NOT NULL,
    details          NVARCHAR(MAX) NULL,                 -- JSON object
    opened_at        DATETIME2(6) NOT NULL,
    last_seen_at     DATETIME2(6) NOT NULL,              -- the last check that found the problem
    occurrences      INT NOT NULL,                       -- how many checks found it
    acknowledged_at  DATETIME2(6) NULL,
    acknowledged_by  NVARCHAR(100) NULL,
    resolved_at      DATETIME2(6) NULL,
    resolved_by      NVARCHAR(100) NULL                  -- 'system' when a check found it fixed
);
GO
-- At most one open or acknowledged incident per kind and subject.
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.incidents') AND name = N'ux_incidents_active')
CREATE UNIQUE NONCLUSTERED INDEX ux_incidents_active ON dbo.incidents (kind, subject)
    WHERE state <> N'resolved';
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.incidents') AND name = N'ix_incidents_state')
CREATE NONCLUSTERED INDEX ix_incidents_state ON dbo.incidents (state, opened_at);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.incidents') AND name = N'ix_incidents_opened')
CREATE NONCLUSTERED INDEX ix_incidents_opened ON dbo.incidents (opened_at);
GO

-- Every device the engine has heard from, as the stale-device job learned it from the readings.
IF OBJECT_ID(N'dbo.device_status', N'U') IS NULL
CREATE TABLE dbo.device_status (
    device_id                  NVARCHAR(200) NOT NULL CONSTRAINT pk_device_status PRIMARY KEY,
    route                      NVARCHAR(100) NOT NULL,   -- the route of its latest reading
    patient_id                 NVARCHAR(100) NOT NULL,   -- the patient of its latest reading
    last_seen_at               DATETIME2(6) NOT NULL,    -- when its latest reading was stored
    expected_interval_seconds  INT NOT NULL,             -- as configured at the last check; 0: not watched
    offline_since              DATETIME2(6) NULL         -- set while it is overdue
);
GO

-- Per route and hour of receipt: messages received and stored, observation records forwarded to outbox
-- destinations and confirmed by them, and the records found missing, delayed or duplicated.
IF OBJECT_ID(N'dbo.reconciliation', N'U') IS NULL
CREATE TABLE dbo.reconciliation (
    id           BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT pk_reconciliation PRIMARY KEY,
    route        NVARCHAR(100) NOT NULL,
    hour_start   DATETIME2(6) NOT NULL,                  -- the hour's first moment (UTC)
    received     INT NOT NULL,
    stored       INT NOT NULL,
    forwarded    INT NOT NULL,
    confirmed    INT NOT NULL,
    missing      INT NOT NULL,
    delayed      INT NOT NULL,
    duplicated   INT NOT NULL,
    computed_at  DATETIME2(6) NOT NULL
);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.reconciliation') AND name = N'ux_reconciliation_hour')
CREATE UNIQUE NONCLUSTERED INDEX ux_reconciliation_hour ON dbo.reconciliation (route, hour_start);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.reconciliation') AND name = N'ix_reconciliation_hour')
CREATE NONCLUSTERED INDEX ix_reconciliation_hour ON dbo.reconciliation (hour_start);
GO
