-- Automation rules (issue 20): an event (type + filter) and conditions choose; ordered
-- actions run as the rule's own workflow (host/src/automation/rules).
CREATE TABLE rules (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id     uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description      text NOT NULL DEFAULT '',
    active           boolean NOT NULL DEFAULT true,
    -- Rules matching one event run highest first (then oldest first).
    priority         integer NOT NULL DEFAULT 0,
    event            text NOT NULL,
    filter           text,
    conditions       jsonb NOT NULL DEFAULT '{}',
    actions          jsonb NOT NULL,
    -- The workflow its actions run as (owner `rule:<id>`).
    workflow_id      uuid NOT NULL REFERENCES workflows (id),
    cooldown_ms      bigint,
    max_per_hour     integer,
    -- Events up to here came before the rule: it never acts on them.
    since_tx         xid8 NOT NULL,
    since_seq        bigint NOT NULL,
    matched          bigint NOT NULL DEFAULT 0,
    ran              bigint NOT NULL DEFAULT 0,
    skipped_cooldown bigint NOT NULL DEFAULT 0,
    skipped_limit    bigint NOT NULL DEFAULT 0,
    succeeded        bigint NOT NULL DEFAULT 0,
    failed           bigint NOT NULL DEFAULT 0,
    last_matched_at  timestamptz,
    last_ran_at      timestamptz,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rules_workspace ON rules (workspace_id, priority DESC, created_at);

-- One row per event a rule matched: started (with its execution) or skipped. The key
-- makes an event act on a rule once, whichever host reads it and however often.
CREATE TABLE rule_runs (
    rule_id      uuid NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
    event_id     uuid NOT NULL,
    event_type   text NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('started', 'skipped_cooldown', 'skipped_limit', 'failed')),
    -- No foreign key, as for schedule ticks: its lock would hold up the engine.
    execution_id uuid,
    result       text,
    note         text,
    at           timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    PRIMARY KEY (rule_id, event_id)
);
CREATE INDEX rule_runs_recent ON rule_runs (rule_id, at DESC);
CREATE INDEX rule_runs_open ON rule_runs (rule_id) WHERE outcome = 'started' AND result IS NULL;

-- Where each workspace's rules are in its event feed: one walker at a time, in order.
CREATE TABLE rule_cursors (
    workspace_id uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    tx           xid8 NOT NULL,
    seq          bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
