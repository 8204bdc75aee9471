-- On PostgreSQL, 010 runs each statement of evaluate_alerts only when a test of its own says it can raise
-- something: PostgreSQL plans those statements on every call, and most batches raise nothing. SQL Server
-- compiles dbo.usp_evaluate_alerts once and reuses the plan, so it needs no change for this; this script
-- keeps the dialects' numbers in step.
SELECT 1 AS nothing_to_change;
GO
