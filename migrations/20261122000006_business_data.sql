-- Business data for the agents (issue 5): the people who own deals, financial
-- transactions, sales-rep performance per period and cost allocation rules, next to
-- customers and deals. Every table is workspace-scoped with row-level security, and
-- every row has an `external_id` that imports upsert by.

CREATE TABLE data.people (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid NOT NULL DEFAULT agenthost_sandbox.current_workspace()
                  REFERENCES workspaces (id) ON DELETE CASCADE,
    external_id   text NOT NULL,
    name          text NOT NULL,
    email         text,
    title         text,
    team          text,
    -- Revenue the person is expected to win per month; NULL when not set.
    monthly_quota numeric(18, 2),
    hired_on      date,
    UNIQUE (workspace_id, external_id)
);

-- Deals are owned by people (not a free-text name) and may name a product.
ALTER TABLE data.deals DROP COLUMN owner;
ALTER TABLE data.deals
    ADD COLUMN name text,
    ADD COLUMN owner_id uuid REFERENCES data.people (id) ON DELETE SET NULL,
    ADD COLUMN product text;
CREATE INDEX deals_close ON data.deals (workspace_id, actual_close);
CREATE INDEX customers_created ON data.customers (workspace_id, created_on);

CREATE TABLE data.transactions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id     uuid NOT NULL DEFAULT agenthost_sandbox.current_workspace()
                     REFERENCES workspaces (id) ON DELETE CASCADE,
    external_id      text NOT NULL,
    type             text NOT NULL CHECK (type IN ('revenue', 'expense', 'transfer')),
    category         text NOT NULL,
    subcategory      text,
    amount           numeric(18, 2) NOT NULL,
    currency         char(3) NOT NULL DEFAULT 'USD',
    account_code     text,
    cost_center      text,
    fiscal_year      integer,
    fiscal_period    integer CHECK (fiscal_period BETWEEN 1 AND 13),
    reference        text,
    description      text,
    transaction_date date NOT NULL,
    UNIQUE (workspace_id, external_id)
);
CREATE INDEX transactions_date ON data.transactions (workspace_id, transaction_date);

CREATE TABLE data.sales_rep_performance (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid NOT NULL DEFAULT agenthost_sandbox.current_workspace()
                  REFERENCES workspaces (id) ON DELETE CASCADE,
    external_id   text NOT NULL,
    person_id     uuid NOT NULL REFERENCES data.people (id) ON DELETE CASCADE,
    period_start  date NOT NULL,
    period_end    date NOT NULL CHECK (period_end >= period_start),
    deals_won     integer NOT NULL DEFAULT 0,
    deals_lost    integer NOT NULL DEFAULT 0,
    deals_open    integer NOT NULL DEFAULT 0,
    revenue_won   numeric(18, 2) NOT NULL DEFAULT 0,
    pipeline      numeric(18, 2) NOT NULL DEFAULT 0,
    quota         numeric(18, 2),
    UNIQUE (workspace_id, external_id)
);

-- How to estimate a cost category for a period that has no expense transactions:
-- a percentage of that period's revenue, or a fixed amount per month.
CREATE TABLE data.cost_allocation_rules (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id    uuid NOT NULL DEFAULT agenthost_sandbox.current_workspace()
                    REFERENCES workspaces (id) ON DELETE CASCADE,
    external_id     text NOT NULL,
    category        text NOT NULL,
    method          text NOT NULL CHECK (method IN ('percent_of_revenue', 'fixed_monthly')),
    value           numeric(18, 4) NOT NULL CHECK (value >= 0),
    cost_center     text,
    effective_from  date,
    effective_to    date,
    UNIQUE (workspace_id, external_id)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['people', 'transactions', 'sales_rep_performance',
                             'cost_allocation_rules'] LOOP
        EXECUTE format('ALTER TABLE data.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE data.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON data.%I '
            'USING (workspace_id = (SELECT agenthost_sandbox.current_workspace())) '
            'WITH CHECK (workspace_id = (SELECT agenthost_sandbox.current_workspace()))', t);
    END LOOP;
END
$$;
