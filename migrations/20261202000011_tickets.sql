-- Support tickets (issue 13). Workspace-scoped with row-level security like the
-- business data, so the Cassie plugin can be granted them through the database
-- capability. The rules every writer must follow live here, in triggers, so the REST
-- API and plugins cannot disagree: allowed status transitions, the SLA due time from
-- the workspace's policy, the ticket number, and the history of every change.

-- Resolution targets per priority; a workspace without a row uses the defaults of
-- data.sla_minutes().
CREATE TABLE data.ticket_sla_policies (
    workspace_id        uuid NOT NULL DEFAULT agenthost_sandbox.current_workspace()
                        REFERENCES workspaces (id) ON DELETE CASCADE,
    priority            text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    resolution_minutes  integer NOT NULL CHECK (resolution_minutes > 0),
    PRIMARY KEY (workspace_id, priority)
);

-- The last ticket number handed out per workspace (numbers are per workspace: #1, #2 ...).
CREATE TABLE ticket_numbers (
    workspace_id uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    last_number  bigint NOT NULL
);

CREATE TABLE data.tickets (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id     uuid NOT NULL DEFAULT agenthost_sandbox.current_workspace()
                     REFERENCES workspaces (id) ON DELETE CASCADE,
    number           bigint NOT NULL,
    -- Set by imports, which upsert by it; NULL for tickets made through the API.
    external_id      text,
    subject          text NOT NULL CHECK (length(subject) BETWEEN 1 AND 500),
    description      text NOT NULL DEFAULT '' CHECK (length(description) <= 65536),
    status           text NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'pending', 'solved', 'closed')),
    priority         text NOT NULL DEFAULT 'normal'
                     CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    channel          text NOT NULL DEFAULT 'api'
                     CHECK (channel IN ('email', 'chat', 'phone', 'web', 'api')),
    requester_email  text NOT NULL CHECK (requester_email ~ '^[^@\s]+@[^@\s]+$'),
    requester_name   text,
    customer_id      uuid REFERENCES data.customers (id) ON DELETE SET NULL,
    assignee_id      uuid REFERENCES data.people (id) ON DELETE SET NULL,
    tags             text[] NOT NULL DEFAULT '{}',
    sla_due_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    solved_at        timestamptz,
    closed_at        timestamptz,
    -- What enrichment computed (sentiment, intent, suggested priority, related
    -- articles, summary, suggested reply, each with a confidence) and what a person
    -- overrode; an override survives re-enrichment.
    enrichment       jsonb,
    overrides        jsonb NOT NULL DEFAULT '{}',
    enriched_at      timestamptz,
    -- Who made the last change, as the history names them ("key:<uuid>", "plugin:cassie").
    -- Plugins cannot choose it: the trigger names their login role.
    updated_by       text,
    search           tsvector GENERATED ALWAYS AS (
                         setweight(to_tsvector('english', subject), 'A') ||
                         setweight(to_tsvector('english', description), 'B')) STORED,
    UNIQUE (workspace_id, number),
    UNIQUE (workspace_id, external_id)
);
CREATE INDEX tickets_status ON data.tickets (workspace_id, status, created_at DESC);
CREATE INDEX tickets_assignee ON data.tickets (workspace_id, assignee_id);
CREATE INDEX tickets_tags ON data.tickets USING gin (tags);
CREATE INDEX tickets_search ON data.tickets USING gin (search);

CREATE TABLE data.ticket_comments (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid NOT NULL DEFAULT agenthost_sandbox.current_workspace()
                 REFERENCES workspaces (id) ON DELETE CASCADE,
    ticket_id    uuid NOT NULL REFERENCES data.tickets (id) ON DELETE CASCADE,
    -- A public reply goes to the requester; an internal note is for the team only.
    public       boolean NOT NULL DEFAULT true,
    author       text NOT NULL,
    body         text NOT NULL CHECK (length(body) BETWEEN 1 AND 65536),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_comments_ticket ON data.ticket_comments (ticket_id, created_at);

-- Every change, who made it and when. Written only by the triggers below.
CREATE TABLE data.ticket_events (
    id           bigserial PRIMARY KEY,
    workspace_id uuid NOT NULL DEFAULT agenthost_sandbox.current_workspace()
                 REFERENCES workspaces (id) ON DELETE CASCADE,
    ticket_id    uuid NOT NULL REFERENCES data.tickets (id) ON DELETE CASCADE,
    actor        text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('created', 'updated', 'commented', 'enriched')),
    -- {"field": {"from": old, "to": new}} for updates; {"comment": id, "public": b} for comments.
    changes      jsonb NOT NULL DEFAULT '{}',
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_events_ticket ON data.ticket_events (ticket_id, id);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ticket_sla_policies', 'tickets', 'ticket_comments',
                             'ticket_events'] LOOP
        EXECUTE format('ALTER TABLE data.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE data.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON data.%I '
            'USING (workspace_id = (SELECT agenthost_sandbox.current_workspace())) '
            'WITH CHECK (workspace_id = (SELECT agenthost_sandbox.current_workspace()))', t);
    END LOOP;
