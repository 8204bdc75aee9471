-- The outbox claim looks for a destination's open rows oldest first; this partial index holds exactly those.
-- (ix_outbox_queue serves the per-patient "older open row" check.) SQLite uses a partial index only when the
-- query names the same constants: engine/outbox.py writes the states into the SQL as literals.
CREATE INDEX IF NOT EXISTS ix_outbox_due ON outbox (destination, id) WHERE state IN ('PENDING', 'SENDING');
