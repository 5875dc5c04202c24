-- Plugin log lines (`agenthost:plugin/log`), queryable per plugin and version (issue 14).
-- Written in batches by a background task; bounded by the newest N lines per plugin and
-- a maximum age (host/src/plugin_logs.rs prunes both).
--
-- No foreign keys: a batch must not fail because a workspace was deleted while its
-- lines were in flight, and the retention limits bound what stays behind.
CREATE TABLE plugin_logs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plugin       text NOT NULL,
    version      text NOT NULL,
    level        text NOT NULL CHECK (level IN ('trace', 'debug', 'info', 'warn', 'error')),
    message      text NOT NULL,
    -- The line's structured fields, `{"key": "value"}` (strings only).
    fields       jsonb NOT NULL DEFAULT '{}',
    request_id   text,
    workspace_id uuid,
    -- When the plugin wrote the line (not when the batch was inserted).
    logged_at    timestamptz NOT NULL
);

-- Newest first per plugin: the endpoint's order, its `before` cursor and the per-plugin
-- count limit all walk this index.
CREATE INDEX plugin_logs_plugin_newest ON plugin_logs (plugin, id DESC);
-- The age limit.
CREATE INDEX plugin_logs_logged_at ON plugin_logs (logged_at);
