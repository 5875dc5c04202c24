-- Executions that wait (issue 12): durable timers and approvals. A node that waits keeps
-- its run row in status `waiting` with `run_at` = when it wakes (a timer's end, an
-- approval's timeout, or now() once decided); workers claim due waiting runs like ready
-- ones, so a wake-up that passed while no host was running fires at the next start.

ALTER TABLE node_runs ADD COLUMN wait jsonb;
-- A retry of a failed execution reuses completed nodes' outputs; this says from where.
ALTER TABLE node_runs ADD COLUMN reused_from uuid;
ALTER TABLE executions ADD COLUMN retry_of uuid REFERENCES executions (id) ON DELETE SET NULL;
CREATE INDEX node_runs_waiting ON node_runs (run_at) WHERE status = 'waiting';

CREATE TABLE approvals (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    execution_id  uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    node_run_id   bigint NOT NULL REFERENCES node_runs (id) ON DELETE CASCADE,
    node_id       text NOT NULL,
    -- pending | approved | rejected | timed_out | cancelled
    status        text NOT NULL DEFAULT 'pending',
    message       text NOT NULL DEFAULT '',
    -- The least role that may decide: viewer | member | admin | owner.
    role          text NOT NULL,
    required      integer NOT NULL CHECK (required BETWEEN 1 AND 100),
    timeout_at    timestamptz,
    -- approve | reject | fail
    on_timeout    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    decided_at    timestamptz
);
CREATE INDEX approvals_pending ON approvals (workspace_id, created_at) WHERE status = 'pending';

-- One decision per key: a key can't approve twice to reach a quorum alone.
CREATE TABLE approval_decisions (
    approval_id uuid NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
    key_id      uuid NOT NULL,
    decision    text NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment     text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (approval_id, key_id)
);

-- The running-executions cap counts a workspace's running executions at every start.
CREATE INDEX executions_running_by_workspace ON executions (workspace_id) WHERE status = 'running';
