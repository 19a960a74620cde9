-- As PostgreSQL's migration 0007: one ledger row per workflow and settled batch (`executions`
-- counts the executions it charges); `execution_id` only on the rows written before. SQLite
-- cannot drop a NOT NULL in place, so the table is rebuilt.
CREATE TABLE credit_ledger_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    execution_id TEXT UNIQUE,
    agent_id     INTEGER NOT NULL,
    credits      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    executions   INTEGER NOT NULL DEFAULT 1
);
INSERT INTO credit_ledger_new (id, tenant_id, execution_id, agent_id, credits, created_at)
    SELECT id, tenant_id, execution_id, agent_id, credits, created_at FROM credit_ledger;
DROP TABLE credit_ledger;
ALTER TABLE credit_ledger_new RENAME TO credit_ledger;
CREATE INDEX credit_ledger_tenant ON credit_ledger (tenant_id, created_at);
