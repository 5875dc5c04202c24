-- Agents, their conversations, and the record of every turn and tool call (issue 5).

CREATE TABLE agents (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    slug          text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role          text NOT NULL DEFAULT '',
    system_prompt text NOT NULL DEFAULT '',
    -- NULL: the host's --llm-default-model.
    model         text,
    temperature   real CHECK (temperature BETWEEN 0 AND 2),
    -- [{"plugin": "dexter", "tool": "revenue_analysis", "version": "0.1.0"?}]
    tools         jsonb NOT NULL DEFAULT '[]',
    -- NULL: the host's --chat-max-steps.
    max_steps     integer CHECK (max_steps BETWEEN 1 AND 50),
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, slug)
);

-- Dexter, Cassie and Aura exist in every workspace from its creation. They are rows
-- like any other: admins may change or delete them, and nothing brings them back.
CREATE FUNCTION seed_default_agents(workspace uuid) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO agents (workspace_id, slug, name, role, system_prompt, tools) VALUES
    (workspace, 'dexter', 'Dexter', 'Financial analyst',
     'You are Dexter, a financial analyst. Answer with figures computed by your tools from '
     'the workspace''s own data (deals, customers, transactions, sales performance). Never '
     'estimate or invent a figure: if a tool cannot compute it, say what data is missing. '
     'State the period and currency of every figure.',
     '[{"plugin": "dexter", "tool": "revenue_analysis"},
       {"plugin": "dexter", "tool": "profit_and_loss"},
       {"plugin": "dexter", "tool": "sales_rep_performance"},
       {"plugin": "dexter", "tool": "customer_analytics"},
       {"plugin": "dexter", "tool": "forecast_revenue"},
       {"plugin": "dexter", "tool": "roi"},
       {"plugin": "dexter", "tool": "break_even"},
       {"plugin": "dexter", "tool": "cash_flow"},
       {"plugin": "dexter", "tool": "balance_sheet"}]'),
    (workspace, 'cassie', 'Cassie', 'Customer support',
     'You are Cassie, a customer support agent. Be brief, kind and precise.', '[]'),
    (workspace, 'aura', 'Aura', 'Workflow automation',
     'You are Aura. You help people automate their work with workflows, rules and schedules.',
     '[]')
    ON CONFLICT DO NOTHING;
$$;
CREATE FUNCTION seed_default_agents_on_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM seed_default_agents(NEW.id);
    RETURN NEW;
END
$$;
CREATE TRIGGER workspaces_default_agents AFTER INSERT ON workspaces
    FOR EACH ROW EXECUTE FUNCTION seed_default_agents_on_insert();
-- Workspaces made before this migration get them too.
SELECT seed_default_agents(id) FROM workspaces;

CREATE TABLE conversations (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    agent_id      uuid REFERENCES agents (id) ON DELETE SET NULL,
    title         text NOT NULL,
    -- `key:<uuid>` or `admin`.
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_workspace ON conversations (workspace_id, updated_at DESC);

-- One user message and everything the host did to answer it.
CREATE TABLE turns (
    id                uuid PRIMARY KEY,
    conversation_id   uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    workspace_id      uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    agent_id          uuid REFERENCES agents (id) ON DELETE SET NULL,
    status            text NOT NULL
                      CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
    -- Why it ended other than `completed`, or `step_limit` when it ran out of steps.
    error             text,
    steps             integer NOT NULL DEFAULT 0,
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    duration_ms       double precision,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
CREATE INDEX turns_agent_time ON turns (agent_id, started_at);
CREATE INDEX turns_running ON turns (started_at) WHERE status = 'running';

CREATE TABLE messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    turn_id         uuid REFERENCES turns (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    content         text,
    -- Assistant messages that asked for tools: the OpenAI `tool_calls` array.
    tool_calls      jsonb,
    -- Tool messages: which call this is the result of.
    tool_call_id    text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);

CREATE TABLE tool_calls (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    turn_id       uuid NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    agent_id      uuid REFERENCES agents (id) ON DELETE SET NULL,
    call_id       text NOT NULL,
    plugin        text,
    version       text,
    tool          text NOT NULL,
    input         jsonb,
    output        jsonb,
    error         text,
    -- ok, tool_error, invalid_input, not_found, timeout, plugin_fault, cancelled...
    outcome       text NOT NULL,
    duration_ms   double precision NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tool_calls_turn ON tool_calls (turn_id, id);
CREATE INDEX tool_calls_agent_time ON tool_calls (agent_id, created_at);
