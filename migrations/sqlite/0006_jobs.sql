-- Jobs: async functions with checkpointed steps, run as instances (docs/guide.md, "Jobs
-- and steps"). Rows of a run are written by its running attempt, fenced by the attempt's
-- activity lease, and deleted with the instance.

-- When a run first started (NULL: still pending) and its last progress.
CREATE TABLE job_runs (
    instance_id TEXT PRIMARY KEY,
    started_at INTEGER,
    progress TEXT,
    updated_at INTEGER NOT NULL
);

-- One row per step of a run (in the order first recorded: rowid). state: done, failed,
-- retrying, sleeping or waiting.
CREATE TABLE job_steps (
    instance_id TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    value TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    until_ms INTEGER,
    event TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (instance_id, name)
);
-- The runs waiting for each event: what an emit wakes, without scanning running instances.
CREATE INDEX job_steps_waiting ON job_steps (event) WHERE state = 'waiting';

CREATE TABLE job_logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT,
    step TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX job_logs_instance ON job_logs (instance_id, seq);

-- The last payload emitted under each event name: a run that awaits the name later
-- receives it at once. Kept until cleared (app.clearEvent) or replaced.
CREATE TABLE job_events (
    name TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    emitted_at INTEGER NOT NULL
);

-- The runs of each concurrency key, in the order they asked for it: the first whose
-- instance has not ended holds the key.
CREATE TABLE job_keys (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    UNIQUE (key, instance_id)
);
CREATE INDEX job_keys_instance ON job_keys (instance_id);
