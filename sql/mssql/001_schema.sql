-- VitalsStream schema for SQL Server (2016 SP1 or later). All times are UTC (datetime2 without offset).
-- The T-SQL twin of sql/postgresql/001_schema.sql: same tables, columns, lengths, checks and indexes.
-- Applied by `vitalsstream db upgrade`; a DBA may run it by hand with sqlcmd -I -i (it is idempotent).
-- Batches are separated by GO lines.

-- Filtered indexes, and modules that write to tables having them, need these options when they are created.
SET ANSI_NULLS ON;
SET ANSI_PADDING ON;
SET ANSI_WARNINGS ON;
SET ARITHABORT ON;
SET CONCAT_NULL_YIELDS_NULL ON;
SET QUOTED_IDENTIFIER ON;
SET NUMERIC_ROUNDABORT OFF;
GO

IF OBJECT_ID(N'dbo.schema_version', N'U') IS NULL
CREATE TABLE dbo.schema_version (
    version     INT NOT NULL CONSTRAINT pk_schema_version PRIMARY KEY,
    name        NVARCHAR(200) NOT NULL,
    checksum    NVARCHAR(64) NOT NULL,
    applied_at  DATETIME2(6) NOT NULL
);
GO

-- Every message received, whatever became of it: the audit trail and the duplicate check.
IF OBJECT_ID(N'dbo.messages', N'U') IS NULL
CREATE TABLE dbo.messages (
    id                   BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT pk_messages PRIMARY KEY,
    route                NVARCHAR(100) NOT NULL,
    control_id           NVARCHAR(200) NOT NULL,          -- MSH-10
    sending_application  NVARCHAR(227) NOT NULL,          -- MSH-3
    sending_facility     NVARCHAR(227) NOT NULL,          -- MSH-4
    message_type         NVARCHAR(20) NOT NULL,           -- MSH-9, e.g. ORU^R01
    version              NVARCHAR(10) NOT NULL,           -- MSH-12
    content_hash         NVARCHAR(64) NOT NULL,           -- SHA-256 of the bytes received
    raw                  NVARCHAR(MAX) NULL,              -- NULL once retention has pruned it
    peer                 NVARCHAR(200) NULL,
    status               NVARCHAR(20) NOT NULL
        CONSTRAINT ck_messages_status CHECK (status IN (N'RECEIVED', N'FILTERED', N'TRANSFORMED', N'STORED', N'ERROR')),
    ack_code             NVARCHAR(2) NULL,
    ack                  NVARCHAR(MAX) NULL,
    error                NVARCHAR(MAX) NULL,
    reading_count        INT NOT NULL CONSTRAINT df_messages_reading_count DEFAULT 0,
    duplicate_of         BIGINT NULL CONSTRAINT fk_messages_duplicate_of REFERENCES dbo.messages (id),
    reprocess_of         BIGINT NULL CONSTRAINT fk_messages_reprocess_of REFERENCES dbo.messages (id),
    received_at          DATETIME2(6) NOT NULL,
    processed_at         DATETIME2(6) NULL
);
GO

-- One stored message per sender, facility and control id; rejected, filtered and audit copies may repeat it.
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.messages') AND name = N'ux_messages_key')
CREATE UNIQUE NONCLUSTERED INDEX ux_messages_key ON dbo.messages (sending_application, sending_facility, control_id)
    WHERE duplicate_of IS NULL AND status = N'STORED';
GO
-- The duplicate check looks a batch up by control id (the selective column) first.
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.messages') AND name = N'ix_messages_control_id')
CREATE NONCLUSTERED INDEX ix_messages_control_id ON dbo.messages (control_id, sending_application, sending_facility);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.messages') AND name = N'ix_messages_received')
CREATE NONCLUSTERED INDEX ix_messages_received ON dbo.messages (received_at);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.messages') AND name = N'ix_messages_status')
CREATE NONCLUSTERED INDEX ix_messages_status ON dbo.messages (status, received_at);
GO

IF OBJECT_ID(N'dbo.device_readings', N'U') IS NULL
CREATE TABLE dbo.device_readings (
    id             BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT pk_device_readings PRIMARY KEY,
    message_id     BIGINT NOT NULL CONSTRAINT fk_device_readings_message REFERENCES dbo.messages (id),
    patient_id     NVARCHAR(100) NOT NULL,
    device_id      NVARCHAR(200) NOT NULL,
    vital          NVARCHAR(30) NOT NULL,
    value          FLOAT NOT NULL,                      -- in the canonical unit
    unit           NVARCHAR(20) NOT NULL,               -- UCUM
    observed_at    DATETIME2(6) NOT NULL,
    status         NVARCHAR(1) NOT NULL,                -- OBX-11
    source_system  NVARCHAR(50) NOT NULL,
    source_code    NVARCHAR(100) NOT NULL,
    source_value   NVARCHAR(100) NOT NULL,
    source_unit    NVARCHAR(100) NOT NULL,
    comparator     NVARCHAR(2) NOT NULL CONSTRAINT df_device_readings_comparator DEFAULT N''
                   CONSTRAINT ck_device_readings_comparator CHECK (comparator IN (N'', N'<', N'>', N'<=', N'>=')),
    created_at     DATETIME2(6) NOT NULL
);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.device_readings') AND name = N'ix_readings_patient')
CREATE NONCLUSTERED INDEX ix_readings_patient ON dbo.device_readings (patient_id, vital, observed_at) INCLUDE (value, message_id);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.device_readings') AND name = N'ix_readings_device')
CREATE NONCLUSTERED INDEX ix_readings_device ON dbo.device_readings (device_id, observed_at);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.device_readings') AND name = N'ix_readings_message')
CREATE NONCLUSTERED INDEX ix_readings_message ON dbo.device_readings (message_id);
GO

