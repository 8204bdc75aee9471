-- Procedure and filtered indexes need these options when the procedure is created (they are stored with it).
SET ANSI_NULLS ON;
SET ANSI_PADDING ON;
SET ANSI_WARNINGS ON;
SET ARITHABORT ON;
SET CONCAT_NULL_YIELDS_NULL ON;
SET QUOTED_IDENTIFIER ON;
SET NUMERIC_ROUNDABORT OFF;
GO

-- dbo.usp_evaluate_alerts @message_id: raise or update alerts for the readings one message stored.
-- The T-SQL twin of the PostgreSQL function evaluate_alerts (sql/postgresql/003_evaluate_alerts.sql).
-- Called by the engine in the same transaction that stored the readings; returns ONE result set of one row:
-- touched, the number of alerts inserted or updated.
--
-- Threshold alerts: each reading is judged by the most specific band (device, then patient, then global).
-- One alert per patient and vital per message (its most severe, newest reading); while an alert of the same
-- patient, vital, severity and kind is open or acknowledged, a repeat breach updates it (occurrences, last
-- value, last seen) instead of raising another.
-- Trend alert (critical): within the 10 minutes ending at the message's newest heart rate or SpO2 reading,
-- heart rate rose by 20/min or more and SpO2 fell by 5 points or more.
--
-- PostgreSQL's INSERT ... ON CONFLICT DO UPDATE is written here as UPDATE, then INSERT ... WHERE NOT EXISTS,
-- both reading dbo.alerts WITH (UPDLOCK, HOLDLOCK): the key range stays locked until the transaction ends,
-- so two concurrent calls cannot both insert the same active alert (ux_alerts_active is the backstop).
-- Numbers in messages read as PostgreSQL's trim_scale(round(x::numeric, 2)): at most 2 decimals, no trailing
-- zeros ('152', '37.5', '36.99'). FORMAT rounds float to 15 significant digits, then half away from zero,
-- as PostgreSQL does; the culture is fixed so the session language cannot turn '37.5' into '37,5'.
-- No statement aggregates a NULL: a "Null value is eliminated" warning would reach the client ahead of
-- the result set.
CREATE OR ALTER PROCEDURE dbo.usp_evaluate_alerts
    @message_id BIGINT
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    DECLARE @touched INT = 0;
    DECLARE @now_utc DATETIME2(6) = SYSUTCDATETIME();

    -- The threshold alert each patient and vital of this message raises (at most one).
    DECLARE @threshold TABLE (
        reading_id    BIGINT NOT NULL,
        patient_id    NVARCHAR(100) NOT NULL,
        device_id     NVARCHAR(200) NOT NULL,
        vital         NVARCHAR(30) NOT NULL,
        severity      NVARCHAR(10) NOT NULL,
        message       NVARCHAR(400) NOT NULL,
        value         FLOAT NOT NULL,
        breach_count  INT NOT NULL,
        observed_at   DATETIME2(6) NOT NULL,
        PRIMARY KEY (patient_id, vital)
    );

    -- The trend alert each patient of this message raises (at most one).
    DECLARE @trend TABLE (
        reading_id    BIGINT NOT NULL,
        patient_id    NVARCHAR(100) NOT NULL,
        device_id     NVARCHAR(200) NOT NULL,
        message       NVARCHAR(400) NOT NULL,
        value         FLOAT NOT NULL,
        observed_at   DATETIME2(6) NOT NULL,
        PRIMARY KEY (patient_id)
    );

    WITH candidates AS (
        SELECT r.id AS reading_id, r.patient_id, r.device_id, r.vital, r.value, r.unit, r.observed_at,
               t.critical_low, t.warning_low, t.warning_high, t.critical_high,
               ROW_NUMBER() OVER (PARTITION BY r.id ORDER BY
                   CASE WHEN t.device_id IS NOT NULL THEN 0 WHEN t.patient_id IS NOT NULL THEN 1 ELSE 2 END) AS band_rank
        FROM dbo.device_readings AS r
        JOIN dbo.alert_thresholds AS t ON t.vital = r.vital
         AND (t.device_id = r.device_id OR t.patient_id = r.patient_id
              OR (t.device_id IS NULL AND t.patient_id IS NULL))
        WHERE r.message_id = @message_id
    ), judged AS (
        SELECT c.*,
               CASE WHEN c.value < c.critical_low OR c.value > c.critical_high THEN N'critical'
                    WHEN c.value < c.warning_low OR c.value > c.warning_high THEN N'warning' END AS severity
        FROM candidates AS c
        WHERE c.band_rank = 1
    ), breaches AS (
        SELECT j.*,
               CASE WHEN j.severity = N'critical' AND j.value > j.critical_high THEN N'above critical high ' + FORMAT(j.critical_high, N'0.##', N'en-US')
                    WHEN j.severity = N'critical' THEN N'below critical low ' + FORMAT(j.critical_low, N'0.##', N'en-US')
                    WHEN j.value > j.warning_high THEN N'above warning high ' + FORMAT(j.warning_high, N'0.##', N'en-US')
                    ELSE N'below warning low ' + FORMAT(j.warning_low, N'0.##', N'en-US') END AS crossed,
               COUNT(*) OVER (PARTITION BY j.patient_id, j.vital, j.severity) AS breach_count,
               ROW_NUMBER() OVER (PARTITION BY j.patient_id, j.vital ORDER BY
                   CASE j.severity WHEN N'critical' THEN 0 ELSE 1 END, j.observed_at DESC, j.reading_id DESC) AS pick
        FROM judged AS j
        WHERE j.severity IS NOT NULL
    )
    INSERT INTO @threshold (reading_id, patient_id, device_id, vital, severity, message, value, breach_count, observed_at)
    SELECT b.reading_id, b.patient_id, b.device_id, b.vital, b.severity,
           b.vital + N' ' + FORMAT(b.value, N'0.##', N'en-US') + N' ' + b.unit + N' ' + b.crossed,
           b.value, b.breach_count, b.observed_at
    FROM breaches AS b
    WHERE b.pick = 1;

    -- ON CONFLICT ... DO UPDATE: a repeat breach updates the active alert.
    UPDATE a SET
        occurrences = a.occurrences + b.breach_count,
        last_reading_id = CASE WHEN b.observed_at >= a.last_seen_at THEN b.reading_id ELSE a.last_reading_id END,
        last_value = CASE WHEN b.observed_at >= a.last_seen_at THEN b.value ELSE a.last_value END,
        device_id = CASE WHEN b.observed_at >= a.last_seen_at THEN b.device_id ELSE a.device_id END,
        message = CASE WHEN b.observed_at >= a.last_seen_at THEN b.message ELSE a.message END,
        first_seen_at = CASE WHEN b.observed_at < a.first_seen_at THEN b.observed_at ELSE a.first_seen_at END,
        last_seen_at = CASE WHEN b.observed_at > a.last_seen_at THEN b.observed_at ELSE a.last_seen_at END,
        updated_at = @now_utc
    FROM dbo.alerts AS a WITH (UPDLOCK, HOLDLOCK)
    JOIN @threshold AS b ON b.patient_id = a.patient_id AND b.vital = a.vital AND b.severity = a.severity
    WHERE a.kind = N'threshold' AND a.state <> N'resolved';
    SET @touched = @touched + @@ROWCOUNT;

    -- ... otherwise a new open alert.
    INSERT INTO dbo.alerts (reading_id, last_reading_id, patient_id, device_id, vital, severity, kind, state, message,
                            value, last_value, occurrences, first_seen_at, last_seen_at, created_at, updated_at)
    SELECT b.reading_id, b.reading_id, b.patient_id, b.device_id, b.vital, b.severity, N'threshold', N'open', b.message,
           b.value, b.value, b.breach_count, b.observed_at, b.observed_at, @now_utc, @now_utc
    FROM @threshold AS b
    WHERE NOT EXISTS (
        SELECT 1 FROM dbo.alerts AS a WITH (UPDLOCK, HOLDLOCK)
        WHERE a.patient_id = b.patient_id AND a.vital = b.vital AND a.severity = b.severity
          AND a.kind = N'threshold' AND a.state <> N'resolved'
    );
    SET @touched = @touched + @@ROWCOUNT;

    WITH ends AS (
        SELECT r.patient_id, MAX(r.observed_at) AS end_at
        FROM dbo.device_readings AS r
        WHERE r.message_id = @message_id AND r.vital IN (N'heart_rate', N'spo2')
        GROUP BY r.patient_id
    ), windowed AS (
        SELECT e.patient_id, r.vital,
               r.value - MIN(r.value) OVER (PARTITION BY e.patient_id, r.vital ORDER BY r.observed_at, r.id
                                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS rise,
               MAX(r.value) OVER (PARTITION BY e.patient_id, r.vital ORDER BY r.observed_at, r.id
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - r.value AS fall
        FROM ends AS e
        JOIN dbo.device_readings AS r ON r.patient_id = e.patient_id AND r.vital IN (N'heart_rate', N'spo2')
         AND r.observed_at >= DATEADD(MINUTE, -10, e.end_at) AND r.observed_at <= e.end_at
    ), hr_rises AS (
        -- PostgreSQL: MAX(CASE WHEN w.vital = 'heart_rate' THEN w.rise END); NULLs filtered out first (see top).
        SELECT w.patient_id, MAX(w.rise) AS hr_rise
        FROM windowed AS w
        WHERE w.vital = N'heart_rate' AND w.rise IS NOT NULL
        GROUP BY w.patient_id
    ), spo2_falls AS (
        SELECT w.patient_id, MAX(w.fall) AS spo2_fall
        FROM windowed AS w
        WHERE w.vital = N'spo2' AND w.fall IS NOT NULL
        GROUP BY w.patient_id
    ), trends AS (
        SELECT h.patient_id, h.hr_rise, s.spo2_fall
        FROM hr_rises AS h
        JOIN spo2_falls AS s ON s.patient_id = h.patient_id
    ), newest AS (
        SELECT r.id AS reading_id, r.patient_id, r.device_id, r.observed_at,
               ROW_NUMBER() OVER (PARTITION BY r.patient_id ORDER BY r.observed_at DESC, r.id DESC) AS pick
        FROM dbo.device_readings AS r
        WHERE r.message_id = @message_id AND r.vital IN (N'heart_rate', N'spo2')
    )
    INSERT INTO @trend (reading_id, patient_id, device_id, message, value, observed_at)
    SELECT nw.reading_id, nw.patient_id, nw.device_id,
           N'heart rate rose ' + FORMAT(t.hr_rise, N'0.##', N'en-US') + N' /min and spo2 fell '
               + FORMAT(t.spo2_fall, N'0.##', N'en-US') + N' % within 10 minutes',
           t.hr_rise, nw.observed_at
    FROM trends AS t
    JOIN newest AS nw ON nw.patient_id = t.patient_id AND nw.pick = 1
    WHERE t.hr_rise >= 20 AND t.spo2_fall >= 5;

    UPDATE a SET
        occurrences = a.occurrences + 1,
        last_reading_id = CASE WHEN t.observed_at >= a.last_seen_at THEN t.reading_id ELSE a.last_reading_id END,
        last_value = CASE WHEN t.observed_at >= a.last_seen_at THEN t.value ELSE a.last_value END,
        device_id = CASE WHEN t.observed_at >= a.last_seen_at THEN t.device_id ELSE a.device_id END,
        message = CASE WHEN t.observed_at >= a.last_seen_at THEN t.message ELSE a.message END,
        first_seen_at = CASE WHEN t.observed_at < a.first_seen_at THEN t.observed_at ELSE a.first_seen_at END,
        last_seen_at = CASE WHEN t.observed_at > a.last_seen_at THEN t.observed_at ELSE a.last_seen_at END,
        updated_at = @now_utc
    FROM dbo.alerts AS a WITH (UPDLOCK, HOLDLOCK)
    JOIN @trend AS t ON t.patient_id = a.patient_id
    WHERE a.vital = N'heart_rate,spo2' AND a.severity = N'critical' AND a.kind = N'trend' AND a.state <> N'resolved';
    SET @touched = @touched + @@ROWCOUNT;

    INSERT INTO dbo.alerts (reading_id, last_reading_id, patient_id, device_id, vital, severity, kind, state, message,
                            value, last_value, occurrences, first_seen_at, last_seen_at, created_at, updated_at)
    SELECT t.reading_id, t.reading_id, t.patient_id, t.device_id, N'heart_rate,spo2', N'critical', N'trend', N'open', t.message,
           t.value, t.value, 1, t.observed_at, t.observed_at, @now_utc, @now_utc
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
