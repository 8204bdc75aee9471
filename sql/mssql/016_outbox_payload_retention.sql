-- Retention empties the payload of outbox rows that were delivered (SENT) or held back (SUPPRESSED) once
-- they are older than their route's retention age: the row stays (the audit trail), its payload becomes ''
-- and payload_pruned_at says when. The filtered index ix_outbox_payload_kept holds exactly the rows still to
-- be pruned some day, per route and oldest first. Batches are separated by GO lines.

SET ANSI_NULLS ON;
SET ANSI_PADDING ON;
SET ANSI_WARNINGS ON;
SET ARITHABORT ON;
SET CONCAT_NULL_YIELDS_NULL ON;
SET QUOTED_IDENTIFIER ON;
SET NUMERIC_ROUNDABORT OFF;
GO

IF COL_LENGTH(N'dbo.outbox', N'payload_pruned_at') IS NULL
ALTER TABLE dbo.outbox ADD payload_pruned_at DATETIME2(6) NULL;
GO

IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.outbox') AND name = N'ix_outbox_payload_kept')
CREATE NONCLUSTERED INDEX ix_outbox_payload_kept ON dbo.outbox (route, created_at)
    WHERE state IN (N'SENT', N'SUPPRESSED') AND payload_pruned_at IS NULL;
GO
