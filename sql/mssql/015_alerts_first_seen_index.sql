-- The dashboard's statistics count, rank and time the alerts first seen in a range (and in the range before
-- it, for the change): without this index each of their four queries read the whole alerts table.

IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.alerts') AND name = N'ix_alerts_first_seen')
CREATE NONCLUSTERED INDEX ix_alerts_first_seen ON dbo.alerts (first_seen_at);
GO
