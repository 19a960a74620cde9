-- A backfill's own name (issue 18), and the audit of edits to a running backfill's settings
-- (name, max_in_flight, windows): who changed what from what, beside the signals' audit.
ALTER TABLE backfills ADD COLUMN name TEXT COLLATE "C";

CREATE TABLE backfill_edits (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    backfill_id TEXT COLLATE "C" NOT NULL REFERENCES backfills(id) ON DELETE CASCADE,
    field       TEXT COLLATE "C" NOT NULL,
    from_value  TEXT,
    to_value    TEXT,
    actor       TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX backfill_edits_backfill ON backfill_edits (backfill_id, id);
