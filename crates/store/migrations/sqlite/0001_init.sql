-- neo-backfill schema, SQLite flavour. Instants are INTEGER milliseconds since the Unix epoch.

CREATE TABLE server_settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE tenants (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL UNIQUE,
    entra_tenant_id         TEXT UNIQUE,
    monthly_credit_allowance INTEGER NOT NULL DEFAULT 10000,
    created_at              INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    env         TEXT NOT NULL CHECK (env IN ('live', 'test')),
    key_hash    BLOB NOT NULL UNIQUE,
    hint        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER,
    rotated_to  TEXT,
    last_used_at INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE workflows (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    description   TEXT,
    autonomy_type TEXT NOT NULL,
    entity_type   TEXT NOT NULL,
    state         TEXT NOT NULL,
    credit_tier   INTEGER NOT NULL,
    executor      TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX workflows_tenant ON workflows (tenant_id, id);

CREATE TABLE integrations (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id),
    psa         TEXT NOT NULL,
    config      TEXT NOT NULL,
    secrets     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE backfills (
    id                     TEXT PRIMARY KEY,
    tenant_id              TEXT NOT NULL REFERENCES tenants(id),
    state                  TEXT NOT NULL,
    target_workflow_id     INTEGER NOT NULL,
    entity_type            TEXT NOT NULL,
    filter_spec            TEXT NOT NULL,
    daily_execution_windows TEXT NOT NULL,
    timezone               TEXT NOT NULL,
    max_in_flight          INTEGER NOT NULL,
    reprocess              INTEGER NOT NULL,
    total_estimated        INTEGER,
    total_items            INTEGER NOT NULL DEFAULT 0,
    snapshot_complete      INTEGER NOT NULL DEFAULT 0,
    pending_count          INTEGER NOT NULL DEFAULT 0,
    in_flight_count        INTEGER NOT NULL DEFAULT 0,
    succeeded_count        INTEGER NOT NULL DEFAULT 0,
    failed_count           INTEGER NOT NULL DEFAULT 0,
    skipped_count          INTEGER NOT NULL DEFAULT 0,
    cancelled_count        INTEGER NOT NULL DEFAULT 0,
    credits_per_entity     INTEGER NOT NULL,
    started_at             INTEGER,
    completed_at           INTEGER,
    created_by             TEXT NOT NULL,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    error                  TEXT,
    parent_backfill_run_id TEXT
);
-- Newest first, keyset by id (ids are time-ordered UUIDv7).
CREATE INDEX backfills_tenant_id ON backfills (tenant_id, id);
CREATE INDEX backfills_tenant_workflow ON backfills (tenant_id, target_workflow_id, id);
-- At most one active backfill per target workflow.
CREATE UNIQUE INDEX backfills_one_active ON backfills (tenant_id, target_workflow_id)
    WHERE state IN ('DRAFT', 'RUNNING', 'PAUSED');

CREATE TABLE backfill_items (
    backfill_id   TEXT NOT NULL REFERENCES backfills(id) ON DELETE CASCADE,
    ord           INTEGER NOT NULL,
    entity_id     TEXT NOT NULL,
    entity_number TEXT,
    status        TEXT NOT NULL,
    execution_id  TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (backfill_id, ord)
);
CREATE INDEX backfill_items_status ON backfill_items (backfill_id, status, ord);

CREATE TABLE backfill_signals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    backfill_id TEXT NOT NULL REFERENCES backfills(id) ON DELETE CASCADE,
    signal      TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX backfill_signals_backfill ON backfill_signals (backfill_id, id);

CREATE TABLE executions (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    agent_id      INTEGER NOT NULL,
    agent_name    TEXT,
    backfill_id   TEXT,
    entity_id     TEXT NOT NULL,
    entity_number TEXT,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    retry_of      TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER
);
CREATE INDEX executions_tenant ON executions (tenant_id, id);
CREATE INDEX executions_agent_entity ON executions (tenant_id, agent_id, entity_id, status);
CREATE INDEX executions_backfill ON executions (backfill_id, id);

CREATE TABLE credit_ledger (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    execution_id TEXT NOT NULL UNIQUE,
    agent_id     INTEGER NOT NULL,
    credits      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX credit_ledger_tenant ON credit_ledger (tenant_id, created_at);

CREATE TABLE idempotency_keys (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    key           TEXT NOT NULL,
    fingerprint   BLOB NOT NULL,
    status        INTEGER NOT NULL,
    response      TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
