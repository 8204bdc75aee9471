-- On PostgreSQL, 008 makes evaluate_alerts plan its statements for each call's message ids
-- (plan_cache_mode). SQL Server needs no change for it; this script keeps the dialects' numbers in step.
SELECT 1 AS nothing_to_change;
GO
