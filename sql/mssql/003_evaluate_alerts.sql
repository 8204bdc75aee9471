-- Procedure and filtered indexes need these options when the procedure is created (they are stored with it).
SET ANSI_NULLS ON;
SET ANSI_PADDING ON;
SET ANSI_WARNINGS ON;
SET ARITHABORT ON;
SET CONCAT_NULL_YIELDS_NULL ON;
SET QUOTED_IDENTIFIER ON;
SET NUMERIC_ROUNDABORT OFF;
GO

-- dbo.usp_evaluate_alerts @message_ids: raise or update alerts for the readings a batch of messages stored.
-- The T-SQL twin of the PostgreSQL function evaluate_alerts (sql/postgresql/003_evaluate_alerts.sql).
-- @message_ids lists the batch's message ids separated by commas ('12,13,15'). Called by the engine in the
-- transaction that stored them (one call per group commit); returns ONE result set of one row: touched, the
-- number of alerts inserted or updated. The result is the same as calling it once per message, in id order.
--
-- Threshold alerts: each reading is judged by the most specific band (device, then patient, then global).
-- One alert per message, patient and vital (the most severe, newest reading); while an alert of the same
-- patient, vital, severity and kind is open or acknowledged, a repeat breach updates it (occurrences, last
-- value, last seen) instead of raising another.
-- Trend alert (critical): within the 10 minutes ending at a message's newest heart rate or SpO2 reading,
-- heart rate rose by 20/min or more and SpO2 fell by 5 points or more.
--
-- The batch: each message's picks are made on its own (partitions include message_id), then folded into one
-- row per alert key as the one-by-one calls would leave it: occurrences summed, the first reading and value
-- from the lowest message id, the last ones from the newest observation (a tie goes to the higher message
-- id, which would have come later). A message's trend window does not see a later message of the batch.
--
-- PostgreSQL's INSERT ... ON CONFLICT DO UPDATE is written here as UPDATE, then INSERT ... WHERE NOT EXISTS,
-- both reading dbo.alerts WITH (UPDLOCK, HOLDLOCK): the key range stays locked until the transaction ends,
-- so two concurrent calls cannot both insert the same active alert (ux_alerts_active is the backstop).
-- Numbers in messages read as PostgreSQL's trim_scale(round(x::numeric, 2)): at most 2 decimals, no trailing
-- zeros ('152', '37.5', '36.99'). FORMAT rounds float to 15 significant digits, then half away from zero,
-- as PostgreSQL does; the culture is fixed so the session language cannot turn '37.5' into '37,5'.
-- No statement aggregates a NULL: a "Null value is eliminated" warning would reach the client ahead of
-- the result set. STRING_SPLIT needs database compatibility level 130 (SQL Server 2016) or higher.
CREATE OR ALTER PROCEDURE dbo.usp_evaluate_alerts
    @message_ids NVARCHAR(MAX)
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    DECLARE @touched INT = 0;
    DECLARE @now_utc DATETIME2(6) = SYSUTCDATETIME();

    -- The batch's message ids (PostgreSQL: the BIGINT[] argument). A value that is no number is an error.
    DECLARE @batch TABLE (
        id  BIGINT NOT NULL PRIMARY KEY
    );

    -- The threshold alert each patient, vital and severity of the batch raises or updates (at most one).
    DECLARE @threshold TABLE (
        reading_id       BIGINT NOT NULL,          -- of the lowest message id
        last_reading_id  BIGINT NOT NULL,          -- of the newest observation
        patient_id       NVARCHAR(100) NOT NULL,
        device_id        NVARCHAR(200) NOT NULL,   -- of the newest observation
        vital            NVARCHAR(30) NOT NULL,
        severity         NVARCHAR(10) NOT NULL,
        message          NVARCHAR(400) NOT NULL,   -- of the newest observation
        value            FLOAT NOT NULL,
        last_value       FLOAT NOT NULL,
        occurrences      INT NOT NULL,
        first_seen_at    DATETIME2(6) NOT NULL,
        last_seen_at     DATETIME2(6) NOT NULL,
        PRIMARY KEY (patient_id, vital, severity)
    );

    -- The trend alert each patient of the batch raises or updates (at most one).
    DECLARE @trend TABLE (
        reading_id       BIGINT NOT NULL,
        last_reading_id  BIGINT NOT NULL,
        patient_id       NVARCHAR(100) NOT NULL,
        device_id        NVARCHAR(200) NOT NULL,
        message          NVARCHAR(400) NOT NULL,
        value            FLOAT NOT NULL,
        last_value       FLOAT NOT NULL,
        occurrences      INT NOT NULL,
        first_seen_at    DATETIME2(6) NOT NULL,
        last_seen_at     DATETIME2(6) NOT NULL,
        PRIMARY KEY (patient_id)
    );

    INSERT INTO @batch (id)
    SELECT DISTINCT CAST(s.value AS BIGINT)
    FROM STRING_SPLIT(@message_ids, N',') AS s
    WHERE LTRIM(RTRIM(s.value)) <> N'';

    WITH candidates AS (
        SELECT r.id AS reading_id, r.message_id, r.patient_id, r.device_id, r.vital, r.value, r.unit,
               r.comparator, r.observed_at, t.critical_low, t.warning_low, t.warning_high, t.critical_high,
               ROW_NUMBER() OVER (PARTITION BY r.id ORDER BY
                   CASE WHEN t.device_id IS NOT NULL THEN 0 WHEN t.patient_id IS NOT NULL THEN 1 ELSE 2 END) AS band_rank
        FROM dbo.device_readings AS r
        JOIN dbo.alert_thresholds AS t ON t.vital = r.vital
         AND (t.device_id = r.device_id OR t.patient_id = r.patient_id
              OR (t.device_id IS NULL AND t.patient_id IS NULL))
        WHERE r.message_id IN (SELECT b.id FROM @batch AS b)
    ), judged AS (
        SELECT c.*,
               -- A bound ('<35.0') lies beyond the value it names: strictly below or above counts on the bound.
               CASE WHEN (c.value < c.critical_low OR (c.comparator = N'<' AND c.value <= c.critical_low)) OR (c.value > c.critical_high OR (c.comparator = N'>' AND c.value >= c.critical_high)) THEN N'critical'
                    WHEN (c.value < c.warning_low OR (c.comparator = N'<' AND c.value <= c.warning_low)) OR (c.value > c.warning_high OR (c.comparator = N'>' AND c.value >= c.warning_high)) THEN N'warning' END AS severity,
               CASE WHEN (c.value > c.warning_high OR (c.comparator = N'>' AND c.value >= c.warning_high)) OR (c.value > c.critical_high OR (c.comparator = N'>' AND c.value >= c.critical_high)) THEN N'high' ELSE N'low' END AS side
        FROM candidates AS c
        WHERE c.band_rank = 1
    ), breaches AS (
        SELECT j.*,
               CASE WHEN j.severity = N'critical' AND j.side = N'high' THEN N'above critical high ' + FORMAT(j.critical_high, N'0.##', N'en-US')
                    WHEN j.severity = N'critical' THEN N'below critical low ' + FORMAT(j.critical_low, N'0.##', N'en-US')
                    WHEN j.side = N'high' THEN N'above warning high ' + FORMAT(j.warning_high, N'0.##', N'en-US')
                    ELSE N'below warning low ' + FORMAT(j.warning_low, N'0.##', N'en-US') END AS crossed,
               COUNT(*) OVER (PARTITION BY j.message_id, j.patient_id, j.vital, j.severity) AS breach_count,
               ROW_NUMBER() OVER (PARTITION BY j.message_id, j.patient_id, j.vital ORDER BY
                   CASE j.severity WHEN N'critical' THEN 0 ELSE 1 END, j.observed_at DESC, j.reading_id DESC) AS pick
        FROM judged AS j
        WHERE j.severity IS NOT NULL
    ), raised AS (
        SELECT b.*,
               SUM(b.breach_count) OVER (PARTITION BY b.patient_id, b.vital, b.severity) AS occurrences,
               MIN(b.observed_at) OVER (PARTITION BY b.patient_id, b.vital, b.severity) AS first_seen_at,
               ROW_NUMBER() OVER (PARTITION BY b.patient_id, b.vital, b.severity ORDER BY b.message_id) AS first_pick,
               ROW_NUMBER() OVER (PARTITION BY b.patient_id, b.vital, b.severity
                                  ORDER BY b.observed_at DESC, b.message_id DESC) AS last_pick
        FROM breaches AS b
        WHERE b.pick = 1
    )
    INSERT INTO @threshold (reading_id, last_reading_id, patient_id, device_id, vital, severity, message,
                            value, last_value, occurrences, first_seen_at, last_seen_at)
    SELECT f.reading_id, l.reading_id, f.patient_id, l.device_id, f.vital, f.severity,
           l.vital + N' ' + l.comparator + FORMAT(l.value, N'0.##', N'en-US') + N' ' + l.unit + N' ' + l.crossed,
           f.value, l.value, f.occurrences, f.first_seen_at, l.observed_at
    FROM raised AS f
    JOIN raised AS l ON l.patient_id = f.patient_id AND l.vital = f.vital AND l.severity = f.severity AND l.last_pick = 1
    WHERE f.first_pick = 1;

    -- ON CONFLICT ... DO UPDATE: a repeat breach updates the active alert.
    UPDATE a SET
        occurrences = a.occurrences + b.occurrences,
        last_reading_id = CASE WHEN b.last_seen_at >= a.last_seen_at THEN b.last_reading_id ELSE a.last_reading_id END,
        last_value = CASE WHEN b.last_seen_at >= a.last_seen_at THEN b.last_value ELSE a.last_value END,
        device_id = CASE WHEN b.last_seen_at >= a.last_seen_at THEN b.device_id ELSE a.device_id END,
        message = CASE WHEN b.last_seen_at >= a.last_seen_at THEN b.message ELSE a.message END,
        first_seen_at = CASE WHEN b.first_seen_at < a.first_seen_at THEN b.first_seen_at ELSE a.first_seen_at END,
        last_seen_at = CASE WHEN b.last_seen_at > a.last_seen_at THEN b.last_seen_at ELSE a.last_seen_at END,
        updated_at = @now_utc
    FROM dbo.alerts AS a WITH (UPDLOCK, HOLDLOCK)
    JOIN @threshold AS b ON b.patient_id = a.patient_id AND b.vital = a.vital AND b.severity = a.severity
    WHERE a.kind = N'threshold' AND a.state <> N'resolved';
    SET @touched = @touched + @@ROWCOUNT;

    -- ... otherwise a new open alert.
    INSERT INTO dbo.alerts (reading_id, last_reading_id, patient_id, device_id, vital, severity, kind, state, message,
                            value, last_value, occurrences, first_seen_at, last_seen_at, created_at, updated_at)
    SELECT b.reading_id, b.last_reading_id, b.patient_id, b.device_id, b.vital, b.severity, N'threshold', N'open', b.message,
           b.value, b.last_value, b.occurrences, b.first_seen_at, b.last_seen_at, @now_utc, @now_utc
    FROM @threshold AS b
    WHERE NOT EXISTS (
        SELECT 1 FROM dbo.alerts AS a WITH (UPDLOCK, HOLDLOCK)
        WHERE a.patient_id = b.patient_id AND a.vital = b.vital AND a.severity = b.severity
          AND a.kind = N'threshold' AND a.state <> N'resolved'
    );
    SET @touched = @touched + @@ROWCOUNT;

    WITH ends AS (
        SELECT r.message_id, r.patient_id, MAX(r.observed_at) AS end_at
        FROM dbo.device_readings AS r
        WHERE r.message_id IN (SELECT b.id FROM @batch AS b) AND r.vital IN (N'heart_rate', N'spo2')
        GROUP BY r.message_id, r.patient_id
    ), spreads AS (
        -- Only windows whose heart rate spread reaches 20 and SpO2 spread reaches 5 can hold a trend: a
        -- cheap first pass, so stable patients never reach the window functions below.
        -- A later message of the same batch is not yet there for an earlier one's window.
        -- PostgreSQL's spans: HAVING MAX(CASE WHEN r.vital = 'heart_rate' THEN r.value END) - MIN(...) >= 20
        -- AND the same for SpO2 >= 5; here one spread per vital, joined, so no aggregate meets a NULL.
        SELECT e.message_id, e.patient_id, e.end_at, r.vital, MAX(r.value) - MIN(r.value) AS spread
        FROM ends AS e
        JOIN dbo.device_readings AS r ON r.patient_id = e.patient_id AND r.vital IN (N'heart_rate', N'spo2')
         AND r.observed_at >= DATEADD(MINUTE, -10, e.end_at) AND r.observed_at <= e.end_at
         AND (r.message_id <= e.message_id OR r.message_id NOT IN (SELECT b.id FROM @batch AS b))
        GROUP BY e.message_id, e.patient_id, e.end_at, r.vital
    ), spans AS (
        SELECT h.message_id, h.patient_id, h.end_at
        FROM spreads AS h
        JOIN spreads AS s ON s.message_id = h.message_id AND s.patient_id = h.patient_id
         AND s.vital = N'spo2' AND s.spread >= 5
        WHERE h.vital = N'heart_rate' AND h.spread >= 20
    ), windowed AS (
        SELECT e.message_id, e.patient_id, r.vital,
               r.value - MIN(r.value) OVER (PARTITION BY e.message_id, e.patient_id, r.vital ORDER BY r.observed_at, r.id
                                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS rise,
               MAX(r.value) OVER (PARTITION BY e.message_id, e.patient_id, r.vital ORDER BY r.observed_at, r.id
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - r.value AS fall
        FROM spans AS e
        JOIN dbo.device_readings AS r ON r.patient_id = e.patient_id AND r.vital IN (N'heart_rate', N'spo2')
         AND r.observed_at >= DATEADD(MINUTE, -10, e.end_at) AND r.observed_at <= e.end_at
         AND (r.message_id <= e.message_id OR r.message_id NOT IN (SELECT b.id FROM @batch AS b))
    ), hr_rises AS (
        -- PostgreSQL: MAX(CASE WHEN w.vital = 'heart_rate' THEN w.rise END); NULLs filtered out first (see top).
        SELECT w.message_id, w.patient_id, MAX(w.rise) AS hr_rise
        FROM windowed AS w
        WHERE w.vital = N'heart_rate' AND w.rise IS NOT NULL
        GROUP BY w.message_id, w.patient_id
    ), spo2_falls AS (
        SELECT w.message_id, w.patient_id, MAX(w.fall) AS spo2_fall
        FROM windowed AS w
        WHERE w.vital = N'spo2' AND w.fall IS NOT NULL
        GROUP BY w.message_id, w.patient_id
    ), trends AS (
        SELECT h.message_id, h.patient_id, h.hr_rise, s.spo2_fall
        FROM hr_rises AS h
        JOIN spo2_falls AS s ON s.message_id = h.message_id AND s.patient_id = h.patient_id
    ), newest AS (
        SELECT r.id AS reading_id, r.message_id, r.patient_id, r.device_id, r.observed_at,
               ROW_NUMBER() OVER (PARTITION BY r.message_id, r.patient_id ORDER BY r.observed_at DESC, r.id DESC) AS pick
        FROM dbo.device_readings AS r
        WHERE r.message_id IN (SELECT b.id FROM @batch AS b) AND r.vital IN (N'heart_rate', N'spo2')
    ), raised AS (
        SELECT nw.reading_id, nw.message_id, nw.patient_id, nw.device_id, nw.observed_at, t.hr_rise, t.spo2_fall,
               COUNT(*) OVER (PARTITION BY nw.patient_id) AS occurrences,
               MIN(nw.observed_at) OVER (PARTITION BY nw.patient_id) AS first_seen_at,
               ROW_NUMBER() OVER (PARTITION BY nw.patient_id ORDER BY nw.message_id) AS first_pick,
               ROW_NUMBER() OVER (PARTITION BY nw.patient_id ORDER BY nw.observed_at DESC, nw.message_id DESC) AS last_pick
        FROM trends AS t
        JOIN newest AS nw ON nw.message_id = t.message_id AND nw.patient_id = t.patient_id AND nw.pick = 1
        WHERE t.hr_rise >= 20 AND t.spo2_fall >= 5
    )
    INSERT INTO @trend (reading_id, last_reading_id, patient_id, device_id, message, value, last_value, occurrences,
                        first_seen_at, last_seen_at)
    SELECT f.reading_id, l.reading_id, f.patient_id, l.device_id,
           N'heart rate rose ' + FORMAT(l.hr_rise, N'0.##', N'en-US') + N' /min and spo2 fell '
               + FORMAT(l.spo2_fall, N'0.##', N'en-US') + N' % within 10 minutes',
           f.hr_rise, l.hr_rise, f.occurrences, f.first_seen_at, l.observed_at
    FROM raised AS f
    JOIN raised AS l ON l.patient_id = f.patient_id AND l.last_pick = 1
    WHERE f.first_pick = 1;

    UPDATE a SET
        occurrences = a.occurrences + t.occurrences,
        last_reading_id = CASE WHEN t.last_seen_at >= a.last_seen_at THEN t.last_reading_id ELSE a.last_reading_id END,
        last_value = CASE WHEN t.last_seen_at >= a.last_seen_at THEN t.last_value ELSE a.last_value END,
        device_id = CASE WHEN t.last_seen_at >= a.last_seen_at THEN t.device_id ELSE a.device_id END,
        message = CASE WHEN t.last_seen_at >= a.last_seen_at THEN t.message ELSE a.message END,
        first_seen_at = CASE WHEN t.first_seen_at < a.first_seen_at THEN t.first_seen_at ELSE a.first_seen_at END,
        last_seen_at = CASE WHEN t.last_seen_at > a.last_seen_at THEN t.last_seen_at ELSE a.last_seen_at END,
        updated_at = @now_utc
    FROM dbo.alerts AS a WITH (UPDLOCK, HOLDLOCK)
    JOIN @trend AS t ON t.patient_id = a.patient_id
    WHERE a.vital = N'heart_rate,spo2' AND a.severity = N'critical' AND a.kind = N'trend' AND a.state <> N'resolved';
    SET @touched = @touched + @@ROWCOUNT;

    INSERT INTO dbo.alerts (reading_id, last_reading_id, patient_id, device_id, vital, severity, kind, state, message,
                            value, last_value, occurrences, first_seen_at, last_seen_at, created_at, updated_at)
    SELECT t.reading_id, t.last_reading_id, t.patient_id, t.device_id, N'heart_rate,spo2', N'critical', N'trend', N'open', t.message,
           t.value, t.last_value, t.occurrences, t.first_seen_at, t.last_seen_at, @now_utc, @now_utc
    FROM @trend AS t
    WHERE NOT EXISTS (
        SELECT 1 FROM dbo.alerts AS a WITH (UPDLOCK, HOLDLOCK)
        WHERE a.patient_id = t.patient_id AND a.vital = N'heart_rate,spo2' AND a.severity = N'critical'
          AND a.kind = N'trend' AND a.state <> N'resolved'
    );
    SET @touched = @touched + @@ROWCOUNT;

    SELECT @touched AS touched;
END
GO
