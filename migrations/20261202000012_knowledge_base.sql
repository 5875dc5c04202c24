-- The support knowledge base (issue 13): articles with immutable revisions, their
-- chunks in the vector store with a full-text column for hybrid search, the
-- background jobs that index revisions and enrich tickets, the intents tickets are
-- classified into, and the questions no article answered (knowledge gaps).

-- Full text next to every vector document, for the `hybrid` and `full-text` modes of
-- the vector capability. A document's metadata `heading` weighs more than its text.
ALTER TABLE vector_documents ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', coalesce(metadata ->> 'heading', '')), 'A') ||
    setweight(to_tsvector('english', coalesce(text, '')), 'B')) STORED;
CREATE INDEX vector_documents_tsv ON vector_documents USING gin (tsv);

CREATE TABLE data.kb_articles (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id     uuid NOT NULL DEFAULT agenthost_sandbox.current_workspace()
                     REFERENCES workspaces (id) ON DELETE CASCADE,
    slug             text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,127}$'),
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    category         text,
    tags             text[] NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'draft'
                     CHECK (status IN ('draft', 'in_review', 'published', 'archived')),
    author           text NOT NULL,
    -- The revision search and answers use; set by publishing.
    live_revision_id uuid,
    latest_version   integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    published_at     timestamptz,
    archived_at      timestamptz,
    UNIQUE (workspace_id, slug)
);

CREATE TABLE data.kb_revisions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid NOT NULL DEFAULT agenthost_sandbox.current_workspace()
                 REFERENCES workspaces (id) ON DELETE CASCADE,
    article_id   uuid NOT NULL REFERENCES data.kb_articles (id) ON DELETE CASCADE,
    version      integer NOT NULL CHECK (version > 0),
    title        text NOT NULL,
    body         text NOT NULL CHECK (length(body) BETWEEN 1 AND 1048576),
    -- SHA-256 of the body, hex.
    checksum     text NOT NULL,
    author       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Indexing state of this revision (the content above never changes).
    index_status text NOT NULL DEFAULT 'none'
                 CHECK (index_status IN ('none', 'queued', 'indexing', 'indexed', 'failed')),
    chunk_count  integer,
    index_error  text,
    indexed_at   timestamptz,
    UNIQUE (article_id, version)
);
ALTER TABLE data.kb_articles ADD FOREIGN KEY (live_revision_id)
    REFERENCES data.kb_revisions (id) ON DELETE SET NULL;

-- What the team classifies tickets into, each with labelled examples. A workspace with
-- none uses the host's default list.
CREATE TABLE data.support_intents (
    workspace_id uuid NOT NULL DEFAULT agenthost_sandbox.current_workspace()
                 REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (name ~ '^[a-z0-9_]{1,64}$'),
    description  text NOT NULL DEFAULT '',
    examples     text[] NOT NULL CHECK (cardinality(examples) BETWEEN 1 AND 50),
    PRIMARY KEY (workspace_id, name)
);

-- Questions the knowledge base did not answer.
CREATE TABLE data.kb_gaps (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid NOT NULL DEFAULT agenthost_sandbox.current_workspace()
                 REFERENCES workspaces (id) ON DELETE CASCADE,
    question     text NOT NULL CHECK (length(question) BETWEEN 1 AND 4000),
    -- Why it was not answered: no_match (nothing relevant enough) or not_covered (the
    -- model said the sources do not hold the answer).
    reason       text NOT NULL CHECK (reason IN ('no_match', 'not_covered')),
    best_score   real,
    source       text NOT NULL DEFAULT 'api',
    asked_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kb_gaps_asked ON data.kb_gaps (workspace_id, asked_at DESC);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['kb_articles', 'kb_revisions', 'support_intents', 'kb_gaps'] LOOP
        EXECUTE format('ALTER TABLE data.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE data.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY workspace_isolation ON data.%I '
            'USING (workspace_id = (SELECT agenthost_sandbox.current_workspace())) '
            'WITH CHECK (workspace_id = (SELECT agenthost_sandbox.current_workspace()))', t);
    END LOOP;
END
$$;

-- A revision's content never changes; publish a new one instead.
CREATE FUNCTION data.kb_revisions_before_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.article_id, NEW.version, NEW.title, NEW.body, NEW.checksum, NEW.author, NEW.created_at)
       IS DISTINCT FROM
       (OLD.article_id, OLD.version, OLD.title, OLD.body, OLD.checksum, OLD.author, OLD.created_at) THEN
        RAISE EXCEPTION 'a revision cannot change; add a new revision instead'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER kb_revisions_before_update BEFORE UPDATE ON data.kb_revisions
    FOR EACH ROW EXECUTE FUNCTION data.kb_revisions_before_update();

