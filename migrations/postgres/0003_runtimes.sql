-- The registry of runtimes: each running runtime's row, refreshed by its heartbeat. A row
-- whose heartbeat is older than its own stale_after_ms belongs to a dead runtime, whose
-- leases any live runtime releases at once.
CREATE TABLE runtimes (
    runtime_id TEXT PRIMARY KEY,
    worker_node_id TEXT UNIQUE,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stale_after_ms BIGINT NOT NULL,
    capabilities TEXT NOT NULL
);
CREATE INDEX instances_lock_owner ON instances (lock_owner) WHERE lock_owner IS NOT NULL;
CREATE INDEX worker_queue_lock_owner ON worker_queue (lock_owner) WHERE lock_owner IS NOT NULL;
