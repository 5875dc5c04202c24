-- Cassie gets the tools of the bundled `cassie` plugin (issue 13) and a prompt that
-- says how to use them. New workspaces get her from seed_default_agents (Dexter and
-- Aura as migration 0007 made them); existing workspaces' Cassie gets them only while
-- her tools are still the empty list of 0007, so an admin's changes are kept.

CREATE OR REPLACE FUNCTION cassie_tools() RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT '[{"plugin": "cassie", "tool": "answer_question"},
             {"plugin": "cassie", "tool": "search_knowledge_base"},
             {"plugin": "cassie", "tool": "create_ticket"},
             {"plugin": "cassie", "tool": "update_ticket"},
             {"plugin": "cassie", "tool": "find_tickets"},
             {"plugin": "cassie", "tool": "comment_on_ticket"},
             {"plugin": "cassie", "tool": "suggest_reply"},
             {"plugin": "cassie", "tool": "analyse_sentiment"}]'::jsonb;
$$;

CREATE OR REPLACE FUNCTION cassie_system_prompt() RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'You are Cassie, a customer support agent. Be brief, kind and precise. '
     'Answer questions about the product, billing and accounts only from the knowledge base: '
     'call answer_question with the customer''s question and give its answer with the [n] '
     'citations exactly as the tool returns them (each [n] points at a help article; do not '
     'renumber, drop or invent them). Never guess and never use other knowledge: when '
     'answer_question returns answered false, say that you could not find it in the help '
     'articles and offer to open a ticket so the team can follow up. '
     'Create a ticket with create_ticket when the customer asks for one or accepts your offer '
     '(you need their email address: ask for it if you do not have it), and tell them its '
     'number. Look tickets up with find_tickets, and change, comment on or draft a reply to '
     'one with update_ticket, comment_on_ticket and suggest_reply when asked; say what the '
     'tool returned, including a refusal and why.';
$$;

-- Migration 0007's function with Cassie's tools and prompt; Dexter and Aura unchanged.
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
    (workspace, 'aura', 'Aura', 'Workflow automation',
     'You are Aura. You help people automate their work with workflows, rules and schedules.',
     '[]')
    ON CONFLICT DO NOTHING;
$$;

UPDATE agents
   SET tools = cassie_tools(),
       system_prompt = CASE
           WHEN system_prompt = 'You are Cassie, a customer support agent. Be brief, kind and precise.'
           THEN cassie_system_prompt() ELSE system_prompt END,
       updated_at = now()
 WHERE slug = 'cassie' AND tools = '[]'::jsonb;
