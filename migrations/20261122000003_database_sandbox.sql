-- The database capability's sandbox (docs/decisions.md, "Database capability").
--
-- Plugins log in as their own NOLOGIN-less, privilege-less role, so `RESET ROLE` and
-- `SET ROLE` have nowhere to go. Which workspace a plugin's transaction acts for is not
-- a setting (any role can set those) but a row the host writes through `bind`, which
-- checks a per-role secret only the host knows, and which is valid only for the
-- transaction that wrote it.

CREATE SCHEMA agenthost_sandbox;
GRANT USAGE ON SCHEMA agenthost_sandbox TO PUBLIC;

-- Per plugin: its roles, its own schema, the login password and the binding key.
CREATE TABLE agenthost_sandbox.roles (
    plugin      text PRIMARY KEY,
    login_role  name NOT NULL UNIQUE,
    owner_role  name NOT NULL UNIQUE,
    schema_name name NOT NULL UNIQUE,
    password    text NOT NULL,
    bind_key    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON agenthost_sandbox.roles FROM PUBLIC;

-- Migrations of plugins' own schemas that have run (append-only per plugin).
CREATE TABLE agenthost_sandbox.migrations (
    plugin     text NOT NULL,
    index      integer NOT NULL,
    sha256     text NOT NULL,
    version    text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plugin, index)
);
REVOKE ALL ON agenthost_sandbox.migrations FROM PUBLIC;

-- backend pid -> workspace, valid only while `xid` is that backend's transaction.
-- Unlogged: it is meaningless after a restart and must not cost a WAL flush per call.
CREATE UNLOGGED TABLE agenthost_sandbox.bindings (
    pid          integer PRIMARY KEY,
    xid          xid8 NOT NULL,
    workspace_id uuid NOT NULL
);
REVOKE ALL ON agenthost_sandbox.bindings FROM PUBLIC;

-- Called by the host at the start of each plugin transaction, on the plugin's own
-- connection. The key makes it useless to the plugin itself.
CREATE FUNCTION agenthost_sandbox.bind(workspace uuid, key text, timeout_ms integer)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM agenthost_sandbox.roles r
        WHERE r.login_role = session_user AND r.bind_key = key
    ) THEN
        RAISE EXCEPTION 'agenthost: refused sandbox binding' USING ERRCODE = '42501';
    END IF;
    INSERT INTO agenthost_sandbox.bindings (pid, xid, workspace_id)
    VALUES (pg_backend_pid(), pg_current_xact_id(), workspace)
    ON CONFLICT (pid) DO UPDATE SET xid = excluded.xid, workspace_id = excluded.workspace_id;
    PERFORM set_config('statement_timeout', timeout_ms || 'ms', true);
END
$$;

-- The workspace the current transaction is bound to, or NULL (which matches no row).
CREATE FUNCTION agenthost_sandbox.current_workspace()
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT b.workspace_id FROM agenthost_sandbox.bindings b
    WHERE b.pid = pg_backend_pid() AND b.xid = pg_current_xact_id_if_assigned()
$$;

-- Nothing in the host's schema is for plugins, and no role but the host may create
-- objects there or temporary tables anywhere.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    -- Only a superuser can change these; on a server where the host isn't one, an
    -- admin should run them once (docs/decisions.md). Statement filtering in the host
    -- already refuses SET, DO, LISTEN and NOTIFY; these close the function-call routes.
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC;
        REVOKE EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text) FROM PUBLIC;
        REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC;
    END IF;
END
$$;

-- Business data shared by plugins: tenant tables in schema `data`, each with
-- `workspace_id` and row-level security keyed on the bound workspace. The host's own
-- connections (superuser/owner) are not subject to it; plugin roles always are.
CREATE SCHEMA data;

CREATE TABLE data.customers (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id        uuid NOT NULL DEFAULT agenthost_sandbox.current_workspace()
                        REFERENCES workspaces (id) ON DELETE CASCADE,
    external_id         text NOT NULL,
    name                text NOT NULL,
    segment             text,
    acquisition_channel text,
    created_on          date NOT NULL,
    churned_on          date,
    UNIQUE (workspace_id, external_id)
);

CREATE TABLE data.deals (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id    uuid NOT NULL DEFAULT agenthost_sandbox.current_workspace()
                    REFERENCES workspaces (id) ON DELETE CASCADE,
    external_id     text NOT NULL,
    customer_id     uuid REFERENCES data.customers (id) ON DELETE SET NULL,
    owner           text,
    amount          numeric(18, 2) NOT NULL,
    currency        char(3) NOT NULL DEFAULT 'USD',
    stage           text NOT NULL,
    won             boolean,
    created_on      date NOT NULL,
    expected_close  date,
    actual_close    date,
    UNIQUE (workspace_id, external_id)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customers', 'deals'] LOOP
        EXECUTE format('ALTER TABLE data.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE data.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON data.%I '
            'USING (workspace_id = (SELECT agenthost_sandbox.current_workspace())) '
            'WITH CHECK (workspace_id = (SELECT agenthost_sandbox.current_workspace()))', t);
    END LOOP;
END
$$;
