-- Domain events (issue 20): a transactional outbox. Each row is written in the same
-- transaction as the change it reports, so an event exists exactly when its change does.
--
-- Order: `seq` is taken at insert, not at commit, so a reader that walks `seq` alone
-- skips a row whose transaction commits after a higher one was read. Readers walk
-- `(tx, seq)` and only below the oldest transaction still open
-- (`pg_snapshot_xmin(pg_current_snapshot())`): rows there are final, and none can
-- appear behind a cursor (docs/decisions.md, "Events: an outbox read in commit order").
CREATE TABLE events (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The event's identity for consumers (de-duplication, webhook-id, Nats-Msg-Id).
    id           uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- `workflow.execution.succeeded`; the catalogue is host/src/events/types.rs.
    type         text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    -- What the event is about: an execution, ticket or article id, a plugin name.
    subject      text,
    payload      jsonb NOT NULL DEFAULT '{}',
    -- Who caused it, as the audit log names callers: `key:<id>`, `admin`,
    -- `plugin:<name>`, `system:<what>`.
    actor        text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    tx           xid8 NOT NULL DEFAULT pg_current_xact_id()
);

-- The feed and every subscriber walk a workspace's events in (tx, seq) order.
CREATE INDEX events_workspace_order ON events (workspace_id, tx, seq);
-- Retention deletes by age.
CREATE INDEX events_at ON events (at);
