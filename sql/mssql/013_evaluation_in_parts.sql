-- On PostgreSQL, 013 splits evaluate_alerts into functions planned as each suits (the threshold statement
-- once a connection). SQL Server compiles dbo.usp_evaluate_alerts once and reuses the plan, so it needs no
-- change for this; this script keeps the dialects' numbers in step.
SELECT 1 AS nothing_to_change;
GO