END
$$;

-- Minutes to resolve a ticket of a priority: the workspace's policy, else the default.
CREATE FUNCTION data.sla_minutes(workspace uuid, prio text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT resolution_minutes FROM data.ticket_sla_policies
          WHERE workspace_id = workspace AND priority = prio),
        CASE prio WHEN 'urgent' THEN 4 * 60 WHEN 'high' THEN 24 * 60
                  WHEN 'normal' THEN 3 * 24 * 60 ELSE 7 * 24 * 60 END);
$$;

-- Who is writing: a plugin is named by its login role (ahp_<hash>_<name>), which it
-- cannot forge; the host passes the caller in updated_by.
CREATE FUNCTION data.ticket_actor(given text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN session_user LIKE 'ahp\_%'
                THEN 'plugin:' || substring(session_user FROM '^ahp_[0-9a-f]+_(.*)$')
                ELSE coalesce(given, 'system') END;
$$;

-- The allowed moves: open <-> pending, open/pending -> solved, solved -> open (the
-- requester wrote back) or closed; closed is final.
CREATE FUNCTION data.ticket_transition_allowed(from_status text, to_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT from_status = to_status OR (from_status, to_status) IN (
        ('open', 'pending'), ('pending', 'open'), ('open', 'solved'), ('pending', 'solved'),
        ('solved', 'open'), ('solved', 'closed'));
$$;

-- SECURITY DEFINER: the ticket counter is the host's table, not a plugin's.
CREATE FUNCTION data.tickets_before_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    NEW.updated_by := data.ticket_actor(NEW.updated_by);
    IF TG_OP = 'INSERT' THEN
        IF NEW.status NOT IN ('open', 'pending') THEN
            RAISE EXCEPTION 'a new ticket must be open or pending, not %', NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
        INSERT INTO public.ticket_numbers AS n (workspace_id, last_number)
            VALUES (NEW.workspace_id, 1)
            ON CONFLICT (workspace_id) DO UPDATE SET last_number = n.last_number + 1
            RETURNING last_number INTO NEW.number;
        NEW.created_at := coalesce(NEW.created_at, now());
        NEW.sla_due_at := NEW.created_at
            + make_interval(mins => data.sla_minutes(NEW.workspace_id, NEW.priority));
        RETURN NEW;
    END IF;
    IF NEW.number <> OLD.number OR NEW.workspace_id <> OLD.workspace_id
       OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'a ticket''s number, workspace and creation time cannot change'
            USING ERRCODE = 'check_violation';
    END IF;
    IF NOT data.ticket_transition_allowed(OLD.status, NEW.status) THEN
        RAISE EXCEPTION 'a ticket cannot go from % to % (allowed: open <-> pending, open or pending -> solved, solved -> open or closed)',
            OLD.status, NEW.status USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.priority <> OLD.priority THEN
        NEW.sla_due_at := NEW.created_at
            + make_interval(mins => data.sla_minutes(NEW.workspace_id, NEW.priority));
    END IF;
    IF NEW.status = 'solved' AND OLD.status <> 'solved' THEN NEW.solved_at := now(); END IF;
    IF NEW.status = 'open' AND OLD.status = 'solved' THEN NEW.solved_at := NULL; END IF;
    IF NEW.status = 'closed' THEN NEW.closed_at := now(); END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER tickets_before_write BEFORE INSERT OR UPDATE ON data.tickets
    FOR EACH ROW EXECUTE FUNCTION data.tickets_before_write();

-- The history. SECURITY DEFINER so a plugin granted only `tickets` still leaves its
-- trail; the function writes nothing a caller chooses except through NEW/OLD.
CREATE FUNCTION data.tickets_after_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    changes jsonb := '{}';
    field text;
    old_row jsonb;
    new_row jsonb := to_jsonb(NEW);
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO data.ticket_events (workspace_id, ticket_id, actor, kind, changes)
        VALUES (NEW.workspace_id, NEW.id, NEW.updated_by, 'created',
                jsonb_build_object('status', NEW.status, 'priority', NEW.priority));
        RETURN NULL;
    END IF;
    old_row := to_jsonb(OLD);
    FOREACH field IN ARRAY ARRAY['subject', 'description', 'status', 'priority', 'channel',
        'requester_email', 'requester_name', 'customer_id', 'assignee_id', 'tags',
        'sla_due_at', 'overrides'] LOOP
        IF old_row -> field IS DISTINCT FROM new_row -> field THEN
            changes := changes || jsonb_build_object(field,
                jsonb_build_object('from', old_row -> field, 'to', new_row -> field));
        END IF;
    END LOOP;
    IF changes <> '{}' THEN
        INSERT INTO data.ticket_events (workspace_id, ticket_id, actor, kind, changes)
        VALUES (NEW.workspace_id, NEW.id, NEW.updated_by, 'updated', changes);
    ELSIF OLD.enriched_at IS DISTINCT FROM NEW.enriched_at THEN
        INSERT INTO data.ticket_events (workspace_id, ticket_id, actor, kind, changes)
        VALUES (NEW.workspace_id, NEW.id, NEW.updated_by, 'enriched', '{}');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER tickets_after_write AFTER INSERT OR UPDATE ON data.tickets
    FOR EACH ROW EXECUTE FUNCTION data.tickets_after_write();

-- A plugin's comment is signed by the plugin, whatever author it gave.
CREATE FUNCTION data.ticket_comments_before_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    NEW.author := data.ticket_actor(NEW.author);
    RETURN NEW;
END
$$;
CREATE TRIGGER ticket_comments_before_insert BEFORE INSERT ON data.ticket_comments
    FOR EACH ROW EXECUTE FUNCTION data.ticket_comments_before_insert();

CREATE FUNCTION data.ticket_comments_after_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO data.ticket_events (workspace_id, ticket_id, actor, kind, changes)
    VALUES (NEW.workspace_id, NEW.ticket_id, NEW.author, 'commented',
            jsonb_build_object('comment', NEW.id, 'public', NEW.public));
    UPDATE data.tickets SET updated_at = now(), updated_by = NEW.author
     WHERE id = NEW.ticket_id AND workspace_id = NEW.workspace_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER ticket_comments_after_insert AFTER INSERT ON data.ticket_comments
    FOR EACH ROW EXECUTE FUNCTION data.ticket_comments_after_insert();

-- What a plugin may not do even with a write grant, so the record stays true: change
-- or delete a comment, write the history other than through these triggers, or delete
-- a ticket (it solves or closes it; deleting is for admins through the REST API).
-- pg_trigger_depth() is 1 when the statement itself fires the guard, more when one of
-- the triggers above (or a cascade) does.
CREATE FUNCTION data.refuse_plugin_rewrite() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF session_user LIKE 'ahp\_%' AND pg_trigger_depth() = 1 THEN
        RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER ticket_comments_are_kept BEFORE UPDATE OR DELETE ON data.ticket_comments
    FOR EACH ROW EXECUTE FUNCTION data.refuse_plugin_rewrite(
        'plugins cannot change or delete comments; add a new one');
CREATE TRIGGER ticket_events_are_kept BEFORE INSERT OR UPDATE OR DELETE ON data.ticket_events
    FOR EACH ROW EXECUTE FUNCTION data.refuse_plugin_rewrite(
        'the ticket history is written by the database itself');
CREATE TRIGGER tickets_are_not_deleted_by_plugins BEFORE DELETE ON data.tickets
    FOR EACH ROW EXECUTE FUNCTION data.refuse_plugin_rewrite(
        'plugins cannot delete tickets; solve or close them');
