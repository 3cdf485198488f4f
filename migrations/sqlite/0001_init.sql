-- reprise schema, SQLite. Times are epoch milliseconds from the store's clock.
CREATE TABLE instances (
    instance_id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    version TEXT,
    status TEXT NOT NULL,
    execution_id INTEGER NOT NULL DEFAULT 1,
    input TEXT,
    output TEXT,
    error TEXT,
    error_code TEXT,
    custom_status TEXT,
    custom_status_version INTEGER NOT NULL DEFAULT 0,
    parent_instance_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    lock_owner TEXT,
    lock_until INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX instances_status ON instances (status, created_at);
CREATE INDEX instances_parent ON instances (parent_instance_id);

CREATE TABLE history (
    instance_id TEXT NOT NULL,
    execution_id INTEGER NOT NULL,
    event_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    task INTEGER,
    ts INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (instance_id, execution_id, event_id)
) WITHOUT ROWID;

-- Messages for orchestration instances; timers are TimerFired rows visible at their due time.
CREATE TABLE orchestrator_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    execution_id INTEGER,
    task INTEGER,
    visible_at INTEGER NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL
);
CREATE INDEX orchestrator_queue_visible ON orchestrator_queue (visible_at);
CREATE INDEX orchestrator_queue_instance ON orchestrator_queue (instance_id, seq);

-- Activities to run. A row lives until its final outcome is recorded.
CREATE TABLE worker_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id INTEGER NOT NULL,
    task INTEGER NOT NULL,
    name TEXT NOT NULL,
    input TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    retry TEXT,
    visible_at INTEGER NOT NULL,
    lock_owner TEXT,
    lock_until INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0,
    deliveries INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX worker_queue_visible ON worker_queue (visible_at);
CREATE INDEX worker_queue_instance ON worker_queue (instance_id, execution_id, task);
