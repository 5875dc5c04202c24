-- Event triggers (issue 20): where each workflow's trigger is in its workspace's event
-- feed. Set to the feed's head when a version is saved, so a trigger fires for events
-- after its version, never for older ones; advanced after each event's executions are
-- started (their idempotency key is the event id, so a redelivery starts nothing new).
CREATE TABLE event_trigger_cursors (
    workflow_id uuid PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    tx          xid8 NOT NULL,
    seq         bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
