-- A task's workspace (reynolds/workspaces.py): its source, the commit it was pinned to, its size and, once the
-- task ends, its changes. The tree itself lives on the workspaces volume, removed after REYNOLDS_WORKSPACE_TTL_S.
ALTER TABLE tasks ADD COLUMN workspace jsonb;
