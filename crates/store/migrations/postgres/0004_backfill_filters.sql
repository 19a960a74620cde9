-- filter_spec moves out of the backfill row into its own table, as in SQLite (its migration
-- 0005 says why: there a whole row is rewritten on every counter update). PostgreSQL would keep
-- a large value out of line anyway (TOAST); the table keeps both schemas and queries alike.
CREATE TABLE backfill_filters (
    backfill_id TEXT COLLATE "C" PRIMARY KEY REFERENCES backfills(id) ON DELETE CASCADE,
    filter_spec TEXT COLLATE "C" NOT NULL
);
INSERT INTO backfill_filters (backfill_id, filter_spec) SELECT id, filter_spec FROM backfills;
ALTER TABLE backfills DROP COLUMN filter_spec;
