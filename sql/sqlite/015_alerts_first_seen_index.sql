-- The dashboard's statistics count, rank and time the alerts first seen in a range (and in the range before
-- it, for the change): without this index each of their four queries read the whole alerts table.
CREATE INDEX IF NOT EXISTS ix_alerts_first_seen ON alerts (first_seen_at);
