-- Agent health (issue 20, alerts): each agent's last judged health. The periodic
-- checker of every host flips `status` with a conditional UPDATE in the transaction of
-- its `agent.health.degraded|recovered` event, so a change is emitted exactly once
-- however many hosts judge it. No row: healthy (nothing ever went wrong).
CREATE TABLE agent_health (
    agent_id     uuid PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    status       text NOT NULL CHECK (status IN ('healthy', 'degraded')),
    -- The figures of the judgement that set `status`.
    turns        integer NOT NULL DEFAULT 0,
    success_rate double precision,
    p95_ms       double precision,
    changed_at   timestamptz NOT NULL DEFAULT now()
);

-- The checker reads the turns that ended within its window.
CREATE INDEX turns_finished ON turns (finished_at) WHERE finished_at IS NOT NULL;
