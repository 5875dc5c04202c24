-- Closes two routes around the database sandbox (docs/decisions.md, "Sandbox
-- hardening"):
--
-- * Large objects have no row-level security: a plugin could store workspace B's rows
--   with lo_from_bytea in one call and read them back with lo_get in a call for A.
-- * Advisory locks belong to the session, not the transaction or the role: one taken
--   by a plugin stayed held on its pooled connection after the call and blocked the
--   host. Plugins get no advisory locks at all (row locks on their own tables do the
--   same job, per workspace).
--
-- Only a superuser can revoke these from PUBLIC (the embedded server's host is one);
-- on a server where the host isn't, an admin should run this block once. The host
-- also resets session state whenever a plugin connection goes back to its pool.
DO $$
DECLARE f regprocedure;
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        FOR f IN
            SELECT p.oid::regprocedure FROM pg_proc p
            WHERE p.pronamespace = 'pg_catalog'::regnamespace
              AND (p.proname LIKE 'lo\_%' OR p.proname IN ('loread', 'lowrite')
                   OR p.proname LIKE 'pg\_advisory\_%'
                   OR p.proname LIKE 'pg\_try\_advisory\_%')
        LOOP
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        END LOOP;
    END IF;
END
$$;

-- Called by the host on a plugin's connection when it returns to the pool. Session
-- advisory locks belong to the backend whoever takes them, so this releases the
-- plugin's too (where the revoke above could not run). Harmless to anyone: it only
-- touches the caller's own session.
CREATE FUNCTION agenthost_sandbox.reset_session()
RETURNS void
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_advisory_unlock_all() $$;
GRANT EXECUTE ON FUNCTION agenthost_sandbox.reset_session() TO PUBLIC;
