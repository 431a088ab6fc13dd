-- Tenancy: who submitted each task (the name of the client token's tenant; NULL for tasks stored before
-- this migration, which only admin tokens see), and the index the retention purge walks.
ALTER TABLE tasks ADD COLUMN submitter text;
CREATE INDEX tasks_submitter_created ON tasks (submitter, created_at DESC);
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;
