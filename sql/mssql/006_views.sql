-- Read-only views for reporting tools (Power BI, Grafana): alert trends, device health, integration
-- throughput and the outbox (docs/bi-views.md lists every column).
-- The T-SQL twin of sql/postgresql/006_views.sql: the same columns with the same meaning. Times are UTC
-- (datetime2 without offset); an hour is its first moment. Durations are DATEDIFF_BIG in microseconds
-- (exact for datetime2(6)), divided as on PostgreSQL.
-- CREATE OR ALTER VIEW (SQL Server 2016 SP1): a re-run is harmless and keeps the grants on the views.
-- Batches are separated by GO lines; CREATE VIEW must be alone in its batch.

SET ANSI_NULLS ON;
SET ANSI_PADDING ON;
SET ANSI_WARNINGS ON;
SET ARITHABORT ON;
SET CONCAT_NULL_YIELDS_NULL ON;
SET QUOTED_IDENTIFIER ON;
SET NUMERIC_ROUNDABORT OFF;
GO

-- Per hour, severity and kind: alerts raised (first breach observed in the hour), acknowledged and resolved
-- in the hour, and the average minutes from first breach to acknowledgement of those raised in the hour.
CREATE OR ALTER VIEW dbo.bi_alert_trends_hourly AS
WITH events AS (
    SELECT DATETIME2FROMPARTS(YEAR(a.first_seen_at), MONTH(a.first_seen_at), DAY(a.first_seen_at),
                              DATEPART(HOUR, a.first_seen_at), 0, 0, 0, 6) AS hour,
           a.severity, a.kind,
           1 AS raised, 0 AS acknowledged, 0 AS resolved,
           CASE WHEN a.acknowledged_at IS NOT NULL THEN 1 ELSE 0 END AS raised_acknowledged,
           CASE WHEN a.acknowledged_at IS NOT NULL
                THEN DATEDIFF_BIG(MICROSECOND, a.first_seen_at, a.acknowledged_at)
                ELSE 0 END AS acknowledge_us
    FROM dbo.alerts AS a
    UNION ALL
    SELECT DATETIME2FROMPARTS(YEAR(a.acknowledged_at), MONTH(a.acknowledged_at), DAY(a.acknowledged_at),
                              DATEPART(HOUR, a.acknowledged_at), 0, 0, 0, 6),
           a.severity, a.kind, 0, 1, 0, 0, 0
    FROM dbo.alerts AS a
    WHERE a.acknowledged_at IS NOT NULL
    UNION ALL
    SELECT DATETIME2FROMPARTS(YEAR(a.resolved_at), MONTH(a.resolved_at), DAY(a.resolved_at),
                              DATEPART(HOUR, a.resolved_at), 0, 0, 0, 6),
           a.severity, a.kind, 0, 0, 1, 0, 0
    FROM dbo.alerts AS a
    WHERE a.resolved_at IS NOT NULL
)
SELECT e.hour, e.severity, e.kind,
       SUM(e.raised) AS raised,
       SUM(e.acknowledged) AS acknowledged,
       SUM(e.resolved) AS resolved,
       SUM(e.raised_acknowledged) AS raised_acknowledged,
       CASE WHEN SUM(e.raised_acknowledged) > 0
            THEN CAST(SUM(e.acknowledge_us) AS FLOAT) / SUM(e.raised_acknowledged) / 60000000
       END AS avg_minutes_to_acknowledge
FROM events AS e
GROUP BY e.hour, e.severity, e.kind;
GO

-- Per device that sent readings: its latest reading (by id, as the stale-device job reads it), readings
-- observed in the last 24 hours, an open or acknowledged device_offline incident, the interval the
-- stale-device job expects (NULL before it has seen the device), and whole minutes of silence.
CREATE OR ALTER VIEW dbo.bi_device_health AS
WITH clock AS (
    SELECT SYSUTCDATETIME() AS now_utc,
           DATEADD(HOUR, -24, SYSUTCDATETIME()) AS day_ago
), per_device AS (
    SELECT r.device_id,
           MAX(r.id) AS last_reading_id,
           MAX(r.observed_at) AS last_observed_at,
           SUM(CASE WHEN r.observed_at >= c.day_ago THEN 1 ELSE 0 END) AS readings_last_24h
    FROM dbo.device_readings AS r
    CROSS JOIN clock AS c
    GROUP BY r.device_id
)
SELECT d.device_id,
       l.patient_id AS last_patient_id,
       m.route AS last_route,
       l.created_at AS last_reading_at,
       d.last_observed_at,
       d.readings_last_24h,
       CASE WHEN i.id IS NULL THEN 0 ELSE 1 END AS offline_incident_open,
       i.state AS offline_incident_state,
       i.opened_at AS offline_since,
       s.expected_interval_seconds,
       DATEDIFF_BIG(MICROSECOND, l.created_at, c.now_utc) / 60000000 AS minutes_since_last_reading
