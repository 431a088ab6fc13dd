-- The W3C traceparent of the span that submitted a task (NULL when nothing was traced): a subtask is
-- dispatched later, maybe by another Reynolds process, and its spans join the task's trace through it.
ALTER TABLE tasks ADD COLUMN traceparent text;
