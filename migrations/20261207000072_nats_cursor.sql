-- Events forwarded to NATS JetStream (issue 20, `--nats-url`): where the publisher is
-- in the feed of every workspace, one row per stream. The publisher moves it only
-- after JetStream acknowledged the events up to it, so a host or NATS going away
-- means publishing again from here (the stream drops repeats by `Nats-Msg-Id`).
CREATE TABLE nats_cursors (
    stream     text PRIMARY KEY,
    tx         xid8 NOT NULL,
    seq        bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The publisher walks all workspaces' events in (tx, seq) order.
CREATE INDEX events_order ON events (tx, seq);
