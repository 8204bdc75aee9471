-- Readings by patient and time: a message's readings share patient and observation time, so they land on one
-- leaf page of this index (the old order, patient then vital, put each vital of a message on a page of its
-- own). Queries by patient and vital read the patient's time range and skip the other vitals in the index;
-- the included columns keep the alert windows index-only. (PostgreSQL's 009 also rewrites evaluate_alerts
-- with fewer sorts; dbo.usp_evaluate_alerts keeps 003's statements, not rewritten without a SQL Server to
-- measure and test them on.)
DROP INDEX IF EXISTS ix_readings_patient ON dbo.device_readings;
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.device_readings') AND name = N'ix_readings_patient_time')
CREATE NONCLUSTERED INDEX ix_readings_patient_time ON dbo.device_readings (patient_id, observed_at) INCLUDE (vital, value, message_id);
GO
