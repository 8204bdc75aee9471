-- evaluate_alerts split into its parts, each planned as suits it. Under load (16 connections, 3% of the
-- messages with a reading outside its band), pg_stat_statements showed the threshold statement planned on
-- every call that reaches it: 0.82 ms of planning against 0.36 ms of execution. It reads what
-- readings_out_of_band (011) reads, a batch's readings by message id and their bands, and now has a generic
-- plan like that test's, made once a connection (a test checks the plan made on an empty database). Bands
-- are few (global ones and clinicians' overrides): checked with 4,000 overrides added after the plan was
-- made, readings_out_of_band took 0.29 -> 0.35 ms an 8-message call.
-- The trend statement keeps its custom plan (008: a generic plan of its windows read whole patient
-- histories) in a function of its own; it runs only when trend_possible (012) passes.
-- evaluate_alerts itself is now the two tests and the two calls: a later change to one part replaces that
-- part's function, not the whole evaluation. The rules are 003's; the statements are 012's, unchanged.
-- Measured (PostgreSQL 15, 4,000 PCD-01 messages stored, 8-message calls, 012 and 013 alternating on one
-- database): 1.15 -> 0.97 ms a call with 3% of the messages out of band, 3.10 -> 2.26 ms with 30%.

CREATE OR REPLACE FUNCTION raise_threshold_alerts(p_message_ids BIGINT[], now_utc TIMESTAMP) RETURNS INTEGER
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    affected INTEGER;
BEGIN
    WITH judged AS (
        -- The band of each reading: its device's, else its patient's, else the global one (unique indexes).
        SELECT r.id AS reading_id, r.message_id, r.patient_id, r.device_id, r.vital, r.value, r.unit,
               r.comparator, r.observed_at, t.critical_low, t.warning_low, t.warning_high, t.critical_high,
               -- A bound ('<35.0') lies beyond the value it names: strictly below or above counts on the bound.
               CASE WHEN (r.value < t.critical_low OR (r.comparator = '<' AND r.value <= t.critical_low)) OR (r.value > t.critical_high OR (r.comparator = '>' AND r.value >= t.critical_high)) THEN 'critical'
                    WHEN (r.value < t.warning_low OR (r.comparator = '<' AND r.value <= t.warning_low)) OR (r.value > t.warning_high OR (r.comparator = '>' AND r.value >= t.warning_high)) THEN 'warning' END AS severity,
               CASE WHEN (r.value > t.warning_high OR (r.comparator = '>' AND r.value >= t.warning_high)) OR (r.value > t.critical_high OR (r.comparator = '>' AND r.value >= t.critical_high)) THEN 'high' ELSE 'low' END AS side
        FROM device_readings r
        LEFT JOIN alert_thresholds td ON td.vital = r.vital AND td.device_id = r.device_id
        LEFT JOIN alert_thresholds tp ON tp.vital = r.vital AND tp.patient_id = r.patient_id
        LEFT JOIN alert_thresholds tg ON tg.vital = r.vital AND tg.patient_id IS NULL AND tg.device_id IS NULL
        JOIN alert_thresholds t ON t.id = COALESCE(td.id, tp.id, tg.id)
        WHERE r.message_id = ANY(p_message_ids)
    ), breaches AS (
        SELECT j.*,
               CASE WHEN j.severity = 'critical' AND j.side = 'high' THEN 'above critical high ' || trim_scale(round(j.critical_high::numeric, 2))::text
                    WHEN j.severity = 'critical' THEN 'below critical low ' || trim_scale(round(j.critical_low::numeric, 2))::text
                    WHEN j.side = 'high' THEN 'above warning high ' || trim_scale(round(j.warning_high::numeric, 2))::text
                    ELSE 'below warning low ' || trim_scale(round(j.warning_low::numeric, 2))::text END AS crossed,
               COUNT(*) OVER (PARTITION BY j.message_id, j.patient_id, j.vital, j.severity) AS breach_count,
               ROW_NUMBER() OVER (PARTITION BY j.message_id, j.patient_id, j.vital ORDER BY
                   CASE j.severity WHEN 'critical' THEN 0 ELSE 1 END, j.observed_at DESC, j.reading_id DESC) AS pick
        FROM judged j
        WHERE j.severity IS NOT NULL
    ), raised AS (
        SELECT b.*,
               SUM(b.breach_count) OVER (PARTITION BY b.patient_id, b.vital, b.severity) AS occurrences,
               MIN(b.observed_at) OVER (PARTITION BY b.patient_id, b.vital, b.severity) AS first_seen_at,
               ROW_NUMBER() OVER (PARTITION BY b.patient_id, b.vital, b.severity ORDER BY b.message_id) AS first_pick,
               ROW_NUMBER() OVER (PARTITION BY b.patient_id, b.vital, b.severity
                                  ORDER BY b.observed_at DESC, b.message_id DESC) AS last_pick
        FROM breaches b
        WHERE b.pick = 1
    )
    INSERT INTO alerts (reading_id, last_reading_id, patient_id, device_id, vital, severity, kind, state, message,
                        value, last_value, occurrences, first_seen_at, last_seen_at, created_at, updated_at)
    SELECT f.reading_id, l.reading_id, f.patient_id, l.device_id, f.vital, f.severity, 'threshold', 'open',
           l.vital || ' ' || l.comparator || trim_scale(round(l.value::numeric, 2))::text || ' ' || l.unit || ' ' || l.crossed,
           f.value, l.value, f.occurrences, f.first_seen_at, l.observed_at, now_utc, now_utc
    FROM raised f
    JOIN raised l ON l.patient_id = f.patient_id AND l.vital = f.vital AND l.severity = f.severity AND l.last_pick = 1
    WHERE f.first_pick = 1
    ON CONFLICT (patient_id, vital, severity, kind) WHERE state <> 'resolved' DO UPDATE SET
        occurrences = alerts.occurrences + EXCLUDED.occurrences,
        last_reading_id = CASE WHEN EXCLUDED.last_seen_at >= alerts.last_seen_at THEN EXCLUDED.last_reading_id ELSE alerts.last_reading_id END,
        last_value = CASE WHEN EXCLUDED.last_seen_at >= alerts.last_seen_at THEN EXCLUDED.last_value ELSE alerts.last_value END,
        device_id = CASE WHEN EXCLUDED.last_seen_at >= alerts.last_seen_at THEN EXCLUDED.device_id ELSE alerts.device_id END,
        message = CASE WHEN EXCLUDED.last_seen_at >= alerts.last_seen_at THEN EXCLUDED.message ELSE alerts.message END,
        first_seen_at = LEAST(alerts.first_seen_at, EXCLUDED.first_seen_at),
        last_seen_at = GREATEST(alerts.last_seen_at, EXCLUDED.last_seen_at),
        updated_at = EXCLUDED.updated_at;
    GET DIAGNOSTICS affected = ROW_COUNT;
    RETURN affected;
END
$$;

CREATE OR REPLACE FUNCTION raise_trend_alerts(p_message_ids BIGINT[], now_utc TIMESTAMP) RETURNS INTEGER
LANGUAGE plpgsql
SET plan_cache_mode = force_custom_plan
SET enable_seqscan = off
AS $$
DECLARE
    affected INTEGER;
BEGIN
    WITH batch AS (
        SELECT DISTINCT id FROM unnest(p_message_ids) AS ids (id)
    ), ends AS (
        SELECT r.message_id, r.patient_id, MAX(r.observed_at) AS end_at
        FROM device_readings r
        WHERE r.message_id = ANY(p_message_ids) AND r.vital IN ('heart_rate', 'spo2')
        GROUP BY r.message_id, r.patient_id
    ), spans AS (
        -- Only windows whose heart rate spread reaches 20 and SpO2 spread reaches 5 can hold a trend: a
        -- cheap first pass (one index range each, the SpO2 one only after heart rate passed), so stable
        -- patients never reach the window functions below.
        -- A later message of the same batch is not yet there for an earlier one's window.
        SELECT e.message_id, e.patient_id, e.end_at
        FROM ends e
        WHERE (SELECT MAX(r.value) - MIN(r.value) FROM device_readings r
               WHERE r.patient_id = e.patient_id AND r.vital = 'heart_rate'
                 AND r.observed_at >= e.end_at - INTERVAL '10 minutes' AND r.observed_at <= e.end_at
                 AND (r.message_id <= e.message_id OR r.message_id NOT IN (SELECT id FROM batch))) >= 20
          AND (SELECT MAX(r.value) - MIN(r.value) FROM device_readings r
               WHERE r.patient_id = e.patient_id AND r.vital = 'spo2'
                 AND r.observed_at >= e.end_at - INTERVAL '10 minutes' AND r.observed_at <= e.end_at
                 AND (r.message_id <= e.message_id OR r.message_id NOT IN (SELECT id FROM batch))) >= 5
    ), windowed AS (
        SELECT e.message_id, e.patient_id, r.vital,
               r.value - MIN(r.value) OVER (PARTITION BY e.message_id, e.patient_id, r.vital ORDER BY r.observed_at, r.id
                                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS rise,
               MAX(r.value) OVER (PARTITION BY e.message_id, e.patient_id, r.vital ORDER BY r.observed_at, r.id
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - r.value AS fall
        FROM spans e
        JOIN device_readings r ON r.patient_id = e.patient_id AND r.vital IN ('heart_rate', 'spo2')
         AND r.observed_at >= e.end_at - INTERVAL '10 minutes' AND r.observed_at <= e.end_at
         AND (r.message_id <= e.message_id OR r.message_id NOT IN (SELECT id FROM batch))
    ), trends AS (
        SELECT w.message_id, w.patient_id,
               MAX(CASE WHEN w.vital = 'heart_rate' THEN w.rise END) AS hr_rise,
               MAX(CASE WHEN w.vital = 'spo2' THEN w.fall END) AS spo2_fall
        FROM windowed w
        GROUP BY w.message_id, w.patient_id
    ), newest AS (
        SELECT r.id AS reading_id, r.message_id, r.patient_id, r.device_id, r.observed_at,
               ROW_NUMBER() OVER (PARTITION BY r.message_id, r.patient_id ORDER BY r.observed_at DESC, r.id DESC) AS pick
        FROM spans s
        JOIN device_readings r ON r.message_id = s.message_id AND r.patient_id = s.patient_id
         AND r.vital IN ('heart_rate', 'spo2')
    ), raised AS (
        SELECT nw.reading_id, nw.message_id, nw.patient_id, nw.device_id, nw.observed_at, t.hr_rise, t.spo2_fall,
               COUNT(*) OVER (PARTITION BY nw.patient_id) AS occurrences,
               MIN(nw.observed_at) OVER (PARTITION BY nw.patient_id) AS first_seen_at,
               ROW_NUMBER() OVER (PARTITION BY nw.patient_id ORDER BY nw.message_id) AS first_pick,
               ROW_NUMBER() OVER (PARTITION BY nw.patient_id ORDER BY nw.observed_at DESC, nw.message_id DESC) AS last_pick
        FROM trends t
        JOIN newest nw ON nw.message_id = t.message_id AND nw.patient_id = t.patient_id AND nw.pick = 1
        WHERE t.hr_rise >= 20 AND t.spo2_fall >= 5
    )
    INSERT INTO alerts (reading_id, last_reading_id, patient_id, device_id, vital, severity, kind, state, message,
                        value, last_value, occurrences, first_seen_at, last_seen_at, created_at, updated_at)
    SELECT f.reading_id, l.reading_id, f.patient_id, l.device_id, 'heart_rate,spo2', 'critical', 'trend', 'open',
           'heart rate rose ' || trim_scale(round(l.hr_rise::numeric, 2))::text || ' /min and spo2 fell '
               || trim_scale(round(l.spo2_fall::numeric, 2))::text || ' % within 10 minutes',
           f.hr_rise, l.hr_rise, f.occurrences, f.first_seen_at, l.observed_at, now_utc, now_utc
    FROM raised f
    JOIN raised l ON l.patient_id = f.patient_id AND l.last_pick = 1
    WHERE f.first_pick = 1
    ON CONFLICT (patient_id, vital, severity, kind) WHERE state <> 'resolved' DO UPDATE SET
        occurrences = alerts.occurrences + EXCLUDED.occurrences,
        last_reading_id = CASE WHEN EXCLUDED.last_seen_at >= alerts.last_seen_at THEN EXCLUDED.last_reading_id ELSE alerts.last_reading_id END,
        last_value = CASE WHEN EXCLUDED.last_seen_at >= alerts.last_seen_at THEN EXCLUDED.last_value ELSE alerts.last_value END,
        device_id = CASE WHEN EXCLUDED.last_seen_at >= alerts.last_seen_at THEN EXCLUDED.device_id ELSE alerts.device_id END,
        message = CASE WHEN EXCLUDED.last_seen_at >= alerts.last_seen_at THEN EXCLUDED.message ELSE alerts.message END,
        first_seen_at = LEAST(alerts.first_seen_at, EXCLUDED.first_seen_at),
        last_seen_at = GREATEST(alerts.last_seen_at, EXCLUDED.last_seen_at),
        updated_at = EXCLUDED.updated_at;
    GET DIAGNOSTICS affected = ROW_COUNT;
    RETURN affected;
END
$$;

CREATE OR REPLACE FUNCTION evaluate_alerts(p_message_ids BIGINT[]) RETURNS INTEGER
LANGUAGE plpgsql
AS $$
DECLARE
    touched INTEGER := 0;
    now_utc TIMESTAMP := now() AT TIME ZONE 'UTC';
BEGIN
    -- Most batches hold no reading outside its band, and no window that passes the trend's first test:
    -- each test is cheap and planned once a connection, and spares the statement behind it.
    IF readings_out_of_band(p_message_ids) THEN
        touched := touched + raise_threshold_alerts(p_message_ids, now_utc);
    END IF;
    IF trend_possible(p_message_ids) THEN
        touched := touched + raise_trend_alerts(p_message_ids, now_utc);
    END IF;
    RETURN touched;
END
$$;
