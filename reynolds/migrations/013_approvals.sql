-- Human approval: a subtask that needs it waits in 'awaiting_approval' (since ready_at) instead of becoming
-- ready, until a person approves it (then ready) or rejects it (then skipped, with its dependents).
ALTER TABLE subtasks DROP CONSTRAINT subtasks_state_check;
ALTER TABLE subtasks ADD CONSTRAINT subtasks_state_check CHECK (state IN
    ('pending', 'awaiting_approval', 'ready', 'queued', 'running', 'succeeded', 'failed', 'skipped', 'cancelled'));
ALTER TABLE subtasks ADD COLUMN requires_approval boolean NOT NULL DEFAULT false;
ALTER TABLE subtasks ADD COLUMN decided_by text;  -- who approved or rejected it
CREATE INDEX subtasks_awaiting ON subtasks (ready_at) WHERE state = 'awaiting_approval';