-- draft -> in_review -> published -> archived, with the ways back an editor needs:
-- in_review -> draft (changes requested), archived -> draft (restore).
CREATE FUNCTION data.kb_articles_before_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> OLD.status AND (OLD.status, NEW.status) NOT IN (
        ('draft', 'in_review'), ('in_review', 'draft'), ('in_review', 'published'),
        ('published', 'archived'), ('archived', 'draft')) THEN
        RAISE EXCEPTION 'an article cannot go from % to % (draft -> in_review -> published -> archived; in_review -> draft; archived -> draft)',
            OLD.status, NEW.status USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status = 'published' AND NEW.live_revision_id IS NULL THEN
        RAISE EXCEPTION 'a published article needs a live revision'
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status = 'published' AND OLD.status <> 'published' THEN NEW.published_at := now(); END IF;
    IF NEW.status = 'archived' THEN NEW.archived_at := now(); END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER kb_articles_before_update BEFORE UPDATE ON data.kb_articles
    FOR EACH ROW EXECUTE FUNCTION data.kb_articles_before_update();

-- Background work of the support features: indexing a published revision, enriching a
-- ticket. Claimed with FOR UPDATE SKIP LOCKED; a running job is claimed again when its
-- host stopped heartbeating or its lease ran out, and both kinds are idempotent.
CREATE TABLE support_jobs (
    id           bigserial PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('index_revision', 'enrich_ticket')),
    target       uuid NOT NULL,
    status       text NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    error        text,
    -- {"done": n, "total": m} while it runs.
    progress     jsonb NOT NULL DEFAULT '{}',
    run_after    timestamptz NOT NULL DEFAULT now(),
    -- The host running it (its workflow_workers heartbeat id) and until when at most.
    worker       text,
    lease_until  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX support_jobs_ready ON support_jobs (run_after, id) WHERE status = 'queued';
CREATE INDEX support_jobs_running ON support_jobs (lease_until) WHERE status = 'running';
-- One queued job per target is enough: a second request joins the first.
CREATE UNIQUE INDEX support_jobs_one_queued ON support_jobs (kind, target) WHERE status = 'queued';

CREATE FUNCTION support_enqueue(workspace uuid, job_kind text, job_target uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO support_jobs (workspace_id, kind, target) VALUES (workspace, job_kind, job_target)
        ON CONFLICT (kind, target) WHERE status = 'queued' DO NOTHING;
    PERFORM pg_notify('support_jobs', '');
END
$$;
REVOKE EXECUTE ON FUNCTION support_enqueue(uuid, text, uuid) FROM PUBLIC;

-- Every new ticket is enriched in the background, queued in the ticket's own
-- transaction (so a ticket a plugin creates is enriched too, and a rolled back one
-- leaves no job).
CREATE FUNCTION data.tickets_enqueue_enrichment() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM public.support_enqueue(NEW.workspace_id, 'enrich_ticket', NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER tickets_enqueue_enrichment AFTER INSERT ON data.tickets
    FOR EACH ROW EXECUTE FUNCTION data.tickets_enqueue_enrichment();
