import { useEffect, useState } from "react";
import { api, when } from "../api.js";

/**
 * Admin token: the instance's workspaces, and a new one with its owner key, shown once,
 * with which a newcomer signs in to the workspace (no curl needed).
 */
export default function Workspaces({ onUseKey }) {
  const [workspaces, setWorkspaces] = useState(null);
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [created, setCreated] = useState(null);
  const [error, setError] = useState(null);
  const load = () => api("/api/admin/workspaces").then(setWorkspaces).catch((e) => setError(e.message));
  useEffect(() => {
    load();
  }, []);
  const create = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      const workspace = await api("/api/admin/workspaces", { method: "POST", body: { slug, name } });
      setCreated(workspace);
      setName("");
      setSlug("");
      load();
    } catch (e) {
      setError(e.message);
    }
  };
  return (
    <>
      <h1 tabIndex={-1}>Workspaces</h1>
      {error && <p role="alert" className="error">{error}</p>}
      {created && (
        <div role="status" className="panel">
          <p>
            Workspace <strong>{created.name}</strong> is ready. Its owner key, shown only now (store it; it signs
            in to the workspace and makes keys for others):
          </p>
          <pre tabIndex={0} aria-label="Owner key">{created.owner_key.secret}</pre>
          <button type="button" onClick={() => onUseKey(created.owner_key.secret)}>Sign in to {created.name} with it</button>
        </div>
      )}
      <form className="filters panel" onSubmit={create} aria-label="New workspace">
        <div className="field">
          <label htmlFor="ws-name">Name</label>
          <input id="ws-name" value={name} onChange={(e) => setName(e.target.value)} required />
        </div>
        <div className="field">
          <label htmlFor="ws-slug">Slug</label>
          <input id="ws-slug" value={slug} pattern="[a-z0-9\-]+" aria-describedby="ws-slug-help"
            onChange={(e) => setSlug(e.target.value)} required />
          <p id="ws-slug-help" className="hint">Lower-case letters, digits and -.</p>
        </div>
        <div className="buttons"><button type="submit">Create workspace</button></div>
      </form>
      {workspaces && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr><th scope="col">Workspace</th><th scope="col">Slug</th><th scope="col">Created</th></tr>
            </thead>
            <tbody>
              {workspaces.map((w) => (
                <tr key={w.id}><td>{w.name}</td><td><code>{w.slug}</code></td><td>{when(w.created_at)}</td></tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
