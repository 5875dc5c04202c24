-- Schedules (issue 20): a workflow's schedule triggers and scheduled tasks, one table
-- and one ticker (host/src/automation/schedules).

-- A workflow a schedule or rule made for its action (`schedule:<id>`, `rule:<id>`):
-- run by the engine like any other, left out of the workflow list, changed only
-- through its owner.
ALTER TABLE workflows ADD COLUMN owner text;

CREATE TABLE schedules (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- What a tick starts: the workflow a trigger is on, or the task's own workflow (or
    -- the one its `run_workflow` action names).
    workflow_id   uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    -- A workflow trigger: which one of its latest version's triggers. NULL: a task.
    trigger_index integer,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '',
    spec          jsonb NOT NULL,
    -- A task's action as given (the workflow it compiled to is `workflow_id`).
    action        jsonb,
    input         jsonb NOT NULL DEFAULT '{}',
    -- Intervals count from here, so every host computes the same ticks.
    anchor        timestamptz NOT NULL DEFAULT now(),
    status        text NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'paused', 'completed')),
    next_run_at   timestamptz,
    last_run_at   timestamptz,
    last_status   text,
    runs          bigint NOT NULL DEFAULT 0,
    successes     bigint NOT NULL DEFAULT 0,
    failures      bigint NOT NULL DEFAULT 0,
    skipped       bigint NOT NULL DEFAULT 0,
    missed        bigint NOT NULL DEFAULT 0,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow_id, trigger_index)
);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE status = 'active';
CREATE INDEX schedules_workspace ON schedules (workspace_id, created_at);

-- One row per tick that did something (started, skipped for overlap, buffered). The
-- key is the tick's id: a tick is recorded, and so started, once across all hosts.
CREATE TABLE schedule_ticks (
    schedule_id  uuid NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('scheduled', 'catch_up', 'manual')),
    outcome      text NOT NULL CHECK (outcome IN ('started', 'skipped', 'buffered', 'failed')),
    -- No foreign key: its check would hold a share lock on the execution's row until
    -- the tick commits, and the engine locks that row to finish the execution.
    execution_id uuid,
    -- The execution's end, copied when the ticker sees it (NULL while it runs).
    result       text,
    note         text,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    PRIMARY KEY (schedule_id, at)
);
CREATE INDEX schedule_ticks_open ON schedule_ticks (schedule_id)
    WHERE outcome IN ('started', 'buffered') AND result IS NULL;
