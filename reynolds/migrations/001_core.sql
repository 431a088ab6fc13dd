-- Tasks, their subtasks and an append-only event log.
CREATE TABLE tasks (
    id          uuid PRIMARY KEY,
    goal        text,
    state       text NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
    strategy    text NOT NULL,
    priority    integer NOT NULL DEFAULT 0,
    plan        jsonb NOT NULL,
    deadline    timestamptz,
    error       text,
    message     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX tasks_created ON tasks (created_at DESC);
CREATE INDEX tasks_state_created ON tasks (state, created_at DESC);

CREATE TABLE subtasks (
    task_id       uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    id            text NOT NULL,
    seq           integer NOT NULL,
    tool          text NOT NULL,
    pool          text NOT NULL,
    arguments     jsonb NOT NULL,
    depends_on    text[] NOT NULL DEFAULT '{}',
    after_ids     text[] NOT NULL DEFAULT '{}',
    state         text NOT NULL CHECK (state IN
                    ('pending', 'ready', 'queued', 'running', 'succeeded', 'failed', 'skipped', 'cancelled')),
    rank          double precision NOT NULL DEFAULT 0,
    retryable     boolean NOT NULL DEFAULT false,
    timeout_s     double precision,
    max_attempts  integer,
    attempts      integer NOT NULL DEFAULT 0,
    agent_id      text,
    last_agent_id text,
    lease_owner   text,
    lease_until   timestamptz,
    not_before    timestamptz,
    handoff_depth integer NOT NULL DEFAULT 0,
    parent_id     text,
    result        jsonb,
    error         text,
    ready_at      timestamptz,
    started_at    timestamptz,
    finished_at   timestamptz,
    PRIMARY KEY (task_id, id)
);
-- dependents of a subtask are found through these arrays
CREATE INDEX subtasks_depends_on ON subtasks USING gin (depends_on);
CREATE INDEX subtasks_after ON subtasks USING gin (after_ids);
-- the unfinished part of every task (completion checks, recovery sweeps)
CREATE INDEX subtasks_open ON subtasks (task_id) WHERE state IN ('pending', 'ready', 'queued', 'running');
CREATE INDEX subtasks_ready ON subtasks (ready_at) WHERE state = 'ready';

CREATE TABLE events (
    id         bigserial PRIMARY KEY,
    task_id    uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    subtask_id text,
    kind       text NOT NULL,
    data       jsonb NOT NULL DEFAULT '{}',
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_task ON events (task_id, id);

-- What Reynolds learned per (pool, tool): counts and durations feed routing and estimates.
CREATE TABLE tool_stats (
    pool           text NOT NULL,
    tool           text NOT NULL,
    successes      bigint NOT NULL DEFAULT 0,
    failures       bigint NOT NULL DEFAULT 0,
    total_seconds  double precision NOT NULL DEFAULT 0,
    ewma_seconds   double precision,
    last_error     text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pool, tool)
);
