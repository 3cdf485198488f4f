-- Per-instance key-value store: written by the turns that set values (atomic with their
-- history), read by clients, removed with the instance. Values are strings.
CREATE TABLE kv (
    instance_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (instance_id, key)
);

-- What an activity reports about itself (the orchestration that scheduled it) and what
-- routes it to a worker (its session and tag).
ALTER TABLE worker_queue ADD COLUMN orchestration_name TEXT NOT NULL DEFAULT '';
ALTER TABLE worker_queue ADD COLUMN orchestration_version TEXT;
ALTER TABLE worker_queue ADD COLUMN session_id TEXT;
ALTER TABLE worker_queue ADD COLUMN tag TEXT;
