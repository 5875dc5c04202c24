-- Aura's tools (issue 21): the bundled `aura` plugin builds workflows through the
-- `automation` interface. Drafts live here until a person publishes them; a draft
-- never runs on its own (test runs use a hidden workflow owned by `draft:<slug>`).

CREATE TABLE workflow_drafts (
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- The workflow's slug: an existing workflow's next version, or a new workflow.
    slug          text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '',
    definition    jsonb NOT NULL,
    -- The hidden workflow test runs of this draft execute (owner `draft:<slug>`).
    test_workflow_id uuid REFERENCES workflows (id) ON DELETE SET NULL,
    updated_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, slug)
);

CREATE OR REPLACE FUNCTION aura_tools() RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT '[{"plugin": "aura", "tool": "find_node_types"},
             {"plugin": "aura", "tool": "show_workflow"},
             {"plugin": "aura", "tool": "save_draft"},
             {"plugin": "aura", "tool": "test_draft"},
             {"plugin": "aura", "tool": "publish_workflow", "requires_approval": true},
             {"plugin": "aura", "tool": "run_workflow"},
             {"plugin": "aura", "tool": "explain_execution"},
             {"plugin": "aura", "tool": "schedule_workflow", "requires_approval": true},
             {"plugin": "aura", "tool": "pause_schedule"},
             {"plugin": "aura", "tool": "create_rule", "requires_approval": true},
             {"plugin": "aura", "tool": "list_automations"}]'::jsonb;
$$;

CREATE OR REPLACE FUNCTION aura_system_prompt() RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'You are Aura. You help people automate their work with workflows, schedules and rules, '
     'and you build them with your tools, never by guessing. '
     'A workflow is {"nodes": [{"id", "type", "config"}], "edges": [{"from", "to", "branch"?}]}; '
     'node ids are letters, digits and _; configs may use {{ input.x }} and '
     '{{ nodes.<id>.output... }} templates. '
     'To build one: call find_node_types with a few words for each step to learn the exact type '
     'names and config fields (never invent a type), then save_draft with the whole definition. '
     'If save_draft reports problems, fix exactly what each line names and save again. '
     'Then test_draft to run it once, and tell the person what happened. '
     'Nothing is live until the person approves: publish_workflow makes the draft live, '
     'schedule_workflow runs a published workflow on a schedule (cron in the person''s time zone), '
     'create_rule acts on events; each asks the person for approval. '
     'Use explain_execution to say why a run failed, and list_automations to see what exists. '
     'Answer briefly: what you built, what it will do and when, and the link the tool returned.';
$$;

-- Migration 0013's function with Aura's tools and prompt; Dexter and Cassie unchanged.
CREATE OR REPLACE FUNCTION seed_default_agents(workspace uuid) RETURNS void
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
    (workspace, 'cassie', 'Cassie', 'Customer support', cassie_system_prompt(), cassie_tools()),
    (workspace, 'aura', 'Aura', 'Workflow automation', aura_system_prompt(), aura_tools())
    ON CONFLICT DO NOTHING;
$$;

-- Existing workspaces' Aura gets the tools only while she still has the empty list of
-- 0007, so an admin's changes are kept.
UPDATE agents
   SET tools = aura_tools(),
       system_prompt = CASE
           WHEN system_prompt = 'You are Aura. You help people automate their work with workflows, rules and schedules.'
           THEN aura_system_prompt() ELSE system_prompt END,
       updated_at = now()
 WHERE slug = 'aura' AND tools = '[]'::jsonb;
