-- On PostgreSQL, 012 gives evaluate_alerts' trend pre-check a plan made once a connection instead of on
-- every call. SQL Server compiles dbo.usp_evaluate_alerts once and reuses the plan, so it needs no change
-- for this; this script keeps the dialects' numbers in step.
SELECT 1 AS nothing_to_change;
GO
