-- The outbox claim looks for a destination's open rows oldest first; this filtered index holds exactly those.
-- (ix_outbox_queue serves the per-patient "older open row" check.) Batches are separated by GO lines.

SET ANSI_NULLS ON;
SET ANSI_PADDING ON;
SET ANSI_WARNINGS ON;
SET ARITHABORT ON;
SET CONCAT_NULL_YIELDS_NULL ON;
SET QUOTED_IDENTIFIER ON;
SET NUMERIC_ROUNDABORT OFF;
GO

IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.outbox') AND name = N'ix_outbox_due')
CREATE NONCLUSTERED INDEX ix_outbox_due ON dbo.outbox (destination, id)
    WHERE state IN (N'PENDING', N'SENDING');
GO
