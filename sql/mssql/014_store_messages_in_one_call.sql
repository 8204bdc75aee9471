-- On PostgreSQL, 014 adds store_messages: a group commit's messages, readings and alert evaluation in one
-- call. The engine stores a batch on SQL Server with its statements as before (the message insert, the
-- readings insert, dbo.usp_evaluate_alerts); this script keeps the dialects' numbers in step.
SELECT 1 AS nothing_to_change;
GO
