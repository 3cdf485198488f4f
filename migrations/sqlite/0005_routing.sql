-- Routing: a claim takes only work the claiming runtime can run (see docs/protocol.md,
-- "The claim rule").

-- Each orchestrator-queue row carries the name of the orchestration it is for, so a claim
-- finds the rows of the names it has from an index, however many rows of other names
-- wait. NULL for a message to an instance that does not exist yet.
ALTER TABLE orchestrator_queue ADD COLUMN name TEXT;
UPDATE orchestrator_queue SET name = (
    SELECT i.name FROM instances i WHERE i.instance_id = orchestrator_queue.instance_id);
CREATE INDEX orchestrator_queue_name ON orchestrator_queue (name, visible_at, instance_id);
CREATE INDEX worker_queue_name ON worker_queue (name, visible_at);
CREATE INDEX worker_queue_session ON worker_queue (instance_id, session_id)
    WHERE session_id IS NOT NULL;

-- When a live runtime last had each orchestration (name, version) and activity (name,
-- version ''): refreshed by every heartbeat. Work whose name no runtime has had for the
-- not-registered grace period fails with ERR_NOT_REGISTERED; until then it waits.
CREATE TABLE registered_names (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    last_seen_at INTEGER NOT NULL,
    PRIMARY KEY (kind, name, version)
);

-- Activity sessions: which worker (its workerNodeId, else its runtime id) runs the
-- activities of one session of one instance. Free again once the owner is dead, or once
-- nothing of the session runs and its last claim is older than the owner's idle timeout
-- (idle_ms).
CREATE TABLE sessions (
    instance_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    last_used_at INTEGER NOT NULL,
    idle_ms INTEGER NOT NULL,
    PRIMARY KEY (instance_id, session_id)
);
CREATE INDEX sessions_owner ON sessions (owner);
