import { Fragment, useEffect, useRef, useState } from "react";
import { api, can, loadSession, readEvents, when } from "../api.js";
import { Link } from "../router.jsx";

/** A schedule's spec in words. */
function spec(s) {
  if (s.cron) return `cron ${s.cron} (${s.timezone || "UTC"})`;
  if (s.every) return `every ${s.every}`;
  if (s.at) return `once at ${when(s.at)}`;
  return JSON.stringify(s);
}

function RunsTable({ runs, caption }) {
  if (!runs) return <p role="status">Loading…</p>;
  if (runs.length === 0) return <p className="hint">No runs yet.</p>;
  return (
    <div className="table-wrap">
      <table>
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Kind</th>
            <th scope="col">Outcome</th>
            <th scope="col">Execution</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((r, i) => (
            <tr key={i}>
              <td>{when(r.at)}</td>
              <td>{r.kind || r.event_type}</td>
              <td>
                {r.outcome}
                {r.note && <span className="hint"> — {r.note}</span>}
              </td>
              <td>
                {r.execution_id ? (
                  <Link to={`/executions/${r.execution_id}`}>
                    <span className={`badge ${r.status}`}>{r.status || "open"}</span>
                  </Link>
                ) : (
                  "—"
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Schedules: workflows' schedule triggers and scheduled tasks. */
export function Schedules({ session }) {
  const [schedules, setSchedules] = useState(null);
  const [open, setOpen] = useState(null);
  const [runs, setRuns] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const load = () => api("/api/schedules").then((r) => setSchedules(r.schedules)).catch((e) => setError(e.message));
  useEffect(() => {
    load();
  }, []);
  const history = (id) => {
    if (open === id) return setOpen(null);
    setOpen(id);
    setRuns(null);
    api(`/api/schedules/${id}/runs`).then((r) => setRuns(r.runs)).catch((e) => setError(e.message));
  };
  const act = async (s, what, words) => {
    setError(null);
    try {
      await api(`/api/schedules/${s.id}/${what}`, { method: "POST" });
      await load();
      setNotice(`${s.name}: ${words}.`);
      if (open === s.id) api(`/api/schedules/${s.id}/runs`).then((r) => setRuns(r.runs));
    } catch (e) {
      setError(e.message);
    }
  };
  const member = can(session, "member");
  return (
    <>
      <h1 tabIndex={-1}>Schedules</h1>
      <p className="hint">Times are in your time zone, {zone}.</p>
      {notice && <p role="status" className="notice">{notice}</p>}
      {error && <p role="alert" className="error">{error}</p>}
      {schedules && schedules.length === 0 && (
        <p>No schedules. A workflow gets one with a schedule trigger; tasks are made with the API or CLI.</p>
      )}
      {schedules && schedules.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Schedule</th>
                <th scope="col">When</th>
                <th scope="col">Status</th>
                <th scope="col">Next run</th>
                <th scope="col">Last run</th>
                <th scope="col">Runs (ok / failed / skipped / missed)</th>
                <th scope="col"><span className="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {schedules.map((s) => (
                <Fragment key={s.id}>
                  <tr>
                    <td>
                      {s.name}
                      {s.workflow && (
                        <span className="hint"> (workflow <Link to={`/workflows/${s.workflow}`}>{s.workflow}</Link>)</span>
                      )}
                    </td>
                    <td>{spec(s.schedule)}</td>
                    <td><span className={`badge ${s.status}`}>{s.status}</span></td>
                    <td>{when(s.next_run_at)}</td>
                    <td>
                      {when(s.last_run_at)}
                      {s.last_status && <span className={`badge ${s.last_status}`}> {s.last_status}</span>}
                    </td>
                    <td>{s.runs} ({s.successes} / {s.failures} / {s.skipped} / {s.missed})</td>
                    <td className="actions">
                      {member && s.status === "active" && (
                        <button type="button" className="small" onClick={() => act(s, "pause", "paused")} aria-label={`Pause ${s.name}`}>Pause</button>
                      )}
                      {member && s.status === "paused" && (
                        <button type="button" className="small" onClick={() => act(s, "resume", "resumed")} aria-label={`Resume ${s.name}`}>Resume</button>
                      )}
                      {member && (
                        <button type="button" className="small" onClick={() => act(s, "run", "started now")} aria-label={`Run now: ${s.name}`}>Run now</button>
                      )}
                      <button type="button" className="small" aria-expanded={open === s.id} onClick={() => history(s.id)} aria-label={`History of ${s.name}`}>
                        History
                      </button>
                    </td>
                  </tr>
                  {open === s.id && (
                    <tr>
                      <td colSpan={7}>
                        <RunsTable runs={runs} caption={`Runs of ${s.name}`} />
                      </td>
                    </tr>
                  )}
                </Fragment>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

/** Rules: highest priority first, with what each did. */
export function Rules({ session }) {
  const [rules, setRules] = useState(null);
  const [open, setOpen] = useState(null);
  const [runs, setRuns] = useState(null);
  const [error, setError] = useState(null);
  const load = () => api("/api/rules").then((r) => setRules(r.rules)).catch((e) => setError(e.message));
  useEffect(() => {
    load();
  }, []);
  const history = (id) => {
    if (open === id) return setOpen(null);
    setOpen(id);
    setRuns(null);
    api(`/api/rules/${id}/runs`).then((r) => setRuns(r.runs)).catch((e) => setError(e.message));
  };
  const act = async (rule, what) => {
    setError(null);
    try {
      await api(`/api/rules/${rule.id}/${what}`, { method: "POST" });
      await load();
    } catch (e) {
      setError(e.message);
    }
  };
  const member = can(session, "member");
  return (
    <>
      <h1 tabIndex={-1}>Rules</h1>
      {error && <p role="alert" className="error">{error}</p>}
      {rules && rules.length === 0 && <p>No rules. Rules are made with the API or the CLI (docs/automation.md).</p>}
      {rules && rules.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Rule</th>
                <th scope="col">On</th>
                <th scope="col">Priority</th>
                <th scope="col">Active</th>
                <th scope="col">Matched / ran / ok / failed</th>
                <th scope="col">Skipped (cooldown / limit)</th>
                <th scope="col">Last matched</th>
                <th scope="col"><span className="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {rules.map((r) => (
                <Fragment key={r.id}>
                  <tr>
                    <td>{r.name}</td>
                    <td><code>{r.trigger.event}</code></td>
                    <td>{r.priority}</td>
                    <td>{r.active ? "yes" : "paused"}</td>
                    <td>{r.matched} / {r.ran} / {r.succeeded} / {r.failed}</td>
                    <td>{r.skipped_cooldown} / {r.skipped_limit}</td>
                    <td>{when(r.last_matched_at)}</td>
                    <td className="actions">
                      {member && (
                        <button type="button" className="small" onClick={() => act(r, r.active ? "pause" : "resume")} aria-label={`${r.active ? "Pause" : "Resume"} ${r.name}`}>
                          {r.active ? "Pause" : "Resume"}
                        </button>
                      )}
                      <button type="button" className="small" aria-expanded={open === r.id} onClick={() => history(r.id)} aria-label={`History of ${r.name}`}>
                        History
                      </button>
                    </td>
                  </tr>
                  {open === r.id && (
                    <tr>
                      <td colSpan={8}>
                        <RunsTable runs={runs} caption={`Runs of ${r.name}`} />
                      </td>
                    </tr>
                  )}
                </Fragment>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

const KEEP = 200;

/** The workspace's activity feed, live from the event stream. */
export function Activity() {
  const [events, setEvents] = useState([]);
  const [type, setType] = useState("");
  const [applied, setApplied] = useState("");
  const [state, setState] = useState("connecting");
  const [paused, setPaused] = useState(false);
  const pausedRef = useRef(false);
  pausedRef.current = paused;

  useEffect(() => {
    const abort = new AbortController();
    let last = null;
    setEvents([]);
    (async () => {
      // The feed doesn't end; a dropped connection resumes after the last event seen.
      while (!abort.signal.aborted) {
        try {
          const query = applied ? `?${new URLSearchParams({ type: applied })}` : "";
          const session = loadSession();
          const response = await fetch(`/api/events/stream${query}`, {
            headers: {
              Authorization: `Bearer ${session.token}`,
              accept: "text/event-stream",
              ...(last ? { "Last-Event-ID": last } : {}),
            },
            signal: abort.signal,
          });
          if (!response.ok) {
            const body = await response.json().catch(() => null);
            setState(`error: ${(body && body.error && body.error.message) || response.status}`);
            return;
          }
          setState("live");
          await readEvents(response, ({ data, id }) => {
            last = id;
            if (typeof data !== "object" || pausedRef.current) return;
            setEvents((list) => [data, ...list].slice(0, KEEP));
          });
        } catch (e) {
          if (abort.signal.aborted) return;
          setState("reconnecting");
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
    })();
    return () => abort.abort();
  }, [applied]);

  return (
    <>
      <h1 tabIndex={-1}>Activity</h1>
      <form className="filters" onSubmit={(e) => { e.preventDefault(); setApplied(type.trim()); }}>
        <div className="field">
          <label htmlFor="event-type">Event type or prefix</label>
          <input id="event-type" value={type} placeholder="workflow, ticket.created, approval" onChange={(e) => setType(e.target.value)} />
        </div>
        <div className="buttons">
          <button type="submit">Filter</button>
          <button type="button" aria-pressed={paused} onClick={() => setPaused(!paused)}>
            {paused ? "Resume updates" : "Pause updates"}
          </button>
        </div>
      </form>
      <p role="status" className="hint">Feed: {paused ? "paused" : state}. Newest first, the last {KEEP}.</p>
      <ol className="plain feed" aria-label="Events">
        {events.map((e) => (
          <li key={e.id}>
            <span className="hint">{when(e.at)}</span> <code>{e.type}</code> {e.subject && <span>about {e.subject}</span>}{" "}
            <span className="hint">by {e.actor}</span>
            <details>
              <summary>Payload</summary>
              <pre className="json" tabIndex={0} aria-label={`Payload of ${e.type}`}>{JSON.stringify(e.payload, null, 2)}</pre>
            </details>
          </li>
        ))}
        {events.length === 0 && <li className="hint">No events yet.</li>}
      </ol>
    </>
  );
}
