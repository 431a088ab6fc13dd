-- GitHub tracking: a task asked for it, the issue that tracks it, and how its sync is going.
ALTER TABLE tasks
    ADD COLUMN track_in_github boolean NOT NULL DEFAULT false,
    ADD COLUMN github_issue integer,
    ADD COLUMN github_closed boolean NOT NULL DEFAULT false,
    ADD COLUMN github_synced_at timestamptz,
    ADD COLUMN github_failures integer NOT NULL DEFAULT 0;
CREATE INDEX tasks_github_open ON tasks (github_synced_at) WHERE track_in_github AND NOT github_closed;
