-- The registry of runtimes: each running runtime's row, refreshed by its heartbeat. A row
-- whose heartbeat is older than its own stale_after_ms belongs to a dead runtime.
CREATE TABLE runtimes (
    runtime_id TEXT PRIMARY KEY,
    worker_node_id TEXT UNIQUE,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    stale_after_ms INTEGER NOT NULL,
    capabilities TEXT NOT NULL
);
