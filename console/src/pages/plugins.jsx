import { useEffect, useState } from "react";
import { api, when } from "../api.js";
import { Link } from "../router.jsx";

function Upload({ onDone }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    const form = new FormData();
    // The server reads the manifest part as JSON text and the component as bytes.
    form.append("manifest", await data.get("manifest").text());
    form.append("component", data.get("component"));
    const activate = data.get("activate") === "on";
    setBusy(true);
    setError(null);
    try {
      const version = await api(`/api/admin/plugins?activate=${activate}`, { method: "POST", form });
      event.target.reset();
      onDone(version);
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="panel" onSubmit={submit} aria-labelledby="upload-title">
      <h2 id="upload-title">Upload a version</h2>
      <div className="field">
        <label htmlFor="manifest">Manifest (JSON)</label>
        <input id="manifest" name="manifest" type="file" accept=".json,application/json" required />
      </div>
      <div className="field">
        <label htmlFor="component">Component (.wasm)</label>
        <input id="component" name="component" type="file" accept=".wasm,application/wasm" required />
      </div>
      <div className="field check">
        <input id="activate" name="activate" type="checkbox" />
        <label htmlFor="activate">Activate it</label>
      </div>
      {error && <p role="alert" className="error">{error}</p>}
      <button type="submit" disabled={busy}>Upload</button>
    </form>
  );
}

/** A version's grants as JSON (what the manifest asked for is only a request). */
function Grants({ name, version, onSaved }) {
  const [text, setText] = useState(JSON.stringify(version.grants || {}, null, 2));
  const [error, setError] = useState(null);
  const save = async (event) => {
    event.preventDefault();
    setError(null);
    let grants;
    try {
      grants = JSON.parse(text);
    } catch {
      setError("The grants are not JSON.");
      return;
    }
    try {
      await api(`/api/admin/plugins/${encodeURIComponent(name)}/versions/${encodeURIComponent(version.version)}/grants`, {
        method: "PUT",
        body: grants,
      });
      onSaved(`Grants of ${version.version} saved.`);
    } catch (e) {
      setError(e.message);
    }
  };
  const id = `grants-${version.version}`;
  return (
    <form onSubmit={save}>
      <label htmlFor={id}>Grants of {version.version} (JSON)</label>
      <textarea id={id} rows={4} value={text} onChange={(e) => setText(e.target.value)} />
      {error && <p role="alert" className="error">{error}</p>}
      <button type="submit" className="small">Save grants</button>
    </form>
  );
}

function PluginDetail({ name }) {
  const [plugin, setPlugin] = useState(null);
  const [logs, setLogs] = useState([]);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const load = () =>
    api(`/api/admin/plugins/${encodeURIComponent(name)}`)
      .then(setPlugin)
      .catch((e) => setError(e.message));
  useEffect(() => {
    load();
    api(`/api/admin/plugins/${encodeURIComponent(name)}/logs?limit=20`)
      .then((r) => setLogs(r.lines || []))
      .catch(() => setLogs([]));
  }, [name]);
  const act = async (path, words) => {
    setError(null);
    setNotice(null);
    try {
      await api(`/api/admin/plugins/${encodeURIComponent(name)}/${path}`, { method: "POST" });
      await load();
      setNotice(words);
    } catch (e) {
      setError(e.message);
    }
  };
  if (!plugin) return error ? <p role="alert" className="error">{error}</p> : <p role="status">Loading…</p>;
  return (
    <>
      <h1 tabIndex={-1}>Plugin {plugin.name}</h1>
      <p><Link to="/plugins">All plugins</Link></p>
      <dl className="facts">
        <dt>Kind</dt><dd>{plugin.kind}</dd>
        <dt>Active version</dt><dd data-testid="active-version">{plugin.active_version || "none"}</dd>
        <dt>Previous version</dt><dd>{plugin.previous_version || "none"}</dd>
        <dt>Enabled</dt><dd>{plugin.enabled ? "yes" : "no"}</dd>
      </dl>
      {notice && <p role="status" className="notice">{notice}</p>}
      {error && <p role="alert" className="error">{error}</p>}
      <div className="buttons">
        {plugin.previous_version && (
          <button type="button" onClick={() => act("rollback", `Rolled back to ${plugin.previous_version}.`)}>
            Roll back to {plugin.previous_version}
          </button>
        )}
        {plugin.enabled ? (
          <button type="button" className="danger" onClick={() => act("disable", "Disabled.")}>Disable</button>
        ) : (
          <button type="button" onClick={() => act("enable", "Enabled.")}>Enable</button>
        )}
      </div>
      <h2>Versions</h2>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Size</th>
              <th scope="col">Tools and nodes</th>
              <th scope="col">Grants asked</th>
              <th scope="col"><span className="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {plugin.versions.map((v) => (
              <tr key={v.version}>
                <td>{v.version}{v.version === plugin.active_version && " (active)"}</td>
                <td>{Math.round(v.size_bytes / 1024)} KiB</td>
                <td>{[...(v.tools || []).map((t) => t.name), ...(v.nodes || []).map((n) => n.node_type)].join(", ") || "—"}</td>
                <td><code>{JSON.stringify(v.manifest.capabilities || {})}</code></td>
                <td>
                  {v.version !== plugin.active_version && (
                    <button
                      type="button"
                      className="small"
                      aria-label={`Activate ${v.version}`}
                      onClick={() => act(`versions/${encodeURIComponent(v.version)}/activate`, `Activated ${v.version}.`)}
                    >
                      Activate
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Grants</h2>
      {plugin.versions.map((v) => (
        <Grants key={v.version} name={name} version={v} onSaved={(words) => { load(); setNotice(words); }} />
      ))}
      <h2>Recent logs</h2>
      {logs.length === 0 ? (
        <p className="hint">No log lines.</p>
      ) : (
        <pre className="json" tabIndex={0} aria-label="Plugin logs">
          {logs.map((l) => `${l.logged_at} ${l.level} ${l.version} ${l.message}`).join("\n")}
        </pre>
      )}
    </>
  );
}

/** Admin token: the plugins, their versions, upload, activate, roll back. */
export default function Plugins({ name }) {
  const [plugins, setPlugins] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const load = () => api("/api/admin/plugins").then(setPlugins).catch((e) => setError(e.message));
  useEffect(() => {
    if (!name) load();
  }, [name]);
  if (name) return <PluginDetail name={name} />;
  return (
    <>
      <h1 tabIndex={-1}>Plugins</h1>
      {notice && <p role="status" className="notice">{notice}</p>}
      {error && <p role="alert" className="error">{error}</p>}
      {plugins && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Plugin</th>
                <th scope="col">Kind</th>
                <th scope="col">Active</th>
                <th scope="col">Previous</th>
                <th scope="col">Enabled</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {plugins.map((p) => (
                <tr key={p.name}>
                  <td><Link to={`/plugins/${p.name}`}>{p.name}</Link></td>
                  <td>{p.kind}</td>
                  <td>{p.active_version || "—"}</td>
                  <td>{p.previous_version || "—"}</td>
                  <td>{p.enabled ? "yes" : "no"}</td>
                  <td>{when(p.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Upload
        onDone={(v) => {
          setNotice(`Uploaded ${v.plugin} ${v.version}.`);
          load();
        }}
      />
    </>
  );
}
