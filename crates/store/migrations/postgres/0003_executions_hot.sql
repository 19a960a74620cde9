-- An execution's status changes at least twice per dispatch (running, then its outcome). With
-- status in an index every such update wrote a new entry into all four indexes; without it,
-- and with room left on each page (fillfactor 85), the update is HOT: the new row version
-- goes on the same page and no index is touched. The "already succeeded on this entity" check
-- of the claim still finds the few executions of an entity by (tenant, agent, entity) and
-- reads their status from the row.
DROP INDEX executions_agent_entity;
CREATE INDEX executions_agent_entity ON executions (tenant_id, agent_id, entity_id);
ALTER TABLE executions SET (fillfactor = 85);
