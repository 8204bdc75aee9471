-- A group commit's messages, their readings and the alert evaluation in one call: store_messages. Before,
-- the store ran them as four statements, each a round trip (the message insert, COPY of the readings in
-- two, the evaluation), and psycopg re-parsed the insert's placeholders (152 for 8 messages) on every batch.
-- Now the rows travel as two JSON arrays, in one statement. What is stored is the same: the channel still
-- decides each message's row (status, ACK, duplicate) before it calls this.
-- - p_messages: one object per messages row, with the columns below; ids are drawn in array order, and
--   message_ids holds them in that order.
-- - p_readings: one object per device_readings row; "m" is the position (from 1) of its message in
--   p_messages.
-- - touched: alerts raised or updated by evaluate_alerts over the messages that have readings.
-- Measured under load (bench/mllp_bench.py, the previous commit and this one alternating): msgs/s at 16
-- connections +6%, 0% and +7% (p99 13.9-16.8 -> 13.3-14.0 ms), at 4 +9% and +12%, at 1 +15% and +11%; the
-- engine's CPU a message -8%, PostgreSQL's +5% (it parses JSON instead of COPY text, and inserts the
-- readings a row at a time).
-- A column added to messages or device_readings must be added here too: a test compares the lists.

CREATE OR REPLACE FUNCTION store_messages(p_messages JSONB, p_readings JSONB,
                                          OUT message_ids BIGINT[], OUT touched INTEGER)
LANGUAGE plpgsql
AS $$
DECLARE
    evaluated BIGINT[];
BEGIN
    WITH inserted AS (
        INSERT INTO messages (route, control_id, sending_application, sending_facility, message_type, version,
                              content_hash, raw, peer, status, ack_code, ack, error, reading_count, duplicate_of,
                              reprocess_of, received_at, processed_at)
        SELECT m.route, m.control_id, m.sending_application, m.sending_facility, m.message_type, m.version,
               m.content_hash, m.raw, m.peer, m.status, m.ack_code, m.ack, m.error, m.reading_count, m.duplicate_of,
               m.reprocess_of, m.received_at, m.processed_at
        FROM ROWS FROM (jsonb_to_recordset(p_messages) AS (
                 route VARCHAR(100), control_id VARCHAR(200), sending_application VARCHAR(227),
                 sending_facility VARCHAR(227), message_type VARCHAR(20), version VARCHAR(10),
                 content_hash VARCHAR(64), raw TEXT, peer VARCHAR(200), status VARCHAR(20), ack_code VARCHAR(2),
                 ack TEXT, error TEXT, reading_count INTEGER, duplicate_of BIGINT, reprocess_of BIGINT,
                 received_at TIMESTAMP, processed_at TIMESTAMP)) WITH ORDINALITY
             AS m (route, control_id, sending_application, sending_facility, message_type, version, content_hash,
                   raw, peer, status, ack_code, ack, error, reading_count, duplicate_of, reprocess_of, received_at,
                   processed_at, position)
        ORDER BY m.position  -- the identity draws ids in this order
        RETURNING id
    )
    SELECT array_agg(id ORDER BY id) INTO message_ids FROM inserted;

    WITH inserted AS (
        INSERT INTO device_readings (message_id, patient_id, device_id, vital, value, unit, observed_at, status,
                                     source_system, source_code, source_value, source_unit, comparator, created_at)
        SELECT message_ids[r.m], r.patient_id, r.device_id, r.vital, r.value, r.unit, r.observed_at, r.status,
               r.source_system, r.source_code, r.source_value, r.source_unit, r.comparator, r.created_at
        FROM jsonb_to_recordset(p_readings) AS r (
            m INTEGER, patient_id VARCHAR(100), device_id VARCHAR(200), vital VARCHAR(30), value DOUBLE PRECISION,
            unit VARCHAR(20), observed_at TIMESTAMP, status VARCHAR(1), source_system VARCHAR(50),
            source_code VARCHAR(100), source_value VARCHAR(100), source_unit VARCHAR(100), comparator VARCHAR(2),
            created_at TIMESTAMP)
        RETURNING message_id
    )
    SELECT array_agg(DISTINCT message_id) INTO evaluated FROM inserted;

    touched := CASE WHEN evaluated IS NULL THEN 0 ELSE evaluate_alerts(evaluated) END;
END
$$;
