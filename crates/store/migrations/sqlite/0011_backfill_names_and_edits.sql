-- A backfill's own name (issue 18), and the audit of edits to a running backfill's settings
-- (name, max_in_flight, windows): who changed what from what, beside the signals' audit.
ALTER TABLE backfills ADD COLUMN name TEXT;

CREATE TABLE backfill_edits (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    backfill_id TEXT NOT NULL REFERENCES backfills(id) ON DELETE CASCADE,
    field       TEXT NOT NULL,
    from_value  TEXT,
    to_value    TEXT,
    actor       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX backfill_edits_backfill ON backfill_edits (backfill_id, id);
