-- Multilingual full text (issue 25). Every vector document records its language (an
-- ISO 639-1 code: declared in its metadata `language`, or detected from its text by
-- the host), and its full-text column is built with that language's stemmer and stop
-- words (German for `de`, ...), `simple` for a language PostgreSQL doesn't stem.
-- A query is parsed with the configuration of every language its collection holds,
-- so a mixed collection is searched in each of its languages.
--
-- The code is stored as text, not as regconfig: pg_upgrade refuses tables with
-- regconfig columns, and a code is what the API declares.

-- The configuration of a language code; agenthost_support::language has the same table.
-- IMMUTABLE (the built-in configurations never change), so a generated column can use it.
CREATE FUNCTION vector_text_config(language text) RETURNS regconfig
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (CASE language
        WHEN 'ar' THEN 'arabic' WHEN 'ca' THEN 'catalan' WHEN 'da' THEN 'danish'
        WHEN 'de' THEN 'german' WHEN 'el' THEN 'greek' WHEN 'en' THEN 'english'
        WHEN 'es' THEN 'spanish' WHEN 'et' THEN 'estonian' WHEN 'eu' THEN 'basque'
        WHEN 'fi' THEN 'finnish' WHEN 'fr' THEN 'french' WHEN 'ga' THEN 'irish'
        WHEN 'hi' THEN 'hindi' WHEN 'hu' THEN 'hungarian' WHEN 'hy' THEN 'armenian'
        WHEN 'id' THEN 'indonesian' WHEN 'it' THEN 'italian' WHEN 'lt' THEN 'lithuanian'
        WHEN 'nb' THEN 'norwegian' WHEN 'ne' THEN 'nepali' WHEN 'nl' THEN 'dutch'
        WHEN 'no' THEN 'norwegian' WHEN 'pt' THEN 'portuguese' WHEN 'ro' THEN 'romanian'
        WHEN 'ru' THEN 'russian' WHEN 'sr' THEN 'serbian' WHEN 'sv' THEN 'swedish'
        WHEN 'ta' THEN 'tamil' WHEN 'tr' THEN 'turkish'
        ELSE 'simple' END)::regconfig
$$;

-- Documents written before this migration were indexed in English: they stay so.
ALTER TABLE vector_documents
    ADD COLUMN language text NOT NULL DEFAULT 'en' CHECK (language ~ '^[a-z]{2,3}$');
ALTER TABLE vector_documents ALTER COLUMN tsv SET EXPRESSION AS (
    setweight(to_tsvector(vector_text_config(language), coalesce(metadata ->> 'heading', '')), 'A') ||
    setweight(to_tsvector(vector_text_config(language), coalesce(text, '')), 'B'));

-- How many documents of a collection are in each language: the configurations its
-- queries are parsed with. Kept by statement triggers like the BM25 statistics.
CREATE TABLE vector_language_stats (
    collection_id bigint NOT NULL REFERENCES vector_collections (id) ON DELETE CASCADE,
    language      text NOT NULL,
    documents     bigint NOT NULL,
    PRIMARY KEY (collection_id, language)
);