-- Alert bands: global rows (no patient, no device), per-patient and per-device overrides.
-- A value strictly beyond a warning bound is a warning, strictly beyond a critical bound is critical.
IF OBJECT_ID(N'dbo.alert_thresholds', N'U') IS NULL
CREATE TABLE dbo.alert_thresholds (
    id             BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT pk_alert_thresholds PRIMARY KEY,
    vital          NVARCHAR(30) NOT NULL,
    patient_id     NVARCHAR(100) NULL,
    device_id      NVARCHAR(200) NULL,
    unit           NVARCHAR(20) NOT NULL,
    critical_low   FLOAT NULL,
    warning_low    FLOAT NULL,
    warning_high   FLOAT NULL,
    critical_high  FLOAT NULL,
    updated_at     DATETIME2(6) NOT NULL,
    CONSTRAINT ck_alert_thresholds_scope CHECK (patient_id IS NULL OR device_id IS NULL)
);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.alert_thresholds') AND name = N'ux_thresholds_global')
CREATE UNIQUE NONCLUSTERED INDEX ux_thresholds_global ON dbo.alert_thresholds (vital)
    WHERE patient_id IS NULL AND device_id IS NULL;
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.alert_thresholds') AND name = N'ux_thresholds_patient')
CREATE UNIQUE NONCLUSTERED INDEX ux_thresholds_patient ON dbo.alert_thresholds (vital, patient_id)
    WHERE patient_id IS NOT NULL;
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.alert_thresholds') AND name = N'ux_thresholds_device')
CREATE UNIQUE NONCLUSTERED INDEX ux_thresholds_device ON dbo.alert_thresholds (vital, device_id)
    WHERE device_id IS NOT NULL;
GO

IF OBJECT_ID(N'dbo.alerts', N'U') IS NULL
CREATE TABLE dbo.alerts (
    id               BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT pk_alerts PRIMARY KEY,
    reading_id       BIGINT NOT NULL CONSTRAINT fk_alerts_reading REFERENCES dbo.device_readings (id),       -- the reading that raised it
    last_reading_id  BIGINT NOT NULL CONSTRAINT fk_alerts_last_reading REFERENCES dbo.device_readings (id),  -- the newest reading behind it
    patient_id       NVARCHAR(100) NOT NULL,
    device_id        NVARCHAR(200) NOT NULL,
    vital            NVARCHAR(30) NOT NULL,                                                                  -- 'heart_rate,spo2' for trend
    severity         NVARCHAR(10) NOT NULL CONSTRAINT ck_alerts_severity CHECK (severity IN (N'warning', N'critical')),
    kind             NVARCHAR(20) NOT NULL CONSTRAINT ck_alerts_kind CHECK (kind IN (N'threshold', N'trend')),
    state            NVARCHAR(20) NOT NULL CONSTRAINT ck_alerts_state CHECK (state IN (N'open', N'acknowledged', N'resolved')),
    message          NVARCHAR(400) NOT NULL,
    value            FLOAT NOT NULL,
    last_value       FLOAT NOT NULL,
    occurrences      INT NOT NULL,
    first_seen_at    DATETIME2(6) NOT NULL,
    last_seen_at     DATETIME2(6) NOT NULL,
    created_at       DATETIME2(6) NOT NULL,
    updated_at       DATETIME2(6) NOT NULL,
    acknowledged_at  DATETIME2(6) NULL,
    acknowledged_by  NVARCHAR(100) NULL,
    resolved_at      DATETIME2(6) NULL,
    resolved_by      NVARCHAR(100) NULL
);
GO
-- At most one active (open or acknowledged) alert per patient, vital, severity and kind.
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.alerts') AND name = N'ux_alerts_active')
CREATE UNIQUE NONCLUSTERED INDEX ux_alerts_active ON dbo.alerts (patient_id, vital, severity, kind)
    WHERE state <> N'resolved';
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.alerts') AND name = N'ix_alerts_state')
CREATE NONCLUSTERED INDEX ix_alerts_state ON dbo.alerts (state, severity, last_seen_at);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.alerts') AND name = N'ix_alerts_patient')
CREATE NONCLUSTERED INDEX ix_alerts_patient ON dbo.alerts (patient_id, last_seen_at);
GO
