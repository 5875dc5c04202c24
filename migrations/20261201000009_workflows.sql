-- Durable workflows (issue 12): versioned definitions, executions pinned to a version,
-- one row per node attempt, and the execution's event log. docs/workflows.md.

CREATE TABLE workflows (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id   uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    slug           text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description    text NOT NULL DEFAULT '',
    enabled        boolean NOT NULL DEFAULT true,
    latest_version integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, slug)
);

-- Immutable: saving a workflow adds version n+1.
CREATE TABLE workflow_versions (
    workflow_id uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version > 0),
    definition  jsonb NOT NULL,
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE executions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id    uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    workflow_id     uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version         integer NOT NULL,
    -- queued | running | succeeded | failed | cancelled
    status          text NOT NULL DEFAULT 'running',
    input           jsonb NOT NULL,
    output          jsonb,
    error           text,
    idempotency_key text,
    -- {"plugin": "version"} of every node plugin, fixed at start.
    node_plugins    jsonb NOT NULL,
    deadline        timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    UNIQUE (workspace_id, workflow_id, idempotency_key)
);
CREATE INDEX executions_by_workflow ON executions (workspace_id, workflow_id, created_at DESC);
CREATE INDEX executions_running ON executions (deadline) WHERE status = 'running';

-- One row per node attempt. `ready` rows are the queue: workers claim them with
-- FOR UPDATE SKIP LOCKED once `run_at` has passed (backoff and delays are durable).
CREATE TABLE node_runs (
    id           bigserial PRIMARY KEY,
    execution_id uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    node_id      text NOT NULL,
    attempt      integer NOT NULL DEFAULT 1,
    -- ready | running | succeeded | failed | skipped | cancelled
    status       text NOT NULL,
    input        jsonb,
    output       jsonb,
    error        text,
    error_kind   text,
    branches     text[],
    plugin       text,
    version      text,
    run_at       timestamptz NOT NULL DEFAULT now(),
    worker       text,
    started_at   timestamptz,
    finished_at  timestamptz,
    UNIQUE (execution_id, node_id, attempt)
);
CREATE INDEX node_runs_ready ON node_runs (run_at) WHERE status = 'ready';
CREATE INDEX node_runs_running ON node_runs (worker) WHERE status = 'running';

-- Hosts that run nodes, with a heartbeat: runs claimed by a host whose heartbeat
-- stopped are put back (same attempt, same idempotency key).
CREATE UNLOGGED TABLE workflow_workers (
    id        text PRIMARY KEY,
    heartbeat timestamptz NOT NULL DEFAULT now()
);

-- Progress for GET /api/executions/{id}/events (resumable by id).
CREATE TABLE execution_events (
    id           bigserial PRIMARY KEY,
    execution_id uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    kind         text NOT NULL,
    node_id      text,
    data         jsonb NOT NULL DEFAULT '{}',
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX execution_events_by_execution ON execution_events (execution_id, id);