CREATE FUNCTION vector_language_stats_apply(changes jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO vector_language_stats AS s (collection_id, language, documents)
    SELECT c.collection_id, c.language, sum(c.sign)
      FROM jsonb_to_recordset(changes) AS c (collection_id bigint, language text, sign integer)
     WHERE EXISTS (SELECT 1 FROM vector_collections v WHERE v.id = c.collection_id)
     GROUP BY 1, 2 HAVING sum(c.sign) <> 0
     ORDER BY 1, 2
    ON CONFLICT (collection_id, language) DO UPDATE SET documents = s.documents + excluded.documents;
    DELETE FROM vector_language_stats WHERE documents <= 0;
$$;

CREATE FUNCTION vector_documents_language_stats() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM vector_language_stats_apply((SELECT jsonb_agg(jsonb_build_object(
            'collection_id', collection_id, 'language', language, 'sign', 1)) FROM new_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM vector_language_stats_apply((SELECT jsonb_agg(c) FROM (
            SELECT jsonb_build_object('collection_id', collection_id, 'language', language, 'sign', 1) AS c FROM new_rows
            UNION ALL
            SELECT jsonb_build_object('collection_id', collection_id, 'language', language, 'sign', -1) FROM old_rows) changes));
    ELSE
        PERFORM vector_language_stats_apply((SELECT jsonb_agg(jsonb_build_object(
            'collection_id', collection_id, 'language', language, 'sign', -1)) FROM old_rows));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER vector_documents_language_stats_insert AFTER INSERT ON vector_documents
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vector_documents_language_stats();
CREATE TRIGGER vector_documents_language_stats_update AFTER UPDATE ON vector_documents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vector_documents_language_stats();
CREATE TRIGGER vector_documents_language_stats_delete AFTER DELETE ON vector_documents
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vector_documents_language_stats();

INSERT INTO vector_language_stats (collection_id, language, documents)
SELECT collection_id, language, count(*) FROM vector_documents GROUP BY 1, 2;

-- The configurations a collection's queries are parsed with: one per language it
-- holds, English for an empty one.
CREATE FUNCTION vector_text_configs(collection bigint) RETURNS SETOF regconfig
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT vector_text_config(language) FROM vector_language_stats
     WHERE collection_id = collection AND documents > 0
    UNION
    SELECT 'english'::regconfig
     WHERE NOT EXISTS (SELECT 1 FROM vector_language_stats
                        WHERE collection_id = collection AND documents > 0)
$$;

-- As in migration 0020, but each word is read in every language of the collection:
-- per language its rarest part (a part no document holds: that reading matches
-- nothing), and the word matches with every reading that some document holds. A
-- German word in a German and English collection thus finds the German documents
-- by its German stem and the English ones by its English stem, if they hold it.
CREATE OR REPLACE FUNCTION vector_query_terms(collection bigint, query text, max_terms integer)
RETURNS TABLE (lexeme text, documents bigint, idf float8, avg_length float8)
LANGUAGE sql STABLE AS $$
    WITH configs AS (
        SELECT config FROM vector_text_configs(collection) AS config
    ), per_reading AS (
        SELECT DISTINCT ON (w.n, g.config) w.n, l.lexeme, coalesce(s.documents, 0) AS documents
          FROM regexp_split_to_table(query, '\s+') WITH ORDINALITY AS w (word, n)
          CROSS JOIN configs g
          CROSS JOIN LATERAL unnest(to_tsvector(g.config, w.word)) AS l
          LEFT JOIN vector_term_stats s ON s.collection_id = collection AND s.lexeme = l.lexeme
         ORDER BY w.n, g.config, coalesce(s.documents, 0), l.lexeme
    )
    SELECT t.lexeme, t.documents,
           ln(1 + (c.documents - t.documents + 0.5) / (t.documents + 0.5)),
           c.total_length::float8 / greatest(c.documents, 1)
      FROM (SELECT DISTINCT p.lexeme, p.documents FROM per_reading p WHERE p.documents > 0) t
      JOIN vector_text_stats c ON c.collection_id = collection
     ORDER BY t.documents, t.lexeme
     LIMIT max_terms
$$;

-- The lexemes of `words` in every language of the collection (for `-word` exclusions).
CREATE FUNCTION vector_query_lexemes(collection bigint, words text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT l.lexeme
      FROM vector_text_configs(collection) AS g (config),
           unnest(to_tsvector(g.config, words)) AS l
$$;

-- The language the knowledge base indexes an article in: declared by its editor, or
-- (NULL) detected from its text when it is indexed.
ALTER TABLE data.kb_articles
    ADD COLUMN language text CHECK (language ~ '^[a-z]{2,3}$');
