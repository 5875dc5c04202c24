import { useEffect, useMemo, useState } from "react";
import { api, can } from "../api.js";
import WorkflowGraph from "../graph.jsx";
import SchemaForm from "../schemaform.jsx";
import { navigate } from "../router.jsx";
import { ExecutionsTable } from "./executions.jsx";
import VersionDiff from "./diff.jsx";

/**
 * The server's 422 problems placed where they belong: on nodes (by id, so they stay
 * put while nodes are added), on a node's config fields, on edges, or the rest.
 */
export function placeProblems(problems, definition) {
  const nodes = {};
  const fields = {};
  const edges = {};
  const other = [];
  for (const p of problems) {
    let m = /^nodes\[(\d+)\](?:\.(\w+))?(?:\.([\w-]+))?/.exec(p.path);
    const node = m && definition.nodes[Number(m[1])];
    if (node) {
      (nodes[node.id] ||= []).push(`${m[2] || "node"}: ${p.message}`);
      if (m[2] === "config") {
        const field = m[3] || (/^"([^"]+)" is a required property/.exec(p.message) || [])[1];
        if (field) ((fields[node.id] ||= {})[field] ||= []).push(p.message);
      }
      continue;
    }
    m = /^edges\[(\d+)\]/.exec(p.path);
    if (m) (edges[Number(m[1])] ||= []).push(p.message);
    else other.push(p);
  }
  return { nodes, fields, edges, other };
}

function nextId(definition, type) {
  const base = type.split("/")[1].replace(/[^A-Za-z0-9_]/g, "_");
  for (let i = 1; ; i++) {
    const id = `${base}_${i}`;
    if (!definition.nodes.some((n) => n.id === id)) return id;
  }
}

function Catalog({ catalog, onAdd }) {
  const [query, setQuery] = useState("");
  const q = query.trim().toLowerCase();
  const shown = catalog.filter((t) => !q || t.type.includes(q) || t.description.toLowerCase().includes(q));
  return (
    <section className="panel catalog" aria-labelledby="catalog-title">
      <h2 id="catalog-title">Add a node</h2>
      <label htmlFor="catalog-search">Search node types</label>
      <input id="catalog-search" type="search" value={query} onChange={(e) => setQuery(e.target.value)} />
      <ul className="plain catalog-list">
        {shown.map((t) => (
          <li key={t.type}>
            <button type="button" className="small" onClick={() => onAdd(t)} aria-label={`Add ${t.type}`}>
              Add
            </button>{" "}
            <code>{t.type}</code>
            <span className="hint"> {t.description.split(". ")[0]}</span>
          </li>
        ))}
        {shown.length === 0 && <li className="hint">No node type matches.</li>}
      </ul>
    </section>
  );
}

function NodePanel({ node, type, problems, onChange, onRename, onRemove }) {
  const [id, setId] = useState(node.id);
  useEffect(() => setId(node.id), [node.id]);
  return (
    <section className="panel" aria-labelledby="node-title">
      <h2 id="node-title">Node {node.id}</h2>
      <p><code>{node.type}</code></p>
      {type && <p className="hint">{type.description}</p>}
      <div className="field">
        <label htmlFor="node-id">Node id</label>
        <input id="node-id" value={id} onChange={(e) => setId(e.target.value)} onBlur={() => id !== node.id && onRename(id)} />
      </div>
      {type ? (
        <SchemaForm
          idPrefix={`config-${node.id}`}
          schema={type.config_schema}
          value={node.config}
          problems={problems}
          onChange={(config) => onChange({ ...node, config })}
        />
      ) : (
        <p className="error">Unknown node type: no active plugin provides it.</p>
      )}
      <button type="button" className="danger" onClick={onRemove}>Remove node</button>
    </section>
  );
}

