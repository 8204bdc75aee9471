-- The outbox claim looks for a destination's open rows oldest first; this partial index holds exactly those.
-- (ix_outbox_queue serves the per-patient "older open row" check.)
CREATE INDEX IF NOT EXISTS ix_outbox_due ON outbox (destination, id) WHERE state IN ('PENDING', 'SENDING');
