-- The pending items of a backfill in claim order, as in PostgreSQL (whose planner needs it:
-- see its 0009). The schemas stay alike; SQLite's claims read the same rows through it.
CREATE INDEX backfill_items_pending ON backfill_items (backfill_id, ord) WHERE status = 'pending';
