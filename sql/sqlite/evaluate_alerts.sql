-- Alert evaluation for SQLite, which has no stored procedures: the same set-based statements as the
-- PostgreSQL function evaluate_alerts (sql/postgresql/003_evaluate_alerts.sql) and the SQL Server procedure
-- dbo.usp_evaluate_alerts, run by the engine in the transaction that stored the readings, with
-- the message id bound. Statements end with a semicolon at the end of a line.
WITH candidates AS (
    SELECT r.id AS reading_id, r.patient_id, r.device_id, r.vital, r.value, r.unit, r.observed_at,
           t.critical_low, t.warning_low, t.warning_high, t.critical_high,
           ROW_NUMBER() OVER (PARTITION BY r.id ORDER BY
               CASE WHEN t.device_id IS NOT NULL THEN 0 WHEN t.patient_id IS NOT NULL THEN 1 ELSE 2 END) AS band_rank
    FROM device_readings r
    JOIN alert_thresholds t ON t.vital = r.vital
     AND (t.device_id = r.device_id OR t.patient_id = r.patient_id
          OR (t.device_id IS NULL AND t.patient_id IS NULL))
    WHERE r.message_id = :message_id
), judged AS (
    SELECT c.*,
           CASE WHEN c.value < c.critical_low OR c.value > c.critical_high THEN 'critical'
                WHEN c.value < c.warning_low OR c.value > c.warning_high THEN 'warning' END AS severity
    FROM candidates c
    WHERE c.band_rank = 1
), breaches AS (
    SELECT j.*,
           CASE WHEN j.severity = 'critical' AND j.value > j.critical_high THEN 'above critical high ' || rtrim(rtrim(printf('%.2f', j.critical_high), '0'), '.')
                WHEN j.severity = 'critical' THEN 'below critical low ' || rtrim(rtrim(printf('%.2f', j.critical_low), '0'), '.')
                WHEN j.value > j.warning_high THEN 'above warning high ' || rtrim(rtrim(printf('%.2f', j.warning_high), '0'), '.')
                ELSE 'below warning low ' || rtrim(rtrim(printf('%.2f', j.warning_low), '0'), '.') END AS crossed,
           COUNT(*) OVER (PARTITION BY j.patient_id, j.vital, j.severity) AS breach_count,
           ROW_NUMBER() OVER (PARTITION BY j.patient_id, j.vital ORDER BY
               CASE j.severity WHEN 'critical' THEN 0 ELSE 1 END, j.observed_at DESC, j.reading_id DESC) AS pick
    FROM judged j
    WHERE j.severity IS NOT NULL
)
INSERT INTO alerts (reading_id, last_reading_id, patient_id, device_id, vital, severity, kind, state, message,
                    value, last_value, occurrences, first_seen_at, last_seen_at, created_at, updated_at)
SELECT b.reading_id, b.reading_id, b.patient_id, b.device_id, b.vital, b.severity, 'threshold', 'open',
       b.vital || ' ' || rtrim(rtrim(printf('%.2f', b.value), '0'), '.') || ' ' || b.unit || ' ' || b.crossed,
       b.value, b.value, b.breach_count, b.observed_at, b.observed_at, strftime('%Y-%m-%d %H:%M:%f000', 'now'), strftime('%Y-%m-%d %H:%M:%f000', 'now')
FROM breaches b
WHERE b.pick = 1
ON CONFLICT (patient_id, vital, severity, kind) WHERE state <> 'resolved' DO UPDATE SET
    occurrences = alerts.occurrences + excluded.occurrences,
    last_reading_id = CASE WHEN excluded.last_seen_at >= alerts.last_seen_at THEN excluded.last_reading_id ELSE alerts.last_reading_id END,
    last_value = CASE WHEN excluded.last_seen_at >= alerts.last_seen_at THEN excluded.last_value ELSE alerts.last_value END,
    device_id = CASE WHEN excluded.last_seen_at >= alerts.last_seen_at THEN excluded.device_id ELSE alerts.device_id END,
    message = CASE WHEN excluded.last_seen_at >= alerts.last_seen_at THEN excluded.message ELSE alerts.message END,
    first_seen_at = min(alerts.first_seen_at, excluded.first_seen_at),
    last_seen_at = max(alerts.last_seen_at, excluded.last_seen_at),
    updated_at = excluded.updated_at;

