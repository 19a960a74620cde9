-- filter_spec moves out of the backfill row into its own table. SQLite rewrites a whole row on
-- every update, and a backfill's counters change on every claim and every settlement: with an
-- explicit id list in the row (up to 100,000 ids, 1.1 MB of JSON) each of those updates copied
-- the list (dispatch of 100,000 items: 2,735 items/s with it in the row, 9,483 without).
-- PostgreSQL keeps such a value out of line (TOAST) and an update leaves it alone.
CREATE TABLE backfill_filters (
    backfill_id TEXT PRIMARY KEY REFERENCES backfills(id) ON DELETE CASCADE,
    filter_spec TEXT NOT NULL
);
INSERT INTO backfill_filters (backfill_id, filter_spec) SELECT id, filter_spec FROM backfills;
ALTER TABLE backfills DROP COLUMN filter_spec;