FROM per_device AS d
CROSS JOIN clock AS c
JOIN dbo.device_readings AS l ON l.id = d.last_reading_id
JOIN dbo.messages AS m ON m.id = l.message_id
LEFT JOIN dbo.device_status AS s ON s.device_id = d.device_id
LEFT JOIN dbo.incidents AS i ON i.kind = N'device_offline' AND i.subject = d.device_id AND i.state <> N'resolved';
GO

-- Per route and hour: messages by hour of receipt (status, readings, alerts their readings raised, average
-- time from receipt to answer) and outbox records by the hour they were created (and how many of those are
-- sent or dead by now). An hour with outbox records only (resolve notices) has zero messages.
CREATE OR ALTER VIEW dbo.bi_integration_throughput_hourly AS
WITH message_hours AS (
    SELECT m.route, m.hour,
           COUNT(*) AS received,
           SUM(CASE WHEN m.status = N'STORED' THEN 1 ELSE 0 END) AS stored,
           SUM(CASE WHEN m.status = N'FILTERED' THEN 1 ELSE 0 END) AS filtered,
           SUM(CASE WHEN m.status = N'ERROR' THEN 1 ELSE 0 END) AS errored,
           SUM(m.reading_count) AS readings_stored,
           SUM(CASE WHEN m.processed_at IS NOT NULL THEN 1 ELSE 0 END) AS answered,
           SUM(CASE WHEN m.processed_at IS NOT NULL
                    THEN DATEDIFF_BIG(MICROSECOND, m.received_at, m.processed_at)
                    ELSE 0 END) AS answer_us
    FROM (SELECT x.route, DATETIME2FROMPARTS(YEAR(x.received_at), MONTH(x.received_at), DAY(x.received_at),
                                    DATEPART(HOUR, x.received_at), 0, 0, 0, 6) AS hour,
                 x.status, x.reading_count, x.received_at, x.processed_at
          FROM dbo.messages AS x) AS m
    GROUP BY m.route, m.hour
), alert_hours AS (
    SELECT m.route, m.hour, COUNT(*) AS alerts_raised
    FROM (SELECT x.route, DATETIME2FROMPARTS(YEAR(x.received_at), MONTH(x.received_at), DAY(x.received_at),
                                    DATEPART(HOUR, x.received_at), 0, 0, 0, 6) AS hour
          FROM dbo.alerts AS a
          JOIN dbo.device_readings AS r ON r.id = a.reading_id
          JOIN dbo.messages AS x ON x.id = r.message_id) AS m
    GROUP BY m.route, m.hour
), outbox_hours AS (
    SELECT o.route, o.hour,
           COUNT(*) AS outbox_created,
           SUM(CASE WHEN o.state = N'SENT' THEN 1 ELSE 0 END) AS outbox_sent,
           SUM(CASE WHEN o.state = N'DEAD' THEN 1 ELSE 0 END) AS outbox_dead
    FROM (SELECT x.route, DATETIME2FROMPARTS(YEAR(x.created_at), MONTH(x.created_at), DAY(x.created_at),
                                    DATEPART(HOUR, x.created_at), 0, 0, 0, 6) AS hour, x.state
          FROM dbo.outbox AS x) AS o
    GROUP BY o.route, o.hour
), hours AS (
    SELECT route, hour FROM message_hours
    UNION
    SELECT route, hour FROM outbox_hours
)
SELECT h.route, h.hour,
       COALESCE(mh.received, 0) AS received,
       COALESCE(mh.stored, 0) AS stored,
       COALESCE(mh.filtered, 0) AS filtered,
       COALESCE(mh.errored, 0) AS errored,
       COALESCE(mh.readings_stored, 0) AS readings_stored,
       COALESCE(ah.alerts_raised, 0) AS alerts_raised,
       COALESCE(oh.outbox_created, 0) AS outbox_created,
       COALESCE(oh.outbox_sent, 0) AS outbox_sent,
       COALESCE(oh.outbox_dead, 0) AS outbox_dead,
       CASE WHEN mh.answered > 0
            THEN CAST(mh.answer_us AS FLOAT) / mh.answered / 1000
       END AS avg_ack_latency_ms
