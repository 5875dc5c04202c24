-- Workspace settings (issue 20): the monthly LLM budgets. One row per workspace that
-- has set anything; no row means no budget. A month is a calendar month in UTC.
CREATE TABLE workspace_settings (
    workspace_id            uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Prompt + completion tokens (chat and embeddings) a month; NULL: no limit.
    monthly_token_budget    bigint CHECK (monthly_token_budget >= 0),
    -- USD a month by the host's price table (unpriced models cost nothing); NULL: no limit.
    monthly_cost_budget_usd double precision
        CHECK (monthly_cost_budget_usd >= 0 AND monthly_cost_budget_usd < 'Infinity'),
    -- The month (its first day) whose `llm.budget.exceeded` event was written. Set with
    -- a conditional UPDATE in the event's transaction, so however many hosts see the
    -- budget spent, the event is written once a month; a changed budget clears it.
    budget_exceeded_month   date,
    updated_at              timestamptz NOT NULL DEFAULT now()
);
