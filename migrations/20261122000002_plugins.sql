-- Plugin registry: every version's component lives here so every replica sees it.

CREATE TABLE plugins (
    name             text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
    kind             text NOT NULL CHECK (kind IN ('tool', 'node')),
    active_version   text,
    -- The version that was active before the current one: what rollback returns to.
    previous_version text,
    enabled          boolean NOT NULL DEFAULT true,
    -- Admin-set settings, read by the plugin through the config interface.
    settings         jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE plugin_versions (
    plugin       text NOT NULL REFERENCES plugins (name) ON DELETE CASCADE,
    version      text NOT NULL,
    manifest     jsonb NOT NULL,
    -- What the component's describe() returned at upload.
    tools        jsonb NOT NULL DEFAULT '[]',
    nodes        jsonb NOT NULL DEFAULT '[]',
    sha256       text NOT NULL,
    size_bytes   integer NOT NULL,
    component    bytea NOT NULL,
    limits       jsonb NOT NULL,
    -- What an admin granted this version, a subset of what its manifest requests.
    grants       jsonb NOT NULL DEFAULT '{"secrets": []}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plugin, version)
);

-- Instance secrets; plugins read only those their version is granted. Never returned
-- by the API.
CREATE TABLE secrets (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,128}$'),
    value       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per tool invocation (REST or agent).
CREATE TABLE plugin_invocations (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    workspace_id  uuid REFERENCES workspaces (id) ON DELETE CASCADE,
    plugin        text NOT NULL,
    version       text NOT NULL,
    tool          text NOT NULL,
    duration_ms   double precision NOT NULL,
    outcome       text NOT NULL,
    error         text,
    request_id    text
);
CREATE INDEX plugin_invocations_workspace ON plugin_invocations (workspace_id, at DESC);
CREATE INDEX plugin_invocations_plugin ON plugin_invocations (plugin, at DESC);