function EdgesPanel({ definition, catalog, problems, onChange }) {
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [branch, setBranch] = useState("");
  const ids = definition.nodes.map((n) => n.id);
  const branchesOf = (id) => {
    const node = definition.nodes.find((n) => n.id === id);
    const type = node && catalog.find((t) => t.type === node.type);
    return type ? type.branches : [];
  };
  const fromBranches = branchesOf(from || ids[0]);
  const add = (event) => {
    event.preventDefault();
    const source = from || ids[0];
    const target = to || ids[0];
    const edge = { from: source, to: target, ...(branch ? { branch } : {}) };
    onChange([...definition.edges, edge]);
    setBranch("");
  };
  return (
    <section className="panel" aria-labelledby="edges-title">
      <h2 id="edges-title">Edges</h2>
      <ul className="plain">
        {definition.edges.map((e, i) => (
          <li key={i}>
            {e.from} → {e.to}
            {e.branch && <span className="hint"> on {e.branch}</span>}{" "}
            <button
              type="button"
              className="small"
              aria-label={`Remove edge ${e.from} to ${e.to}`}
              onClick={() => onChange(definition.edges.filter((_, j) => j !== i))}
            >
              Remove
            </button>
            {problems[i] && <p className="error">{problems[i].join("; ")}</p>}
          </li>
        ))}
        {definition.edges.length === 0 && <li className="hint">No edges yet.</li>}
      </ul>
      {ids.length > 0 && (
        <form className="connect" onSubmit={add}>
          <div className="field">
            <label htmlFor="edge-from">From</label>
            <select id="edge-from" value={from || ids[0]} onChange={(e) => setFrom(e.target.value)}>
              {ids.map((id) => <option key={id}>{id}</option>)}
            </select>
          </div>
          <div className="field">
            <label htmlFor="edge-to">To</label>
            <select id="edge-to" value={to || ids[0]} onChange={(e) => setTo(e.target.value)}>
              {ids.map((id) => <option key={id}>{id}</option>)}
            </select>
          </div>
          {fromBranches.length > 0 && (
            <div className="field">
              <label htmlFor="edge-branch">Branch</label>
              {fromBranches.includes("*") ? (
                <input id="edge-branch" value={branch} onChange={(e) => setBranch(e.target.value)} />
              ) : (
                <select id="edge-branch" value={branch} onChange={(e) => setBranch(e.target.value)}>
                  <option value="">(none)</option>
                  {fromBranches.map((b) => <option key={b}>{b}</option>)}
                </select>
              )}
            </div>
          )}
          <button type="submit">Connect</button>
        </form>
      )}
    </section>
  );
}

function RunForm({ slug }) {
  const [input, setInput] = useState("{}");
  const [error, setError] = useState(null);
  const run = async (event) => {
    event.preventDefault();
    setError(null);
    let value;
    try {
      value = JSON.parse(input);
    } catch {
      setError("The input is not JSON.");
      return;
    }
    try {
      const execution = await api(`/api/workflows/${slug}/executions`, { method: "POST", body: { input: value } });
      navigate(`/executions/${execution.id}`);
    } catch (e) {
      setError(e.message);
    }
  };
  return (
    <form className="panel" onSubmit={run} aria-labelledby="run-title">
      <h2 id="run-title">Run</h2>
      <label htmlFor="run-input">Input (JSON)</label>
      <textarea id="run-input" rows={3} value={input} onChange={(e) => setInput(e.target.value)} />
      {error && <p role="alert" className="error">{error}</p>}
      <button type="submit">Run workflow</button>
    </form>
  );
}

