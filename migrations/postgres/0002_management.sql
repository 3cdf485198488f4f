-- Management queries: instance listing in (created_at, instance_id) order with ids compared
-- bytewise (as on SQLite, whatever the database's collation), and finished instances by
-- completion time for bulk deletion.
CREATE INDEX instances_created ON instances (created_at, instance_id COLLATE "C");
CREATE INDEX instances_finished ON instances (status, updated_at);
