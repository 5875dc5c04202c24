-- BM25 for the full-text arm of text search (issue 19). PostgreSQL's ts_rank has no
-- inverse document frequency, so a common word counts as much as a rare one. BM25
-- needs, per collection, the number of documents, their total length and, per
-- lexeme, how many documents hold it; these tables keep them, maintained by
-- statement-level triggers in the transaction that writes the documents (so a
-- search sees statistics consistent with the documents it can see).

-- A document's length in tokens: every position of every lexeme of its tsvector
-- (stop words are not in it; a lexeme keeps at most 256 positions).
CREATE FUNCTION vector_tsv_length(tsv tsvector) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(sum(greatest(cardinality(positions), 1)), 0)::integer FROM unnest(tsv)
$$;

CREATE TABLE vector_text_stats (
    collection_id bigint PRIMARY KEY REFERENCES vector_collections (id) ON DELETE CASCADE,
    documents     bigint NOT NULL,
    total_length  bigint NOT NULL
);

CREATE TABLE vector_term_stats (
    collection_id bigint NOT NULL REFERENCES vector_collections (id) ON DELETE CASCADE,
    lexeme        text NOT NULL,
    -- Documents of the collection whose tsvector holds the lexeme.
    documents     bigint NOT NULL,
    PRIMARY KEY (collection_id, lexeme)
);

CREATE TYPE vector_text_change AS (collection_id bigint, tsv tsvector, sign integer);

-- Apply added (+1) and removed (-1) documents to the statistics. Rows are locked in
-- key order (terms, then the collection) so concurrent writers cannot deadlock. A
-- collection being dropped cascades to its documents: its statistics are gone or
-- going, so only collections that still exist are counted.
CREATE FUNCTION vector_text_stats_apply(changes vector_text_change[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO vector_term_stats AS s (collection_id, lexeme, documents)
    SELECT c.collection_id, w.lexeme, sum(c.sign)
      FROM unnest(changes) c, unnest(tsvector_to_array(c.tsv)) AS w (lexeme)
     WHERE c.tsv IS NOT NULL
       AND EXISTS (SELECT 1 FROM vector_collections v WHERE v.id = c.collection_id)
     GROUP BY 1, 2 HAVING sum(c.sign) <> 0
     ORDER BY 1, 2
    ON CONFLICT (collection_id, lexeme) DO UPDATE SET documents = s.documents + excluded.documents;

    DELETE FROM vector_term_stats s
     WHERE s.documents <= 0
       AND (s.collection_id, s.lexeme) IN (
           SELECT c.collection_id, w.lexeme
             FROM unnest(changes) c, unnest(tsvector_to_array(c.tsv)) AS w (lexeme)
            WHERE c.sign < 0);

    INSERT INTO vector_text_stats AS s (collection_id, documents, total_length)
    SELECT c.collection_id, sum(c.sign), sum(c.sign * coalesce(vector_tsv_length(c.tsv), 0))
      FROM unnest(changes) c
     WHERE EXISTS (SELECT 1 FROM vector_collections v WHERE v.id = c.collection_id)
     GROUP BY 1
     ORDER BY 1
    ON CONFLICT (collection_id) DO UPDATE
        SET documents = s.documents + excluded.documents,
            total_length = s.total_length + excluded.total_length;
$$;

-- Transition tables need one trigger per event.
CREATE FUNCTION vector_documents_text_stats() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM vector_text_stats_apply(array(
            SELECT (collection_id, tsv, 1)::vector_text_change FROM new_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM vector_text_stats_apply(array(
            SELECT (collection_id, tsv, 1)::vector_text_change FROM new_rows
            UNION ALL
            SELECT (collection_id, tsv, -1)::vector_text_change FROM old_rows));
    ELSE
        PERFORM vector_text_stats_apply(array(
            SELECT (collection_id, tsv, -1)::vector_text_change FROM old_rows));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER vector_documents_text_stats_insert AFTER INSERT ON vector_documents
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vector_documents_text_stats();
CREATE TRIGGER vector_documents_text_stats_update AFTER UPDATE ON vector_documents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vector_documents_text_stats();
CREATE TRIGGER vector_documents_text_stats_delete AFTER DELETE ON vector_documents
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vector_documents_text_stats();

-- The query's lexemes the full-text arm searches, each with its BM25 inverse document
-- frequency ln(1 + (N - n + 0.5) / (n + 0.5)) and the collection's average document
-- length. One lexeme per word of the query: its rarest in the collection. A code like
-- `E-1077` parses into 'e' and '-1077'; summing both would let a chunk full of other
-- E- codes outrank the one with E-1077, and `QX-78` would find every QX- code; so
-- the word counts once, by its most telling part, and a word with a part no document
-- holds matches nothing. Then the rarest `max_terms` of those: a long or repetitive
-- query costs no more than `max_terms` words.
CREATE FUNCTION vector_query_terms(collection bigint, query text, max_terms integer)
RETURNS TABLE (lexeme text, documents bigint, idf float8, avg_length float8)
LANGUAGE sql STABLE AS $$
    WITH per_word AS (
        SELECT DISTINCT ON (w.n) l.lexeme, coalesce(s.documents, 0) AS documents
          FROM regexp_split_to_table(query, '\s+') WITH ORDINALITY AS w (word, n),
               unnest(to_tsvector('english', w.word)) AS l
          LEFT JOIN vector_term_stats s ON s.collection_id = collection AND s.lexeme = l.lexeme
         ORDER BY w.n, coalesce(s.documents, 0), l.lexeme
    )
    SELECT t.lexeme, t.documents,
           ln(1 + (c.documents - t.documents + 0.5) / (t.documents + 0.5)),
           c.total_length::float8 / greatest(c.documents, 1)
      FROM (SELECT DISTINCT p.lexeme, p.documents FROM per_word p WHERE p.documents > 0) t
      JOIN vector_text_stats c ON c.collection_id = collection
     ORDER BY t.documents, t.lexeme
     LIMIT max_terms
$$;

-- A document's BM25 score for the query terms `lexemes` with their `idfs` (from
-- vector_query_terms): Σ idf · tf (k1 + 1) / (tf + k1 (1 - b + b · length / avg_length)),
-- tf being the term's positions in the document (heading and text). NULL when no term
-- is in the document.
CREATE FUNCTION vector_bm25(tsv tsvector, lexemes text[], idfs float8[], avg_length float8,
                            k1 float8 DEFAULT 1.2, b float8 DEFAULT 0.75)
RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sum(q.idf * f.tf * (k1 + 1)
               / (f.tf + k1 * (1 - b + b * l.length / greatest(avg_length, 1))))
      FROM (SELECT vector_tsv_length(tsv)::float8 AS length) l,
           unnest(tsv) w
           JOIN unnest(lexemes, idfs) AS q (lexeme, idf) ON q.lexeme = w.lexeme,
           LATERAL (SELECT greatest(cardinality(w.positions), 1)::float8 AS tf) f
$$;

-- The statistics of the documents already stored.
INSERT INTO vector_term_stats (collection_id, lexeme, documents)
SELECT d.collection_id, w.lexeme, count(*)
  FROM vector_documents d, unnest(tsvector_to_array(d.tsv)) AS w (lexeme)
 GROUP BY 1, 2;
INSERT INTO vector_text_stats (collection_id, documents, total_length)
SELECT collection_id, count(*), sum(vector_tsv_length(tsv)) FROM vector_documents GROUP BY 1;