export default function Workflow({ session, slug }) {
  const [workflow, setWorkflow] = useState(null);
  const [versions, setVersions] = useState([]);
  const [version, setVersion] = useState(null);
  const [catalog, setCatalog] = useState([]);
  const [draft, setDraft] = useState(slug ? null : { nodes: [], edges: [] });
  const [name, setName] = useState("");
  const [selected, setSelected] = useState(null);
  const [placed, setPlaced] = useState({ nodes: {}, fields: {}, edges: {}, other: [] });
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const [compare, setCompare] = useState("");
  const mayEdit = can(session, "admin");

  const load = async () => {
    const [w, v] = await Promise.all([api(`/api/workflows/${slug}`), api(`/api/workflows/${slug}/versions`)]);
    setWorkflow(w);
    setVersions(v.versions);
    setVersion(w.latest_version);
  };

  useEffect(() => {
    setError(null);
    api("/api/node-types").then((r) => setCatalog(r.node_types)).catch((e) => setError(e.message));
    if (slug) load().catch((e) => setError(e.message));
  }, [slug]);

  const shown = useMemo(() => {
    if (draft) return draft;
    const v = versions.find((x) => x.version === version);
    return v ? v.definition : null;
  }, [draft, versions, version]);

  const change = (next) => setDraft(next);
  const add = (type) => {
    const id = nextId(draft, type.type);
    const config = {};
    change({ ...draft, nodes: [...draft.nodes, { id, type: type.type, config }] });
    setSelected(id);
  };
  const connect = (from, to) => {
    if (from !== to) change({ ...draft, edges: [...draft.edges, { from, to }] });
  };
  const node = draft && draft.nodes.find((n) => n.id === selected);

  const save = async () => {
    setError(null);
    setNotice(null);
    try {
      if (slug) {
        const w = await api(`/api/workflows/${slug}`, { method: "PATCH", body: { definition: draft } });
        setDraft(null);
        setPlaced({ nodes: {}, fields: {}, edges: {}, other: [] });
        await load();
        setNotice(`Saved as version ${w.latest_version}.`);
      } else {
        const w = await api("/api/workflows", { method: "POST", body: { name, definition: draft } });
        navigate(`/workflows/${w.slug}`);
      }
    } catch (e) {
      if (e.problems && e.problems.length) {
        setPlaced(placeProblems(e.problems, draft));
        setError(`Not saved: ${e.problems.length} problem${e.problems.length > 1 ? "s" : ""} (shown on the nodes).`);
      } else {
        setError(e.message);
      }
    }
  };

  const title = slug ? (workflow ? workflow.name : slug) : "New workflow";
  return (
    <>
      <div className="title-row">
        <h1 tabIndex={-1}>{title}</h1>
        {slug && !draft && mayEdit && shown && (
          <button type="button" onClick={() => setDraft(structuredClone(shown))}>Edit</button>
        )}
      </div>
      {workflow && workflow.description && <p>{workflow.description}</p>}
      {error && <p role="alert" className="error">{error}</p>}
      {notice && <p role="status" className="notice">{notice}</p>}
      {placed.other.length > 0 && (
        <ul className="error">
          {placed.other.map((p, i) => <li key={i}>{p.path || "definition"}: {p.message}</li>)}
        </ul>
      )}
      {slug && !draft && versions.length > 0 && (
        <div className="field inline">
          <label htmlFor="version">Version</label>
          <select id="version" value={version || ""} onChange={(e) => setVersion(Number(e.target.value))}>
            {versions.map((v) => <option key={v.version} value={v.version}>{v.version}</option>)}
          </select>
        </div>
      )}
      {draft && !slug && (
        <div className="field">
          <label htmlFor="wf-name">Name</label>
          <input id="wf-name" value={name} onChange={(e) => setName(e.target.value)} required />
        </div>
      )}
      <div className={draft ? "editor" : ""}>
        {shown && (
          <WorkflowGraph
            definition={shown}
            problems={draft ? placed.nodes : {}}
            selected={selected}
            onSelect={draft ? setSelected : undefined}
            onConnect={draft ? connect : undefined}
            label={draft ? "Workflow graph (editing)" : `Workflow graph, version ${version}`}
          />
        )}
        {draft && (
          <div className="side">
            <div className="buttons">
              <button type="button" onClick={save} disabled={!slug && !name.trim()}>
                {slug ? "Save as new version" : "Create workflow"}
              </button>
              {slug && (
                <button type="button" onClick={() => { setDraft(null); setPlaced({ nodes: {}, fields: {}, edges: {}, other: [] }); }}>
                  Discard changes
                </button>
              )}
            </div>
            {draft.nodes.length > 0 && (
              <div className="field">
                <label htmlFor="select-node">Selected node</label>
                <select id="select-node" value={selected || ""} onChange={(e) => setSelected(e.target.value || null)}>
                  <option value="">(none)</option>
                  {draft.nodes.map((n) => (
                    <option key={n.id} value={n.id}>
                      {n.id}{placed.nodes[n.id] ? " (has problems)" : ""}
                    </option>
                  ))}
                </select>
              </div>
            )}
            {node && (
              <NodePanel
                node={node}
                type={catalog.find((t) => t.type === node.type)}
                problems={placed.fields[node.id] || {}}
                onChange={(n) => change({ ...draft, nodes: draft.nodes.map((x) => (x.id === node.id ? n : x)) })}
                onRename={(id) => {
                  change({
                    ...draft,
                    nodes: draft.nodes.map((x) => (x.id === node.id ? { ...x, id } : x)),
                    edges: draft.edges.map((e) => ({
                      ...e,
                      from: e.from === node.id ? id : e.from,
                      to: e.to === node.id ? id : e.to,
                    })),
                  });
                  setSelected(id);
                }}
                onRemove={() => {
                  change({
                    ...draft,
                    nodes: draft.nodes.filter((x) => x.id !== node.id),
                    edges: draft.edges.filter((e) => e.from !== node.id && e.to !== node.id),
                  });
                  setSelected(null);
                }}
              />
            )}
            <EdgesPanel definition={draft} catalog={catalog} problems={placed.edges} onChange={(edges) => change({ ...draft, edges })} />
            <Catalog catalog={catalog} onAdd={add} />
          </div>
        )}
      </div>
      {slug && !draft && workflow && (
        <>
          {can(session, "member") && <RunForm slug={slug} />}
          {versions.length > 1 && (
            <section className="panel" aria-labelledby="diff-title">
              <h2 id="diff-title">Compare versions</h2>
              <label htmlFor="compare">Compare version {version} with</label>
              <select id="compare" value={compare} onChange={(e) => setCompare(e.target.value)}>
                <option value="">(choose)</option>
                {versions.filter((v) => v.version !== version).map((v) => (
                  <option key={v.version} value={v.version}>{v.version}</option>
                ))}
              </select>
              {compare && (
                <VersionDiff
                  before={versions.find((v) => v.version === Number(compare)).definition}
                  after={shown}
                  beforeLabel={`version ${compare}`}
                  afterLabel={`version ${version}`}
                />
              )}
            </section>
          )}
          <section aria-labelledby="runs-title">
            <h2 id="runs-title">Executions</h2>
            <ExecutionsTable workflow={slug} />
          </section>
        </>
      )}
    </>
  );
}
