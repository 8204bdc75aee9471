-- Read-only views for reporting tools (Power BI, Grafana): alert trends, device health, integration
-- throughput and the outbox, with stable column names a report can bind to (docs/bi-views.md lists every
-- column). Times are UTC (timestamp without time zone); hours are the hour's first moment.
-- Each view reads its tables once, grouped (no subquery per row). Applied by `vitalsstream db upgrade`;
-- a DBA may run it by hand with psql -f (CREATE OR REPLACE: a re-run is harmless).
-- The twins: sql/sqlite/006_views.sql and sql/mssql/006_views.sql, the same columns with the same meaning.

-- Per hour, severity and kind: alerts raised (first breach observed in the hour), acknowledged and resolved
-- in the hour, and the average minutes from first breach to acknowledgement of those raised in the hour.
CREATE OR REPLACE VIEW bi_alert_trends_hourly AS
WITH events AS (
    SELECT date_trunc('hour', a.first_seen_at) AS hour, a.severity, a.kind,
           1 AS raised, 0 AS acknowledged, 0 AS resolved,
           CASE WHEN a.acknowledged_at IS NOT NULL THEN 1 ELSE 0 END AS raised_acknowledged,
           CASE WHEN a.acknowledged_at IS NOT NULL
                THEN CAST(EXTRACT(EPOCH FROM a.acknowledged_at - a.first_seen_at) * 1000000 AS BIGINT)
                ELSE 0 END AS acknowledge_us
    FROM alerts a
    UNION ALL
    SELECT date_trunc('hour', a.acknowledged_at), a.severity, a.kind, 0, 1, 0, 0, 0
    FROM alerts a
    WHERE a.acknowledged_at IS NOT NULL
    UNION ALL
    SELECT date_trunc('hour', a.resolved_at), a.severity, a.kind, 0, 0, 1, 0, 0
    FROM alerts a
    WHERE a.resolved_at IS NOT NULL
)
SELECT e.hour, e.severity, e.kind,
       SUM(e.raised) AS raised,
       SUM(e.acknowledged) AS acknowledged,
       SUM(e.resolved) AS resolved,
       SUM(e.raised_acknowledged) AS raised_acknowledged,
       CASE WHEN SUM(e.raised_acknowledged) > 0
            THEN CAST(SUM(e.acknowledge_us) AS DOUBLE PRECISION) / SUM(e.raised_acknowledged) / 60000000
       END AS avg_minutes_to_acknowledge
FROM events e
GROUP BY e.hour, e.severity, e.kind;

