-- Management queries: instance listing in (created_at, instance_id) order (keyset pages),
-- and finished instances by completion time for bulk deletion.
CREATE INDEX instances_created ON instances (created_at, instance_id);
CREATE INDEX instances_finished ON instances (status, updated_at);
