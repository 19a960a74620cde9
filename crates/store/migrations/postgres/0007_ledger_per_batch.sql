-- The credit ledger gets one row per workflow and settled batch (`executions` counts the
-- executions it charges) instead of one per execution: a row and three index entries per item
-- were a fifth of a settlement's work. Rows written before keep their `execution_id`.
ALTER TABLE credit_ledger ALTER COLUMN execution_id DROP NOT NULL;
ALTER TABLE credit_ledger ADD COLUMN executions BIGINT NOT NULL DEFAULT 1;