-- Per device that sent readings: its latest reading (by id, as the stale-device job reads it), readings
-- observed in the last 24 hours, an open or acknowledged device_offline incident, the interval the
-- stale-device job expects (NULL before it has seen the device), and whole minutes of silence.
CREATE OR REPLACE VIEW bi_device_health AS
WITH clock AS (
    SELECT now() AT TIME ZONE 'UTC' AS now_utc,
           (now() AT TIME ZONE 'UTC') - INTERVAL '24 hours' AS day_ago
), per_device AS (
    SELECT r.device_id,
           MAX(r.id) AS last_reading_id,
           MAX(r.observed_at) AS last_observed_at,
           SUM(CASE WHEN r.observed_at >= c.day_ago THEN 1 ELSE 0 END) AS readings_last_24h
    FROM device_readings r
    CROSS JOIN clock c
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
       CAST(EXTRACT(EPOCH FROM c.now_utc - l.created_at) * 1000000 AS BIGINT) / 60000000 AS minutes_since_last_reading
FROM per_device d
CROSS JOIN clock c
JOIN device_readings l ON l.id = d.last_reading_id
JOIN messages m ON m.id = l.message_id
LEFT JOIN device_status s ON s.device_id = d.device_id
LEFT JOIN incidents i ON i.kind = 'device_offline' AND i.subject = d.device_id AND i.state <> 'resolved';

-- Per route and hour: messages by hour of receipt (status, readings, alerts their readings raised, average
-- time from receipt to answer) and outbox records by the hour they were created (and how many of those are
-- sent or dead by now). An hour with outbox records only (resolve notices) has zero messages.
CREATE OR REPLACE VIEW bi_integration_throughput_hourly AS
WITH message_hours AS (
    SELECT m.route, m.hour,
           COUNT(*) AS received,
           SUM(CASE WHEN m.status = 'STORED' THEN 1 ELSE 0 END) AS stored,
           SUM(CASE WHEN m.status = 'FILTERED' THEN 1 ELSE 0 END) AS filtered,
           SUM(CASE WHEN m.status = 'ERROR' THEN 1 ELSE 0 END) AS errored,
           SUM(m.reading_count) AS readings_stored,
           SUM(CASE WHEN m.processed_at IS NOT NULL THEN 1 ELSE 0 END) AS answered,
           SUM(CASE WHEN m.processed_at IS NOT NULL
                    THEN CAST(EXTRACT(EPOCH FROM m.processed_at - m.received_at) * 1000000 AS BIGINT)
                    ELSE 0 END) AS answer_us
    FROM (SELECT x.route, date_trunc('hour', x.received_at) AS hour,
                 x.status, x.reading_count, x.received_at, x.processed_at
          FROM messages x) m
    GROUP BY m.route, m.hour
), alert_hours AS (
    SELECT m.route, m.hour, COUNT(*) AS alerts_raised
    FROM (SELECT x.route, date_trunc('hour', x.received_at) AS hour
          FROM alerts a
          JOIN device_readings r ON r.id = a.reading_id
          JOIN messages x ON x.id = r.message_id) m
    GROUP BY m.route, m.hour
), outbox_hours AS (
    SELECT o.route, o.hour,
           COUNT(*) AS outbox_created,
           SUM(CASE WHEN o.state = 'SENT' THEN 1 ELSE 0 END) AS outbox_sent,
           SUM(CASE WHEN o.state = 'DEAD' THEN 1 ELSE 0 END) AS outbox_dead
    FROM (SELECT x.route, date_trunc('hour', x.created_at) AS hour, x.state
          FROM outbox x) o
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
            THEN CAST(mh.answer_us AS DOUBLE PRECISION) / mh.answered / 1000
       END AS avg_ack_latency_ms
FROM hours h
LEFT JOIN message_hours mh ON mh.route = h.route AND mh.hour = h.hour
LEFT JOIN alert_hours ah ON ah.route = h.route AND ah.hour = h.hour
LEFT JOIN outbox_hours oh ON oh.route = h.route AND oh.hour = h.hour;

-- Per route, hour the records were created, destination and record kind: outbox records and what became
-- of them by now, with the average time from creation to confirmed delivery.
CREATE OR REPLACE VIEW bi_outbox_throughput_hourly AS
WITH records AS (
    SELECT o.route, date_trunc('hour', o.created_at) AS hour, o.destination, o.kind, o.state,
           CASE WHEN o.state = 'SENT' AND o.sent_at IS NOT NULL
                THEN CAST(EXTRACT(EPOCH FROM o.sent_at - o.created_at) * 1000000 AS BIGINT)
                ELSE 0 END AS delivery_us
    FROM outbox o
)
SELECT r.route, r.hour, r.destination, r.kind,
       COUNT(*) AS created,
       SUM(CASE WHEN r.state = 'SENT' THEN 1 ELSE 0 END) AS sent,
       SUM(CASE WHEN r.state = 'DEAD' THEN 1 ELSE 0 END) AS dead,
       SUM(CASE WHEN r.state = 'SUPPRESSED' THEN 1 ELSE 0 END) AS suppressed,
       SUM(CASE WHEN r.state IN ('PENDING', 'SENDING') THEN 1 ELSE 0 END) AS waiting,
       CASE WHEN SUM(CASE WHEN r.state = 'SENT' THEN 1 ELSE 0 END) > 0
            THEN CAST(SUM(r.delivery_us) AS DOUBLE PRECISION) / SUM(CASE WHEN r.state = 'SENT' THEN 1 ELSE 0 END)
                 / 1000
       END AS avg_delivery_latency_ms
FROM records r
GROUP BY r.route, r.hour, r.destination, r.kind;

-- Per destination with outbox records: the queue now, whether an operator paused it, and the oldest record
-- still waiting for its first or next attempt (PENDING) with its age in whole seconds.
CREATE OR REPLACE VIEW bi_outbox_status AS
WITH clock AS (
    SELECT now() AT TIME ZONE 'UTC' AS now_utc
), counts AS (
    SELECT o.destination,
           SUM(CASE WHEN o.state = 'PENDING' THEN 1 ELSE 0 END) AS pending,
           SUM(CASE WHEN o.state = 'SENDING' THEN 1 ELSE 0 END) AS sending,
           SUM(CASE WHEN o.state = 'SENT' THEN 1 ELSE 0 END) AS sent,
           SUM(CASE WHEN o.state = 'DEAD' THEN 1 ELSE 0 END) AS dead,
           SUM(CASE WHEN o.state = 'SUPPRESSED' THEN 1 ELSE 0 END) AS suppressed
    FROM outbox o
    GROUP BY o.destination
), oldest AS (
    SELECT o.destination, MIN(o.created_at) AS oldest_pending_at
    FROM outbox o
    WHERE o.state = 'PENDING'
    GROUP BY o.destination
)
SELECT k.destination,
       CASE WHEN d.paused THEN 1 ELSE 0 END AS paused,
       k.pending, k.sending, k.sent, k.dead, k.suppressed,
       p.oldest_pending_at,
       CAST(EXTRACT(EPOCH FROM c.now_utc - p.oldest_pending_at) * 1000000 AS BIGINT) / 1000000
           AS oldest_pending_age_seconds
FROM counts k
CROSS JOIN clock c
LEFT JOIN oldest p ON p.destination = k.destination
LEFT JOIN destinations d ON d.name = k.destination;
