-- Issue 22, notifications. A tenant's endpoints: where events go, the secret that signs them
-- (sealed with the master key, like executor secrets), which event types (a comma-wrapped
-- list, ",backfill.paused,backfill.completed,", matched with LIKE in both dialects), the body
-- format ('json' or 'slack') and whether it is enabled.
CREATE TABLE notification_endpoints (
    id          TEXT COLLATE "C" PRIMARY KEY,
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    event_types TEXT NOT NULL,
    format      TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    description TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX notification_endpoints_tenant ON notification_endpoints (tenant_id, id);

-- The outbox: one row per event, written in the transaction of the state change it reports
-- (and only when some enabled endpoint subscribes to it); data is the JSON the event carries.
CREATE TABLE notification_events (
    id          TEXT COLLATE "C" PRIMARY KEY,
    tenant_id   TEXT COLLATE "C" NOT NULL,
    type        TEXT NOT NULL,
    backfill_id TEXT COLLATE "C",
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- One row per event and endpoint, until it is delivered (delivered_at) or given up
-- (gave_up_at). A deliverer takes a row by setting lease_until, so replicas never send the
-- same row at once; an expired lease (a killed process) makes it due again.
CREATE TABLE notification_deliveries (
    event_id        TEXT COLLATE "C" NOT NULL,
    endpoint_id     TEXT COLLATE "C" NOT NULL REFERENCES notification_endpoints(id) ON DELETE CASCADE,
    tenant_id       TEXT COLLATE "C" NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    delivered_at    BIGINT,
    gave_up_at      BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX notification_deliveries_endpoint ON notification_deliveries (endpoint_id, created_at);

-- The failure-rate alert: the latest outcomes ('s'/'f', at most 100, oldest first) and whether
-- backfill.failure_rate_high was written for this backfill (it is, at most once).
ALTER TABLE backfills ADD COLUMN recent_outcomes TEXT NOT NULL DEFAULT '';
ALTER TABLE backfills ADD COLUMN failure_rate_alerted BOOLEAN NOT NULL DEFAULT FALSE;
