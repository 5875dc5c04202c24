-- Webhook triggers (issue 20): the credentials of a workflow's webhook URL,
-- `POST /hooks/{workflow}/{token}`. Not in the definition: definitions are versioned and
-- readable by viewers. The row is made when a version with a webhook trigger is saved
-- and kept across versions, so the URL doesn't change when the workflow does; whether
-- the URL answers is decided by the latest version's triggers and the enabled flag.
CREATE TABLE workflow_hooks (
    workflow_id           uuid PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    workspace_id          uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- SHA-256 of the URL's token (32 random bytes, base64url). NULL until the first
    -- `POST /api/workflows/{workflow}/hook/rotate` issues it (and shows it, once).
    token_sha256          bytea CHECK (octet_length(token_sha256) = 32),
    -- The HMAC signing secret (`whsec_` + base64 of 32 random bytes). Kept in clear:
    -- verifying an HMAC needs the key. Readable by no route after it was shown.
    secret                text NOT NULL,
    -- After a rotation with a grace period, the replaced token and secret keep working
    -- until `previous_until`.
    previous_token_sha256 bytea CHECK (octet_length(previous_token_sha256) = 32),
    previous_secret       text,
    previous_until        timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    -- When the current token was issued, and the secret last replaced.
    token_issued_at       timestamptz,
    secret_rotated_at     timestamptz
);

CREATE UNIQUE INDEX workflow_hooks_token ON workflow_hooks (token_sha256);

-- `/hooks/{slug}/{token}` finds its workflow by slug in any workspace (the token tells
-- workspaces apart).
CREATE INDEX workflows_slug ON workflows (slug);
