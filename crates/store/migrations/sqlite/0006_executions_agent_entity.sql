-- As PostgreSQL's migration 0003: the "already succeeded on this entity" index without the
-- status column, which changes on every settlement (there, so that those updates are HOT).
DROP INDEX executions_agent_entity;
CREATE INDEX executions_agent_entity ON executions (tenant_id, agent_id, entity_id);
