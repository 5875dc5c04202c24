-- Foundation: extensions, workspaces, API keys, the instance admin token, audit log.
-- Migrations are append-only: never edit one that has shipped; add a new file.

-- On an external server these need a superuser once (pgvector is not a trusted
-- extension); IF NOT EXISTS makes them no-ops when an admin created them already.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS hstore;

CREATE TABLE workspaces (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role          text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    -- The first characters of the secret, shown in listings so people can tell keys apart.
    prefix        text NOT NULL,
    -- SHA-256 of the whole secret. Keys are 190 random bits, so a fast hash is enough:
    -- there is nothing to brute-force that a slow hash would protect.
    secret_sha256 bytea NOT NULL UNIQUE,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, created_at);

-- At most one generated admin token (a token from configuration is never stored).
CREATE TABLE instance_admin_token (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    secret_sha256 bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    -- `admin` or `key:<uuid>`.
    actor         text NOT NULL,
    workspace_id  uuid REFERENCES workspaces (id) ON DELETE SET NULL,
    action        text NOT NULL,
    target        text,
    details       jsonb NOT NULL DEFAULT '{}',
    request_id    text
);
CREATE INDEX audit_log_workspace ON audit_log (workspace_id, id DESC);
