import { useEffect, useState } from "react";
import { api, can, when } from "../api.js";
import { Link } from "../router.jsx";

const MODES = ["hybrid", "full_text", "vector"];

/** Search the live chunks, showing which passages matched and how. */
function Search() {
  const [query, setQuery] = useState("");
  const [mode, setMode] = useState("hybrid");
  const [results, setResults] = useState(null);
  const [searched, setSearched] = useState(null);
  const [error, setError] = useState(null);
  const search = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      const r = await api("/api/kb/search", { method: "POST", body: { query, k: 10, mode } });
      setResults(r.results);
      setSearched({ query, mode });
    } catch (e) {
      setError(e.message);
    }
  };
  return (
    <section className="panel" aria-labelledby="search-title">
      <h2 id="search-title">Search the knowledge base</h2>
      <form className="filters" role="search" onSubmit={search}>
        <div className="field">
          <label htmlFor="kb-query">Question or words</label>
          <input id="kb-query" type="search" value={query} onChange={(e) => setQuery(e.target.value)} required />
        </div>
        <div className="field">
          <label htmlFor="kb-mode">Mode</label>
          <select id="kb-mode" value={mode} onChange={(e) => setMode(e.target.value)}>
            {MODES.map((m) => <option key={m}>{m}</option>)}
          </select>
        </div>
        <div className="buttons"><button type="submit">Search</button></div>
      </form>
      {error && <p role="alert" className="error">{error}</p>}
      {results && (
        <>
          <p role="status">
            {results.length} passage{results.length === 1 ? "" : "s"} for “{searched.query}” in {searched.mode} mode.
          </p>
          <ol>
            {results.map((r) => (
              <li key={r.chunk_id}>
                <Link to={`/kb/${r.slug}`}>{r.heading_path.join(" > ")}</Link>{" "}
                <span className="hint">
                  score {r.score.toFixed(3)} · similarity {r.similarity.toFixed(3)} · {r.text_match ? "words matched" : "no word matched"}
                  {r.text_rank != null && ` (BM25 ${r.text_rank.toFixed(2)})`} · version {r.version}
                </span>
                <p className="passage">{r.text}</p>
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}

export function Articles() {
  const [articles, setArticles] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api("/api/kb/articles").then((r) => setArticles(r.articles)).catch((e) => setError(e.message));
  }, []);
  return (
    <>
      <h1 tabIndex={-1}>Knowledge base</h1>
      <Search />
      <h2>Articles</h2>
      {error && <p role="alert" className="error">{error}</p>}
      {articles && articles.length === 0 && <p>No articles yet (add them with the API: docs/cassie.md).</p>}
      {articles && articles.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Article</th>
                <th scope="col">Category</th>
                <th scope="col">Status</th>
                <th scope="col">Live / latest version</th>
                <th scope="col">Index</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {articles.map((a) => (
                <tr key={a.id}>
                  <td><Link to={`/kb/${a.slug}`}>{a.title}</Link></td>
                  <td>{a.category || "—"}</td>
                  <td><span className={`badge ${a.status}`}>{a.status}</span></td>
                  <td>{a.live_version ?? "—"} / {a.latest_version}</td>
                  <td>{a.index_status || "—"}{a.chunk_count != null && ` (${a.chunk_count} chunks)`}</td>
                  <td>{when(a.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

/** One article: its live and latest text, revisions, review, publish and archive. */
export function Article({ session, slug }) {
  const [article, setArticle] = useState(null);
  const [revisions, setRevisions] = useState([]);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const load = async () => {
    const [a, r] = await Promise.all([
      api(`/api/kb/articles/${encodeURIComponent(slug)}`),
      api(`/api/kb/articles/${encodeURIComponent(slug)}/revisions`),
    ]);
    setArticle(a);
    setRevisions(r.revisions);
  };
  useEffect(() => {
    load().catch((e) => setError(e.message));
  }, [slug]);
  const act = async (path, body, words, method = "POST") => {
    setError(null);
    setNotice(null);
    try {
      await api(`/api/kb/articles/${encodeURIComponent(slug)}${path}`, { method, body });
      await load();
      setNotice(words);
    } catch (e) {
      setError(e.message);
    }
  };
  if (!article) {
    return (
      <>
        <h1 tabIndex={-1}>Article</h1>
        {error ? <p role="alert" className="error">{error}</p> : <p role="status">Loading…</p>}
      </>
    );
  }
  const admin = can(session, "admin");
  const member = can(session, "member");
  const shown = article.live_revision || article.latest_revision;
  return (
    <>
      <h1 tabIndex={-1}>{article.title}</h1>
      <p><Link to="/kb">Knowledge base</Link></p>
      {notice && <p role="status" className="notice">{notice}</p>}
      {error && <p role="alert" className="error">{error}</p>}
      <dl className="facts">
        <dt>Status</dt><dd><span className={`badge ${article.status}`}>{article.status}</span></dd>
        <dt>Live version</dt><dd>{article.live_version ?? "none"} of {article.latest_version}</dd>
        <dt>Index</dt><dd>{article.index_status || "—"}{article.chunk_count != null && `, ${article.chunk_count} chunks`}</dd>
        <dt>Tags</dt><dd>{(article.tags || []).join(", ") || "—"}</dd>
      </dl>
      <div className="buttons">
        {member && article.status === "draft" && (
          <button type="button" onClick={() => act("", { status: "in_review" }, "Submitted for review.", "PATCH")}>Submit for review</button>
        )}
        {admin && article.status !== "archived" && article.status !== "draft" && (
          <button type="button" onClick={() => act("/publish", undefined, "Published the latest version.")}>Publish latest version</button>
        )}
        {admin && article.status !== "archived" && (
          <button type="button" className="danger" onClick={() => act("/archive", undefined, "Archived.")}>Archive</button>
        )}
      </div>
      <h2>Revisions</h2>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Index</th>
              <th scope="col">Made</th>
              <th scope="col"><span className="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {revisions.map((r) => (
              <tr key={r.id || r.version}>
                <td>{r.version}{r.version === article.live_version && " (live)"}</td>
                <td>{r.index_status || "—"}{r.chunk_count != null && ` (${r.chunk_count} chunks)`}</td>
                <td>{when(r.created_at)}</td>
                <td>
                  {admin && r.version !== article.live_version && article.status !== "archived" && article.status !== "draft" && (
                    <button type="button" className="small" aria-label={`Publish version ${r.version}`}
                      onClick={() => act("/publish", { version: r.version }, `Published version ${r.version}.`)}>
                      Publish
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {shown && (
        <>
          <h2>Text of version {shown.version}</h2>
          <pre className="article" tabIndex={0} aria-label={`Text of version ${shown.version}`}>{shown.body}</pre>
        </>
      )}
    </>
  );
}
