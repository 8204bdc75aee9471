-- evaluate_alerts runs once per group commit with that batch's message ids. PL/pgSQL keeps its statements
-- prepared, and after five calls PostgreSQL may switch them to a generic plan that does not know the ids;
-- measured on PostgreSQL 15 with 3,000 stored PCD-01 messages, a 16-message batch then takes 6-12 ms
-- instead of 2.5-3 ms with plans made for the actual ids. Planning each call costs far less than that.
ALTER FUNCTION evaluate_alerts(BIGINT[]) SET plan_cache_mode = force_custom_plan;
