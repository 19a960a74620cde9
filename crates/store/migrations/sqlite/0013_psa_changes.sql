-- Issue 20, safe bulk changes. A backfill's mode: 'live' writes, 'shadow' records the changes
-- it would make, 'revert' restores what its parent wrote (remove_notes: and removes the notes
-- it added, where the PSA can).
ALTER TABLE backfills ADD COLUMN mode TEXT NOT NULL DEFAULT 'live';
ALTER TABLE backfills ADD COLUMN remove_notes INTEGER NOT NULL DEFAULT 0;

-- What psa_actions executions changed in the PSA, one row per field or note: the field-update
-- audit, a shadow run's diff, and what a revert reads. A row is written before the PSA write
-- it describes (and deleted when the PSA refuses it), so a crash between the two leaves the
-- audit saying what may have been written, never a write it does not know of. Values are
-- JSON text; a note's text is in new_value.
CREATE TABLE psa_changes (
    execution_id   TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    tenant_id      TEXT NOT NULL,
    backfill_id    TEXT NOT NULL REFERENCES backfills(id) ON DELETE CASCADE,
    entity_id      TEXT NOT NULL,
    kind           TEXT NOT NULL,
    field          TEXT,
    previous_value TEXT,
    new_value      TEXT,
    note_id        TEXT,
    internal       INTEGER,
    at             BIGINT NOT NULL,
    PRIMARY KEY (execution_id, seq)
);
CREATE INDEX psa_changes_by_entity ON psa_changes (backfill_id, entity_id);
