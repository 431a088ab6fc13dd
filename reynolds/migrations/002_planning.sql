-- How a task's plan was made: given by the client, sampled from its LLM, or routed from the goal.
ALTER TABLE tasks ADD COLUMN planning jsonb NOT NULL DEFAULT '{"planner": "client", "notes": []}';
