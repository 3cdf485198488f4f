-- reprise schema, PostgreSQL. Created in the provider's schema (the connection's
-- search_path). Times are epoch milliseconds from the database's clock; payloads are JSON
-- text, stored as written (never re-encoded).

-- The store's clock: epoch milliseconds of the transaction's start (`now()`), so one
-- statement compares and records a single instant whichever process runs it.
CREATE FUNCTION reprise_now_ms() RETURNS BIGINT
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT floor(extract(epoch FROM now()) * 1000)::bigint $$;

CREATE TABLE instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT,
    status TEXT NOT NULL,
    execution_id BIGINT NOT NULL DEFAULT 1,
    input TEXT,
    output TEXT,
    error TEXT,
    error_code TEXT,
    custom_status TEXT,
    custom_status_version BIGINT NOT NULL DEFAULT 0,
    parent_instance_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    lock_owner TEXT,
    lock_until BIGINT NOT NULL DEFAULT 0,
    generation BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX instances_status ON instances (status, created_at);
CREATE INDEX instances_parent ON instances (parent_instance_id);

CREATE TABLE history (
    instance_id TEXT NOT NULL,
    execution_id BIGINT NOT NULL,
    event_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    task INTEGER,
    ts BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (instance_id, execution_id, event_id)
);

-- Messages for orchestration instances; timers are TimerFired rows visible at their due time.
CREATE TABLE orchestrator_queue (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    execution_id BIGINT,
    task INTEGER,
    visible_at BIGINT NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL
);
-- Claims find instances with visible messages from this index alone (index-only scan).
CREATE INDEX orchestrator_queue_visible ON orchestrator_queue (visible_at, instance_id);
CREATE INDEX orchestrator_queue_instance ON orchestrator_queue (instance_id, seq);

-- Activities to run. A row lives until its final outcome is recorded.
CREATE TABLE worker_queue (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id TEXT NOT NULL,
    execution_id BIGINT NOT NULL,
    task INTEGER NOT NULL,
    name TEXT NOT NULL,
    input TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    retry TEXT,
    visible_at BIGINT NOT NULL,
    lock_owner TEXT,
    lock_until BIGINT NOT NULL DEFAULT 0,
    generation BIGINT NOT NULL DEFAULT 0,
    deliveries INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX worker_queue_visible ON worker_queue (visible_at, seq);
CREATE INDEX worker_queue_instance ON worker_queue (instance_id, execution_id, task);
