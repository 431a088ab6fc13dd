-- A subtask changes state several times (queued, running, renewed leases) before it ends. An index whose
-- predicate or key names a column that changes makes Postgres add index entries for every such update;
-- when none does and the page has room, the update stays on its page and touches no index (a HOT
-- update). So the open-subtask index is keyed on finished_at (set once, when a subtask ends), the
-- ready-subtask index goes (the sweep that used it reads the open subtasks of running tasks instead),
-- and pages keep a fifth free for the new row versions.
DROP INDEX subtasks_open;
CREATE INDEX subtasks_open ON subtasks (task_id) WHERE finished_at IS NULL;
DROP INDEX subtasks_ready;
ALTER TABLE subtasks SET (fillfactor = 80);