FROM hours AS h
LEFT JOIN message_hours AS mh ON mh.route = h.route AND mh.hour = h.hour
LEFT JOIN alert_hours AS ah ON ah.route = h.route AND ah.hour = h.hour
LEFT JOIN outbox_hours AS oh ON oh.route = h.route AND oh.hour = h.hour;
GO

-- Per route, hour the records were created, destination and record kind: outbox records and what became
-- of them by now, with the average time from creation to confirmed delivery.
CREATE OR ALTER VIEW dbo.bi_outbox_throughput_hourly AS
WITH records AS (
    SELECT o.route,
           DATETIME2FROMPARTS(YEAR(o.created_at), MONTH(o.created_at), DAY(o.created_at),
                              DATEPART(HOUR, o.created_at), 0, 0, 0, 6) AS hour,
           o.destination, o.kind, o.state,
           CASE WHEN o.state = N'SENT' AND o.sent_at IS NOT NULL
                THEN DATEDIFF_BIG(MICROSECOND, o.created_at, o.sent_at)
                ELSE 0 END AS delivery_us
    FROM dbo.outbox AS o
)
SELECT r.route, r.hour, r.destination, r.kind,
       COUNT(*) AS created,
       SUM(CASE WHEN r.state = N'SENT' THEN 1 ELSE 0 END) AS sent,
       SUM(CASE WHEN r.state = N'DEAD' THEN 1 ELSE 0 END) AS dead,
       SUM(CASE WHEN r.state = N'SUPPRESSED' THEN 1 ELSE 0 END) AS suppressed,
       SUM(CASE WHEN r.state IN (N'PENDING', N'SENDING') THEN 1 ELSE 0 END) AS waiting,
       CASE WHEN SUM(CASE WHEN r.state = N'SENT' THEN 1 ELSE 0 END) > 0
            THEN CAST(SUM(r.delivery_us) AS FLOAT) / SUM(CASE WHEN r.state = N'SENT' THEN 1 ELSE 0 END)
                 / 1000
       END AS avg_delivery_latency_ms
FROM records AS r
GROUP BY r.route, r.hour, r.destination, r.kind;
GO

-- Per destination with outbox records: the queue now, whether an operator paused it, and the oldest record
-- still waiting for its first or next attempt (PENDING) with its age in whole seconds.
CREATE OR ALTER VIEW dbo.bi_outbox_status AS
WITH clock AS (
    SELECT SYSUTCDATETIME() AS now_utc
), counts AS (
    SELECT o.destination,
           SUM(CASE WHEN o.state = N'PENDING' THEN 1 ELSE 0 END) AS pending,
           SUM(CASE WHEN o.state = N'SENDING' THEN 1 ELSE 0 END) AS sending,
           SUM(CASE WHEN o.state = N'SENT' THEN 1 ELSE 0 END) AS sent,
           SUM(CASE WHEN o.state = N'DEAD' THEN 1 ELSE 0 END) AS dead,
           SUM(CASE WHEN o.state = N'SUPPRESSED' THEN 1 ELSE 0 END) AS suppressed
    FROM dbo.outbox AS o
    GROUP BY o.destination
), oldest AS (
    SELECT o.destination, MIN(o.created_at) AS oldest_pending_at
    FROM dbo.outbox AS o
    WHERE o.state = N'PENDING'
    GROUP BY o.destination
)
SELECT k.destination,
       CASE WHEN d.paused = 1 THEN 1 ELSE 0 END AS paused,
       k.pending, k.sending, k.sent, k.dead, k.suppressed,
       p.oldest_pending_at,
       DATEDIFF_BIG(MICROSECOND, p.oldest_pending_at, c.now_utc) / 1000000 AS oldest_pending_age_seconds
FROM counts AS k
CROSS JOIN clock AS c
LEFT JOIN oldest AS p ON p.destination = k.destination
LEFT JOIN dbo.destinations AS d ON d.name = k.destination;
GO
