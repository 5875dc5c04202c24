import { useEffect, useState } from "react";
import { api, can, when } from "../api.js";
import { Link } from "../router.jsx";

const STATUSES = ["open", "pending", "solved", "closed"];
const PRIORITIES = ["low", "normal", "high", "urgent"];

/** Tickets, newest first, filtered by status and priority and searched by text. */
export function Tickets() {
  const [tickets, setTickets] = useState(null);
  const [status, setStatus] = useState("");
  const [priority, setPriority] = useState("");
  const [q, setQ] = useState("");
  const [query, setQuery] = useState("");
  const [error, setError] = useState(null);
  useEffect(() => {
    const params = new URLSearchParams({ limit: "200", status, priority, q: query });
    api(`/api/tickets?${params}`)
      .then((r) => setTickets(r.tickets))
      .catch((e) => setError(e.message));
  }, [status, priority, query]);
  return (
    <>
      <h1 tabIndex={-1}>Tickets</h1>
      <form className="filters" role="search" onSubmit={(e) => { e.preventDefault(); setQuery(q); }}>
        <div className="field">
          <label htmlFor="ticket-q">Search</label>
          <input id="ticket-q" type="search" value={q} onChange={(e) => setQ(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="ticket-status">Status</label>
          <select id="ticket-status" value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">any</option>
            {STATUSES.map((s) => <option key={s}>{s}</option>)}
          </select>
        </div>
        <div className="field">
          <label htmlFor="ticket-priority">Priority</label>
          <select id="ticket-priority" value={priority} onChange={(e) => setPriority(e.target.value)}>
            <option value="">any</option>
            {PRIORITIES.map((s) => <option key={s}>{s}</option>)}
          </select>
        </div>
        <div className="buttons"><button type="submit">Search</button></div>
      </form>
      {error && <p role="alert" className="error">{error}</p>}
      {tickets && tickets.length === 0 && <p>No tickets match.</p>}
      {tickets && tickets.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Subject</th>
                <th scope="col">Status</th>
                <th scope="col">Priority</th>
                <th scope="col">Requester</th>
                <th scope="col">Sentiment</th>
                <th scope="col">SLA due</th>
              </tr>
            </thead>
            <tbody>
              {tickets.map((t) => (
                <tr key={t.id}>
                  <td>{t.number}</td>
                  <td><Link to={`/tickets/${t.number}`}>{t.subject}</Link></td>
                  <td><span className={`badge ${t.status}`}>{t.status}</span></td>
                  <td>{t.priority}</td>
                  <td>{t.requester.name || t.requester.email}</td>
                  <td>{t.enrichment && t.enrichment.sentiment ? t.enrichment.sentiment.label : "—"}</td>
                  <td>{when(t.sla_due_at)}{t.sla_breached && <strong className="error"> breached</strong>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function Enrichment({ ticket, onEnrich, mayEnrich }) {
  const e = ticket.enrichment;
  return (
    <section className="panel" aria-labelledby="enrichment-title">
      <h2 id="enrichment-title">Enrichment</h2>
      {!e ? (
        <p className="hint">Not enriched yet (it runs a moment after a ticket is made).</p>
      ) : (
        <dl className="facts">
          {e.sentiment && (
            <>
              <dt>Sentiment</dt>
              <dd>{e.sentiment.label} ({e.sentiment.score.toFixed(2)}, {e.sentiment.method})</dd>
            </>
          )}
          {e.intent && (
            <>
              <dt>Intent</dt>
              <dd>{e.intent.name} (confidence {e.intent.confidence.toFixed(2)})</dd>
            </>
          )}
          {e.suggested_priority && (
            <>
              <dt>Suggested priority</dt>
              <dd>{e.suggested_priority.priority} — {e.suggested_priority.reasons.join("; ") || "no reasons"}</dd>
            </>
          )}
          {e.summary && (
            <>
              <dt>Summary</dt>
              <dd>{e.summary.text}</dd>
            </>
          )}
          {e.related_articles && e.related_articles.length > 0 && (
            <>
              <dt>Related articles</dt>
              <dd>
                <ul className="plain">
                  {e.related_articles.map((a) => (
                    <li key={a.article_id}>
                      <Link to={`/kb/${a.slug}`}>{a.heading || a.title}</Link>{" "}
                      <span className="hint">similarity {a.similarity.toFixed(2)}</span>
                    </li>
                  ))}
                </ul>
              </dd>
            </>
          )}
        </dl>
      )}
      {e && e.suggested_reply && (
        <>
          <h3>Suggested reply <span className="hint">({e.suggested_reply.method}, confidence {e.suggested_reply.confidence})</span></h3>
          <pre className="reply">{e.suggested_reply.text}</pre>
          {e.suggested_reply.citations && e.suggested_reply.citations.length > 0 && (
            <ol className="citations">
              {e.suggested_reply.citations.map((c) => (
                <li key={c.n} value={c.n}>
                  <Link to={`/kb/${c.slug}`}>{(c.heading_path || [c.slug]).join(" > ")}</Link>
                </li>
              ))}
            </ol>
          )}
        </>
      )}
      {Object.keys(ticket.overrides || {}).length > 0 && (
        <p>Corrected by a person: {Object.entries(ticket.overrides).map(([k, v]) => `${k} ${v}`).join(", ")}</p>
      )}
      {mayEnrich && <button type="button" onClick={onEnrich}>Enrich again</button>}
    </section>
  );
}

/** One ticket: its thread, status and priority, enrichment, and history. */
export function Ticket({ session, number }) {
  const [ticket, setTicket] = useState(null);
  const [body, setBody] = useState("");
  const [visible, setVisible] = useState(true);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const load = () => api(`/api/tickets/${number}`).then(setTicket).catch((e) => setError(e.message));
  useEffect(() => {
    load();
  }, [number]);
  const member = can(session, "member");
  const run = async (fn, words) => {
    setError(null);
    setNotice(null);
    try {
      const result = await fn();
      await load();
      setNotice(typeof words === "function" ? words(result) : words);
    } catch (e) {
      setError(e.message);
    }
  };
  if (!ticket) {
    return (
      <>
        <h1 tabIndex={-1}>Ticket #{number}</h1>
        {error ? <p role="alert" className="error">{error}</p> : <p role="status">Loading…</p>}
      </>
    );
  }
  const patch = (change, words) =>
    run(() => api(`/api/tickets/${number}`, { method: "PATCH", body: change }), words);
  return (
    <>
      <h1 tabIndex={-1}>#{ticket.number} {ticket.subject}</h1>
      <p><Link to="/tickets">All tickets</Link></p>
      {notice && <p role="status" className="notice">{notice}</p>}
      {error && <p role="alert" className="error">{error}</p>}
      <dl className="facts">
        <dt>Requester</dt>
        <dd>{ticket.requester.name ? `${ticket.requester.name} <${ticket.requester.email}>` : ticket.requester.email}</dd>
        <dt>Channel</dt>
        <dd>{ticket.channel}</dd>
        <dt>Created</dt>
        <dd>{when(ticket.created_at)}</dd>
        <dt>SLA due</dt>
        <dd>{when(ticket.sla_due_at)}{ticket.sla_breached && <strong className="error"> (breached)</strong>}</dd>
      </dl>
      <div className="filters">
        <div className="field">
          <label htmlFor="status">Status</label>
          <select id="status" value={ticket.status} disabled={!member} onChange={(e) => patch({ status: e.target.value }, `Status set to ${e.target.value}.`)}>
            {STATUSES.map((s) => <option key={s}>{s}</option>)}
          </select>
        </div>
        <div className="field">
          <label htmlFor="priority">Priority</label>
          <select id="priority" value={ticket.priority} disabled={!member} onChange={(e) => patch({ priority: e.target.value }, `Priority set to ${e.target.value}.`)}>
            {PRIORITIES.map((s) => <option key={s}>{s}</option>)}
          </select>
        </div>
      </div>
      <h2>Thread</h2>
      <article className="message user">
        <p className="who">{ticket.requester.name || ticket.requester.email}, {when(ticket.created_at)}</p>
        <p className="text">{ticket.description}</p>
      </article>
      {ticket.comments.map((c) => (
        <article key={c.id} className={`message ${c.public ? "assistant" : "internal"}`}>
          <p className="who">{c.author}{c.public ? "" : " (internal note)"}, {when(c.created_at)}</p>
          <p className="text">{c.body}</p>
        </article>
      ))}
      {member && (
        <form
          className="composer"
          onSubmit={(e) => {
            e.preventDefault();
            run(() => api(`/api/tickets/${number}/comments`, { method: "POST", body: { body, public: visible } }), visible ? "Reply added." : "Note added.");
            setBody("");
          }}
        >
          <label htmlFor="reply">Reply or note</label>
          <textarea id="reply" rows={3} value={body} onChange={(e) => setBody(e.target.value)} required />
          <div className="field check">
            <input id="public" type="checkbox" checked={visible} onChange={(e) => setVisible(e.target.checked)} />
            <label htmlFor="public">Visible to the requester</label>
          </div>
          <button type="submit" disabled={!body.trim()}>Add</button>
        </form>
      )}
      <Enrichment
        ticket={ticket}
        mayEnrich={member}
        onEnrich={() =>
          run(
            () => api(`/api/tickets/${number}/enrich`, { method: "POST" }),
            // A 202 (slow model) answers with what was stored before; the work goes on.
            (r) =>
              r && ticket.enriched_at && Date.parse(r.enriched_at) === Date.parse(ticket.enriched_at)
                ? "Still enriching: reload in a moment to see the result."
                : "Enriched again.",
          )
        }
      />
      <h2>History</h2>
      <ol className="plain">
        {ticket.events.map((e) => (
          <li key={e.id}>
            <span className="hint">{when(e.at)}</span> {e.kind} by {e.actor}
            {Object.keys(e.changes || {}).length > 0 && (
              <span className="hint"> — {Object.keys(e.changes).join(", ")}</span>
            )}
          </li>
        ))}
      </ol>
    </>
  );
}