WITH ends AS (
    SELECT r.patient_id, MAX(r.observed_at) AS end_at
    FROM device_readings r
    WHERE r.message_id = :message_id AND r.vital IN ('heart_rate', 'spo2')
    GROUP BY r.patient_id
), windowed AS (
    SELECT e.patient_id, r.vital,
           r.value - MIN(r.value) OVER (PARTITION BY e.patient_id, r.vital ORDER BY r.observed_at, r.id
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS rise,
           MAX(r.value) OVER (PARTITION BY e.patient_id, r.vital ORDER BY r.observed_at, r.id
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - r.value AS fall
    FROM ends e
    JOIN device_readings r ON r.patient_id = e.patient_id AND r.vital IN ('heart_rate', 'spo2')
     AND r.observed_at >= strftime('%Y-%m-%d %H:%M:%f', e.end_at, '-10 minutes') AND r.observed_at <= e.end_at
), trends AS (
    SELECT w.patient_id,
           MAX(CASE WHEN w.vital = 'heart_rate' THEN w.rise END) AS hr_rise,
           MAX(CASE WHEN w.vital = 'spo2' THEN w.fall END) AS spo2_fall
    FROM windowed w
    GROUP BY w.patient_id
), newest AS (
    SELECT r.id AS reading_id, r.patient_id, r.device_id, r.observed_at,
           ROW_NUMBER() OVER (PARTITION BY r.patient_id ORDER BY r.observed_at DESC, r.id DESC) AS pick
    FROM device_readings r
    WHERE r.message_id = :message_id AND r.vital IN ('heart_rate', 'spo2')
)
INSERT INTO alerts (reading_id, last_reading_id, patient_id, device_id, vital, severity, kind, state, message,
                    value, last_value, occurrences, first_seen_at, last_seen_at, created_at, updated_at)
SELECT nw.reading_id, nw.reading_id, nw.patient_id, nw.device_id, 'heart_rate,spo2', 'critical', 'trend', 'open',
       'heart rate rose ' || rtrim(rtrim(printf('%.2f', t.hr_rise), '0'), '.') || ' /min and spo2 fell '
           || rtrim(rtrim(printf('%.2f', t.spo2_fall), '0'), '.') || ' % within 10 minutes',
       t.hr_rise, t.hr_rise, 1, nw.observed_at, nw.observed_at, strftime('%Y-%m-%d %H:%M:%f000', 'now'), strftime('%Y-%m-%d %H:%M:%f000', 'now')
FROM trends t
JOIN newest nw ON nw.patient_id = t.patient_id AND nw.pick = 1
WHERE t.hr_rise >= 20 AND t.spo2_fall >= 5
ON CONFLICT (patient_id, vital, severity, kind) WHERE state <> 'resolved' DO UPDATE SET
    occurrences = alerts.occurrences + 1,
    last_reading_id = CASE WHEN excluded.last_seen_at >= alerts.last_seen_at THEN excluded.last_reading_id ELSE alerts.last_reading_id END,
    last_value = CASE WHEN excluded.last_seen_at >= alerts.last_seen_at THEN excluded.last_value ELSE alerts.last_value END,
    device_id = CASE WHEN excluded.last_seen_at >= alerts.last_seen_at THEN excluded.device_id ELSE alerts.device_id END,
    message = CASE WHEN excluded.last_seen_at >= alerts.last_seen_at THEN excluded.message ELSE alerts.message END,
    first_seen_at = min(alerts.first_seen_at, excluded.first_seen_at),
    last_seen_at = max(alerts.last_seen_at, excluded.last_seen_at),
    updated_at = excluded.updated_at;
