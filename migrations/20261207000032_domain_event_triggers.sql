-- Domain events of the business data (issue 20), written by triggers so that every
-- path that changes a row (the REST API, an import, a plugin's SQL through the
-- database capability) writes its event in the same transaction. SECURITY DEFINER:
-- plugins may not write `events` themselves. The catalogue of types and payload
-- schemas is host/src/events/types.rs.

-- Who caused a change: a plugin by its login role (it cannot forge it), else what
-- the host passed, else the host itself.
CREATE FUNCTION public.event_actor(given text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN session_user LIKE 'ahp\_%'
                THEN 'plugin:' || substring(session_user FROM '^ahp_[0-9a-f]+_(.*)$')
                ELSE coalesce(given, 'system:host') END;
$$;

CREATE FUNCTION public.emit_event(workspace uuid, kind text, subject text, payload jsonb,
                                  actor text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    INSERT INTO public.events (workspace_id, type, subject, payload, actor)
    VALUES (workspace, kind, subject, payload, actor);
$$;

CREATE FUNCTION data.tickets_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    ticket jsonb := jsonb_build_object('ticket_id', NEW.id, 'number', NEW.number,
        'subject', NEW.subject, 'status', NEW.status, 'priority', NEW.priority,
        'channel', NEW.channel, 'requester_email', NEW.requester_email, 'tags', NEW.tags);
    changed text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM public.emit_event(NEW.workspace_id, 'ticket.created', NEW.id::text, ticket,
                                  public.event_actor(NEW.updated_by));
        RETURN NULL;
    END IF;
    -- What a person would call a change (enrichment writing its findings is not one).
    changed := array_remove(ARRAY[
        CASE WHEN NEW.subject IS DISTINCT FROM OLD.subject THEN 'subject' END,
        CASE WHEN NEW.description IS DISTINCT FROM OLD.description THEN 'description' END,
        CASE WHEN NEW.status IS DISTINCT FROM OLD.status THEN 'status' END,
        CASE WHEN NEW.priority IS DISTINCT FROM OLD.priority THEN 'priority' END,
        CASE WHEN NEW.channel IS DISTINCT FROM OLD.channel THEN 'channel' END,
        CASE WHEN NEW.requester_email IS DISTINCT FROM OLD.requester_email
             OR NEW.requester_name IS DISTINCT FROM OLD.requester_name THEN 'requester' END,
        CASE WHEN NEW.customer_id IS DISTINCT FROM OLD.customer_id THEN 'customer' END,
        CASE WHEN NEW.assignee_id IS DISTINCT FROM OLD.assignee_id THEN 'assignee' END,
        CASE WHEN NEW.tags IS DISTINCT FROM OLD.tags THEN 'tags' END,
        CASE WHEN NEW.overrides IS DISTINCT FROM OLD.overrides THEN 'overrides' END], NULL);
    IF cardinality(changed) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM public.emit_event(NEW.workspace_id, 'ticket.updated', NEW.id::text,
        ticket || jsonb_build_object('changed', to_jsonb(changed)),
        public.event_actor(NEW.updated_by));
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM public.emit_event(NEW.workspace_id, 'ticket.status_changed', NEW.id::text,
            ticket || jsonb_build_object('from', OLD.status, 'to', NEW.status),
            public.event_actor(NEW.updated_by));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER tickets_events AFTER INSERT OR UPDATE ON data.tickets
    FOR EACH ROW EXECUTE FUNCTION data.tickets_events();

CREATE FUNCTION data.ticket_comments_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM public.emit_event(NEW.workspace_id, 'ticket.commented', NEW.ticket_id::text,
        jsonb_build_object('ticket_id', NEW.ticket_id, 'comment_id', NEW.id,
                           'public', NEW.public, 'author', NEW.author),
        public.event_actor(NEW.author));
    RETURN NULL;
END
$$;
CREATE TRIGGER ticket_comments_events AFTER INSERT ON data.ticket_comments
    FOR EACH ROW EXECUTE FUNCTION data.ticket_comments_events();

-- A deal's `won` turning true, however it was written (an import, a plugin, SQL).
CREATE FUNCTION data.deals_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF NEW.won IS TRUE AND (TG_OP = 'INSERT' OR OLD.won IS DISTINCT FROM TRUE) THEN
        PERFORM public.emit_event(NEW.workspace_id, 'deal.won', NEW.id::text,
            jsonb_build_object('deal_id', NEW.id, 'external_id', NEW.external_id,
                'amount', NEW.amount, 'currency', NEW.currency, 'stage', NEW.stage,
                'owner_id', NEW.owner_id, 'customer_id', NEW.customer_id),
            public.event_actor(NULL));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER deals_events AFTER INSERT OR UPDATE OF won ON data.deals
    FOR EACH ROW EXECUTE FUNCTION data.deals_events();

CREATE FUNCTION data.kb_articles_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    -- Published: the article went live, or a new revision of a live one did.
    IF (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('published', 'archived'))
       OR (NEW.status = 'published'
           AND NEW.live_revision_id IS DISTINCT FROM OLD.live_revision_id) THEN
        PERFORM public.emit_event(NEW.workspace_id, 'kb.article.' || NEW.status, NEW.id::text,
            jsonb_build_object('article_id', NEW.id, 'slug', NEW.slug, 'title', NEW.title,
                'version', NEW.latest_version, 'status', NEW.status),
            public.event_actor(NULL));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER kb_articles_events AFTER UPDATE OF status, live_revision_id ON data.kb_articles
    FOR EACH ROW EXECUTE FUNCTION data.kb_articles_events();

CREATE FUNCTION data.kb_gaps_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM public.emit_event(NEW.workspace_id, 'kb.gap.logged', NEW.id::text,
        jsonb_build_object('gap_id', NEW.id, 'question', NEW.question,
            'reason', NEW.reason, 'best_score', NEW.best_score, 'source', NEW.source),
        public.event_actor(NULL));
    RETURN NULL;
END
$$;
CREATE TRIGGER kb_gaps_events AFTER INSERT ON data.kb_gaps
    FOR EACH ROW EXECUTE FUNCTION data.kb_gaps_events();
