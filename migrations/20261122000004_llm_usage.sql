-- Every LLM call: who made it (workspace, and the plugin or agent), which model, the
-- tokens it used and what they cost by the configured price table.
CREATE TABLE llm_usage (
    id                bigserial PRIMARY KEY,
    workspace_id      uuid REFERENCES workspaces (id) ON DELETE CASCADE,
    plugin            text,
    agent             text,
    model             text NOT NULL,
    operation         text NOT NULL CHECK (operation IN ('chat', 'embedding')),
    prompt_tokens     integer NOT NULL,
    completion_tokens integer NOT NULL,
    -- NULL when the model has no price in the table.
    cost_usd          numeric(14, 6),
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX llm_usage_workspace_time ON llm_usage (workspace_id, created_at);
CREATE INDEX llm_usage_plugin_time ON llm_usage (plugin, created_at) WHERE plugin IS NOT NULL;
