import { Suspense, lazy, useEffect, useRef, useState } from "react";
import { api, can, duration, readEvents, when } from "../api.js";
import { Link, navigate } from "../router.jsx";

const WorkflowGraph = lazy(() => import("../graph.jsx"));

const STATUSES = ["running", "waiting", "succeeded", "failed", "cancelled"];

/** A datetime-local field's value as a time, or null. */
function local(value) {
  return value ? new Date(value) : null;
}

/** Executions, newest first, with status and start-time filters (n8n's, Temporal's). */
export function ExecutionsTable({ workflow }) {
  const [rows, setRows] = useState(null);
  const [names, setNames] = useState({});
  const [status, setStatus] = useState("");
  const [after, setAfter] = useState("");
  const [before, setBefore] = useState("");
  const [error, setError] = useState(null);

  useEffect(() => {
    const query = new URLSearchParams({ limit: "500" });
    if (workflow) query.set("workflow", workflow);
    if (status) query.set("status", status);
    api(`/api/executions?${query}`)
      .then((r) => setRows(r.executions))
      .catch((e) => setError(e.message));
  }, [workflow, status]);

  useEffect(() => {
    api("/api/workflows")
      .then((r) => setNames(Object.fromEntries(r.workflows.map((w) => [w.id, w]))))
      .catch(() => {});
  }, []);

  const from = local(after);
  const to = local(before);
  const shown = (rows || []).filter((r) => {
    const at = new Date(r.created_at);
    return (!from || at >= from) && (!to || at <= to);
  });
  const prefix = workflow ? `runs-${workflow}` : "runs";
  return (
    <>
      <form className="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter executions">
        <div className="field">
          <label htmlFor={`${prefix}-status`}>Status</label>
          <select id={`${prefix}-status`} value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">any</option>
            {STATUSES.map((s) => <option key={s}>{s}</option>)}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${prefix}-after`}>Started after</label>
          <input id={`${prefix}-after`} type="datetime-local" value={after} onChange={(e) => setAfter(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${prefix}-before`}>Started before</label>
          <input id={`${prefix}-before`} type="datetime-local" value={before} onChange={(e) => setBefore(e.target.value)} />
        </div>
      </form>
      {error && <p role="alert" className="error">{error}</p>}
      {rows === null && !error && <p role="status">Loading…</p>}
      {rows && shown.length === 0 && <p>No executions match.</p>}
      {shown.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Execution</th>
                {!workflow && <th scope="col">Workflow</th>}
                <th scope="col">Version</th>
                <th scope="col">Status</th>
                <th scope="col">Started</th>
                <th scope="col">Duration</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr key={r.id}>
                  <td><Link to={`/executions/${r.id}`}><code>{r.id.slice(0, 8)}</code></Link></td>
                  {!workflow && <td>{names[r.workflow_id] ? names[r.workflow_id].name : r.workflow_id.slice(0, 8)}</td>}
                  <td>{r.version}</td>
                  <td><span className={`badge ${r.status}`}>{r.status}</span></td>
                  <td>{when(r.created_at)}</td>
                  <td>{duration(r.created_at, r.finished_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

export function Executions() {
  return (
    <>
      <h1 tabIndex={-1}>Executions</h1>
      <ExecutionsTable />
    </>
  );
}

function Data({ label, value }) {
  if (value === null || value === undefined) return null;
  return (
    <details>
      <summary>{label}</summary>
      <pre className="json" tabIndex={0} aria-label={label}>
        {JSON.stringify(value, null, 2)}
      </pre>
    </details>
  );
}

/** One execution: its graph coloured by node status, and the timeline of node runs,
 *  kept current from its event stream while it runs. */
export function Execution({ session, id }) {
  const [execution, setExecution] = useState(null);
  const [definition, setDefinition] = useState(null);
  const [error, setError] = useState(null);
  const [live, setLive] = useState(false);
  const refresh = useRef(null);

  const load = () =>
    api(`/api/executions/${id}`)
      .then((e) => {
        setExecution(e);
        return e;
      })
      .catch((e) => setError(e.message));

  useEffect(() => {
    const abort = new AbortController();
    setExecution(null);
    setDefinition(null);
    setError(null);
    (async () => {
      const e = await load();
      if (!e) return;
      api(`/api/workflows/${e.workflow_id}/versions/${e.version}`)
        .then((v) => setDefinition(v.definition))
        .catch(() => {});
      if (e.status !== "running" && e.status !== "waiting") return;
      // Each event says something changed; the detail says what, so read it again
      // (at most one read in flight).
      try {
        const response = await api(`/api/executions/${id}/events`, { accept: "text/event-stream", signal: abort.signal });
        setLive(true);
        await readEvents(response, () => {
          clearTimeout(refresh.current);
          refresh.current = setTimeout(load, 50);
        });
      } catch (err) {
        if (err.name !== "AbortError") setError(err.message);
      } finally {
        setLive(false);
        if (!abort.signal.aborted) load();
      }
    })();
    return () => {
      abort.abort();
      clearTimeout(refresh.current);
    };
  }, [id]);

  const act = async (what) => {
    setError(null);
    try {
      const result = await api(`/api/executions/${id}/${what}`, { method: "POST" });
      if (what === "retry") navigate(`/executions/${result.id}`);
      else load();
    } catch (e) {
      setError(e.message);
    }
  };

  if (!execution) {
    return (
      <>
        <h1 tabIndex={-1}>Execution</h1>
        {error ? <p role="alert" className="error">{error}</p> : <p role="status">Loading…</p>}
      </>
    );
  }
  const statuses = {};
  for (const run of execution.nodes) statuses[run.node_id] = run.status;
  const member = can(session, "member");
  return (
    <>
      <h1 tabIndex={-1}>Execution <code>{id.slice(0, 8)}</code></h1>
      <dl className="facts">
        <dt>Status</dt>
        <dd><span className={`badge ${execution.status}`}>{execution.status}</span>{live && <span className="hint"> (live)</span>}</dd>
        <dt>Workflow</dt>
        <dd><Link to={`/workflows/${execution.workflow_id}`}>version {execution.version}</Link></dd>
        <dt>Started</dt>
        <dd>{when(execution.created_at)}</dd>
        <dt>Duration</dt>
        <dd>{duration(execution.created_at, execution.finished_at)}</dd>
        {execution.retry_of && (
          <>
            <dt>Retry of</dt>
            <dd><Link to={`/executions/${execution.retry_of}`}>{execution.retry_of.slice(0, 8)}</Link></dd>
          </>
        )}
      </dl>
      {error && <p role="alert" className="error">{error}</p>}
      {execution.error && <p className="error">Error: {JSON.stringify(execution.error)}</p>}
      <div className="buttons">
        {member && (execution.status === "running" || execution.status === "waiting") && (
          <button type="button" className="danger" onClick={() => act("cancel")}>Cancel execution</button>
        )}
        {member && (execution.status === "failed" || execution.status === "cancelled") && (
          <button type="button" onClick={() => act("retry")}>Retry execution</button>
        )}
      </div>
      <Data label="Input" value={execution.input} />
      <Data label="Output" value={execution.output} />
      {definition && (
        <Suspense fallback={<p role="status">Loading graph…</p>}>
          <WorkflowGraph definition={definition} statuses={statuses} label="Execution graph" />
        </Suspense>
      )}
      <h2>Timeline</h2>
      <ol className="timeline">
        {execution.nodes.map((run) => (
          <li key={`${run.node_id}-${run.attempt}`} className={run.status}>
            <p>
              <strong>{run.node_id}</strong> <code>{run.plugin}</code> attempt {run.attempt} —{" "}
              <span className={`badge ${run.status}`}>{run.status}</span>{" "}
              <span className="hint">
                {when(run.started_at)} · {duration(run.started_at, run.finished_at)}
                {run.reused_from && " · reused from the earlier execution"}
              </span>
            </p>
            {run.error && <p className="error">{run.error_kind}: {typeof run.error === "string" ? run.error : JSON.stringify(run.error)}</p>}
            {run.wait && run.wait.kind === "approval" && (
              <p>Waiting for an approval: <Link to="/approvals">open the approvals inbox</Link></p>
            )}
            <Data label={`Input of ${run.node_id}`} value={run.input} />
            <Data label={`Output of ${run.node_id}`} value={run.output} />
          </li>
        ))}
      </ol>
    </>
  );
}
