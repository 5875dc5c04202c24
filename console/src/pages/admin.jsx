import { useEffect, useState } from "react";
import { api, can, when } from "../api.js";
import { Link } from "../router.jsx";

const rate = (r) => (r == null ? "—" : `${Math.round(r * 100)} %`);
const ms = (v) => (v == null ? "—" : `${Math.round(v)} ms`);

export function Agents() {
  const [agents, setAgents] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api("/api/agents").then((r) => setAgents(r.agents)).catch((e) => setError(e.message));
  }, []);
  return (
    <>
      <h1 tabIndex={-1}>Agents</h1>
      {error && <p role="alert" className="error">{error}</p>}
      {agents && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Agent</th>
                <th scope="col">Role</th>
                <th scope="col">Model</th>
                <th scope="col">Tools</th>
                <th scope="col">Enabled</th>
              </tr>
            </thead>
            <tbody>
              {agents.map((a) => (
                <tr key={a.id}>
                  <td><Link to={`/agents/${a.slug}`}>{a.name}</Link></td>
                  <td>{a.role}</td>
                  <td>{a.model || "server default"}</td>
                  <td>{a.tools.length}</td>
                  <td>{a.enabled ? "yes" : "no"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

/** An agent: its prompt, model and tools (editable by admins), and its health. */
export function Agent({ session, slug }) {
  const [agent, setAgent] = useState(null);
  const [health, setHealth] = useState(null);
  const [draft, setDraft] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const load = async () => {
    const [a, h] = await Promise.all([api(`/api/agents/${slug}`), api(`/api/agents/${slug}/health`)]);
    setAgent(a);
    setHealth(h);
    setDraft({ system_prompt: a.system_prompt, model: a.model || "", enabled: a.enabled, tools: a.tools });
  };
  useEffect(() => {
    load().catch((e) => setError(e.message));
  }, [slug]);
  if (!agent || !draft) {
    return (
      <>
        <h1 tabIndex={-1}>Agent</h1>
        {error ? <p role="alert" className="error">{error}</p> : <p role="status">Loading…</p>}
      </>
    );
  }
  const admin = can(session, "admin");
  const save = async (event) => {
    event.preventDefault();
    setError(null);
    setNotice(null);
    try {
      await api(`/api/agents/${slug}`, {
        method: "PATCH",
        body: { system_prompt: draft.system_prompt, model: draft.model.trim() || null, enabled: draft.enabled, tools: draft.tools },
      });
      await load();
      setNotice("Saved.");
    } catch (e) {
      setError(e.message);
    }
  };
  const status = (t) => agent.tool_status.find((s) => s.plugin === t.plugin && s.tool === t.tool);
  return (
    <>
      <h1 tabIndex={-1}>{agent.name}</h1>
      <p><Link to="/agents">All agents</Link> · <Link to="/chat">Chat</Link></p>
      {health && (
        <section className="panel" aria-labelledby="health-title">
          <h2 id="health-title">Health, last {health.window_hours} hours</h2>
          <dl className="facts">
            <dt>Turns</dt>
            <dd>
              {health.turns.requests} ({health.turns.completed} completed, {health.turns.failed} failed,{" "}
              {health.turns.cancelled} cancelled, {health.turns.awaiting_approval} awaiting approval)
            </dd>
            <dt>Success rate</dt><dd>{rate(health.turns.success_rate)}</dd>
            <dt>p95 turn</dt><dd>{ms(health.turns.p95_ms)}</dd>
            <dt>Tool calls</dt><dd>{health.tools.calls} ({rate(health.tools.success_rate)} ok, p95 {ms(health.tools.p95_ms)})</dd>
          </dl>
        </section>
      )}
      {notice && <p role="status" className="notice">{notice}</p>}
      {error && <p role="alert" className="error">{error}</p>}
      <form onSubmit={save}>
        <div className="field">
          <label htmlFor="prompt">System prompt</label>
          <textarea id="prompt" rows={6} value={draft.system_prompt} readOnly={!admin}
            onChange={(e) => setDraft({ ...draft, system_prompt: e.target.value })} />
        </div>
        <div className="field">
          <label htmlFor="model">Model</label>
          <input id="model" value={draft.model} readOnly={!admin} placeholder="the server's default"
            onChange={(e) => setDraft({ ...draft, model: e.target.value })} />
        </div>
        <div className="field check">
          <input id="enabled" type="checkbox" checked={draft.enabled} disabled={!admin}
            onChange={(e) => setDraft({ ...draft, enabled: e.target.checked })} />
          <label htmlFor="enabled">Enabled</label>
        </div>
        <h2>Tools</h2>
        {draft.tools.length === 0 && <p className="hint">No tools.</p>}
        <ul className="plain">
          {draft.tools.map((t, i) => {
            const s = status(t);
            const id = `approval-${t.plugin}-${t.tool}`;
            return (
              <li key={`${t.plugin}/${t.tool}`} className="field check">
                <input id={id} type="checkbox" checked={Boolean(t.requires_approval)} disabled={!admin}
                  onChange={(e) => setDraft({
                    ...draft,
                    tools: draft.tools.map((x, j) => (j === i ? { ...x, requires_approval: e.target.checked } : x)),
                  })} />
                <label htmlFor={id}>
                  <code>{t.plugin}/{t.tool}</code> needs approval
                  {s && !s.available && <span className="error"> — unavailable: {s.problem}</span>}
                </label>
              </li>
            );
          })}
        </ul>
        {admin && <button type="submit">Save agent</button>}
      </form>
    </>
  );
}

/** A bar chart in SVG: one bar per group, labelled, with the value as text. */
function Bars({ title, rows, value, format }) {
  const max = Math.max(1, ...rows.map(value));
  const height = 22;
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <svg role="img" aria-label={`${title}: ${rows.map((r) => `${r.key} ${format(value(r), r)}`).join(", ")}`}
        viewBox={`0 0 400 ${rows.length * height + 4}`} width="100%" preserveAspectRatio="xMinYMin meet">
        {rows.map((r, i) => {
          const w = Math.max(1, (value(r) / max) * 220);
          return (
            <g key={r.key} transform={`translate(0 ${i * height + 2})`}>
              <text x="0" y="15" fontSize="12" fill="#1b1f24">{r.key.slice(0, 16)}</text>
              <rect x="110" y="3" width={w} height="15" fill="#0b57d0" />
              <text x={116 + w} y="15" fontSize="12" fill="#1b1f24">{format(value(r), r)}</text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

export function Usage() {
  const [days, setDays] = useState(null);
  const [agents, setAgents] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    Promise.all([api("/api/usage?group_by=day"), api("/api/usage?group_by=agent")])
      .then(([d, a]) => {
        setDays(d);
        setAgents(a);
      })
      .catch((e) => setError(e.message));
  }, []);
  const tokens = (r) => r.total_tokens;
  const cost = (r) => r.cost_usd || 0;
  const count = (n) => n.toLocaleString();
  const usd = (n, row) => (row.cost_usd == null ? "unpriced" : `$${n.toFixed(4)}`);
  return (
    <>
      <h1 tabIndex={-1}>Usage</h1>
      {error && <p role="alert" className="error">{error}</p>}
      {days && <p className="hint">From {when(days.from)} to {when(days.to)}.</p>}
      {days && days.groups.length === 0 && <p>No model calls in this period.</p>}
      {days && days.groups.length > 0 && (
        <div className="charts">
          <Bars title="Tokens per day" rows={days.groups} value={tokens} format={count} />
          <Bars title="Cost per day (USD)" rows={days.groups} value={cost} format={usd} />
          {agents && <Bars title="Tokens per agent" rows={agents.groups} value={tokens} format={count} />}
          {agents && <Bars title="Cost per agent (USD)" rows={agents.groups} value={cost} format={usd} />}
        </div>
      )}
      {agents && agents.groups.some((g) => g.unpriced_calls > 0) && (
        <p className="hint">Some calls used models without a price (`--llm-prices`), so their cost is not counted.</p>
      )}
      {agents && agents.tool_calls.length > 0 && (
        <>
          <h2>Tool calls per agent</h2>
          <div className="table-wrap">
            <table>
              <thead>
                <tr><th scope="col">Agent</th><th scope="col">Calls</th><th scope="col">OK</th><th scope="col">Mean</th></tr>
              </thead>
              <tbody>
                {agents.tool_calls.map((t) => (
                  <tr key={t.agent || "-"}>
                    <td>{t.agent || "—"}</td><td>{t.tool_calls}</td><td>{t.ok}</td><td>{ms(t.mean_ms)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </>
  );
}

const ROLES = ["viewer", "member", "admin", "owner"];

export function Keys({ session }) {
  const [keys, setKeys] = useState(null);
  const [name, setName] = useState("");
  const [role, setRole] = useState("member");
  const [secret, setSecret] = useState(null);
  const [error, setError] = useState(null);
  const load = () => api("/api/keys").then(setKeys).catch((e) => setError(e.message));
  useEffect(() => {
    load();
  }, []);
  const create = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      const created = await api("/api/keys", { method: "POST", body: { name, role } });
      setSecret({ name, value: created.secret });
      setName("");
      load();
    } catch (e) {
      setError(e.message);
    }
  };
  const revoke = async (key) => {
    setError(null);
    try {
      await api(`/api/keys/${key.id}`, { method: "DELETE" });
      load();
    } catch (e) {
      setError(e.message);
    }
  };
  const mine = ROLES.indexOf(session.role);
  return (
    <>
      <h1 tabIndex={-1}>API keys</h1>
      {error && <p role="alert" className="error">{error}</p>}
      {secret && (
        <div role="status" className="panel">
          <p>The secret of <strong>{secret.name}</strong>, shown only now:</p>
          <pre tabIndex={0} aria-label="New key's secret">{secret.value}</pre>
        </div>
      )}
      <form className="filters panel" onSubmit={create} aria-label="New key">
        <div className="field">
          <label htmlFor="key-name">Name</label>
          <input id="key-name" value={name} onChange={(e) => setName(e.target.value)} required />
        </div>
        <div className="field">
          <label htmlFor="key-role">Role</label>
          <select id="key-role" value={role} onChange={(e) => setRole(e.target.value)}>
            {ROLES.filter((r, i) => i <= mine).map((r) => <option key={r}>{r}</option>)}
          </select>
        </div>
        <div className="buttons"><button type="submit">Create key</button></div>
      </form>
      {keys && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th><th scope="col">Role</th><th scope="col">Prefix</th>
                <th scope="col">Last used</th><th scope="col">Revoked</th>
                <th scope="col"><span className="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k.id}>
                  <td>{k.name}</td><td>{k.role}</td><td><code>{k.prefix}</code></td>
                  <td>{when(k.last_used_at)}</td><td>{k.revoked_at ? when(k.revoked_at) : "—"}</td>
                  <td>
                    {!k.revoked_at && ROLES.indexOf(k.role) <= mine && (
                      <button type="button" className="small danger" aria-label={`Revoke ${k.name}`} onClick={() => revoke(k)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
