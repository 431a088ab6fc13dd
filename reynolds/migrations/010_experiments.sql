-- What-if experiments: a scenario, its runs (each an ordinary task) and the report; plus what was learned.
CREATE TABLE experiments (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    scenario    jsonb NOT NULL,
    plan        jsonb NOT NULL,            -- the resolved workload every run submits
    shape       text NOT NULL,             -- plan_shape(plan): what the winner is remembered for
    state       text NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
    error       text,
    report      jsonb,
    submitter   text,                      -- the client tenant that started it; its runs' tasks are theirs too
    lease_owner text,                      -- the process driving it; another takes over once the lease lapses
    lease_until timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX experiments_created ON experiments (created_at DESC);
CREATE INDEX experiments_running ON experiments (lease_until) WHERE state = 'running';

CREATE TABLE experiment_runs (
    experiment_id uuid NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    seq           integer NOT NULL,        -- run order: strategies interleaved across repetitions
    strategy      text NOT NULL,
    repetition    integer NOT NULL,
    task_id       uuid,                    -- the task this run submitted (its goal names the run, too)
    measures      jsonb,                   -- set when the run's task ended
    PRIMARY KEY (experiment_id, seq)
);

-- The strategy that won for a plan shape; strategy=auto reads it.
CREATE TABLE strategy_memory (
    shape         text PRIMARY KEY,
    strategy      text NOT NULL,
    experiment_id uuid,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
