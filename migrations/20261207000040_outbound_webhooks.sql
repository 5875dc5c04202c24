-- Outbound webhooks (issue 20): endpoints a workspace's events are POSTed to, signed as
-- the Standard Webhooks spec says (host/src/automation/outbound.rs, docs/automation.md).
CREATE TABLE webhooks (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id          uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    url                   text NOT NULL,
    -- Event types or prefixes of whole segments (`ticket`, `workflow.execution.*`), or `*`.
    event_types           text[] NOT NULL,
    description           text NOT NULL DEFAULT '',
    -- `whsec_` + base64 of 24-64 random bytes. Kept as given: HMAC needs the key itself.
    secret                text NOT NULL,
    -- After a rotation the old secret signs too, until `previous_secret_until`.
    previous_secret       text,
    previous_secret_until timestamptz,
    enabled               boolean NOT NULL DEFAULT true,
    -- Why it was disabled (by a person, a 410, or deliveries failing), in words.
    disabled_reason       text,
    disabled_at           timestamptz,
    -- Deliveries in a row that failed every attempt; a success resets it.
    exhausted_in_a_row    integer NOT NULL DEFAULT 0,
    last_success_at       timestamptz,
    created_by            text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhooks_workspace ON webhooks (workspace_id, created_at);

-- Where each webhook is in its workspace's event feed; locked FOR UPDATE SKIP LOCKED by
-- the host walking it, and moved in the transaction that writes the deliveries it found
-- (as event_trigger_cursors). Set to the feed's head when the webhook is created or
-- enabled again: it is sent events after that, never older ones.
CREATE TABLE webhook_cursors (
    webhook_id uuid PRIMARY KEY REFERENCES webhooks (id) ON DELETE CASCADE,
    tx         xid8 NOT NULL,
    seq        bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One event to send to one webhook. The body is written once, so every attempt sends
-- the same bytes (and the same `webhook-id`, the event's id).
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook_id      uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- Not a foreign key: events are deleted after their retention, the log stays.
    event_id        uuid NOT NULL,
    event_type      text NOT NULL,
    body            text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0,
    -- Attempts before a failure is final: the retry schedule's length, or one more than
    -- made when someone asks for a retry by hand.
    max_attempts    integer NOT NULL,
    manual          boolean NOT NULL DEFAULT false,
    next_attempt_at timestamptz,
    -- A host sending it holds a lease: no other host claims it until the lease ends.
    lease_token     uuid,
    lease_until     timestamptz,
    last_attempt_at timestamptz,
    response_status integer,
    duration_ms     integer,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    UNIQUE (webhook_id, event_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, created_at DESC, id);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE finished_at IS NOT NULL;

-- Every attempt of a delivery, for its log.
CREATE TABLE webhook_delivery_attempts (
    delivery_id      uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt          integer NOT NULL,
    -- When it was sent: its `webhook-timestamp`.
    at               timestamptz NOT NULL,
    response_status  integer,
    duration_ms      integer NOT NULL,
    error            text,
    -- The start of the response body (at most 1 KiB), for people reading the log.
    response_excerpt text,
    PRIMARY KEY (delivery_id, attempt)
);
