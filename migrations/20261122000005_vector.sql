-- Vector collections for the vector capability: per workspace, namespaced per plugin
-- (or `shared` when a grant shares a collection). Each collection is bound to the
-- embedding model that filled it, and so to one dimension.
CREATE TABLE vector_collections (
    id           bigserial PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    namespace    text NOT NULL,
    name         text NOT NULL,
    model        text NOT NULL,
    dims         integer NOT NULL CHECK (dims BETWEEN 1 AND 2000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, namespace, name)
);

-- One table for every collection. `embedding` has no fixed dimension, so collections
-- of different models can live side by side; HNSW needs a fixed one, so each dimension
-- gets a partial expression index (created on first use for dimensions other than
-- 384) and searches use the same expression.
CREATE TABLE vector_documents (
    collection_id bigint NOT NULL REFERENCES vector_collections(id) ON DELETE CASCADE,
    id            text NOT NULL,
    text          text,
    metadata      jsonb NOT NULL DEFAULT '{}',
    dims          integer NOT NULL,
    embedding     vector NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_id, id)
);

CREATE INDEX vector_documents_hnsw_384 ON vector_documents
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dims = 384;
CREATE INDEX vector_documents_metadata ON vector_documents USING gin (metadata jsonb_path_ops);

-- Embeddings already computed, keyed by model and the SHA-256 of the text.
CREATE TABLE embedding_cache (
    model       text NOT NULL,
    text_sha256 bytea NOT NULL,
    embedding   vector NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, text_sha256)
);
