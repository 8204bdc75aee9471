-- The default vital-sign alert bands (docs: ARCHITECTURE.md). Global rows; edit them, or add rows with a
-- patient_id or a device_id to override one vital for one patient or device.
-- The T-SQL twin of sql/postgresql/002_default_thresholds.sql; idempotent (a row that exists is kept as edited).

SET ANSI_NULLS ON;
SET ANSI_PADDING ON;
SET ANSI_WARNINGS ON;
SET ARITHABORT ON;
SET CONCAT_NULL_YIELDS_NULL ON;
SET QUOTED_IDENTIFIER ON;
SET NUMERIC_ROUNDABORT OFF;
GO

INSERT INTO dbo.alert_thresholds (vital, unit, critical_low, warning_low, warning_high, critical_high, updated_at)
SELECT v.vital, v.unit, v.critical_low, v.warning_low, v.warning_high, v.critical_high, SYSUTCDATETIME()
FROM (VALUES
    (N'heart_rate',   N'/min',   40.0, 50.0, 120.0, 140.0),
    (N'pulse_rate',   N'/min',   40.0, 50.0, 120.0, 140.0),
    (N'spo2',         N'%',      90.0, 94.0, NULL,  NULL),
    (N'temperature',  N'Cel',    35.0, 36.0, 38.0,  39.5),
    (N'resp_rate',    N'/min',   8.0,  10.0, 24.0,  30.0),
    (N'bp_systolic',  N'mm[Hg]', 80.0, 90.0, 160.0, 180.0),
    (N'bp_diastolic', N'mm[Hg]', 40.0, 50.0, 100.0, 120.0),
    (N'bp_mean',      N'mm[Hg]', 55.0, 65.0, 110.0, 130.0),
    (N'glucose',      N'mmol/L', 3.0,  3.9,  10.0,  13.9)
) AS v (vital, unit, critical_low, warning_low, warning_high, critical_high)
WHERE NOT EXISTS (
    SELECT 1 FROM dbo.alert_thresholds AS t WHERE t.vital = v.vital AND t.patient_id IS NULL AND t.device_id IS NULL
);
GO
