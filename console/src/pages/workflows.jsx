import { useEffect, useState } from "react";
import { api, can, when } from "../api.js";
import { Link } from "../router.jsx";

export default function Workflows({ session }) {
  const [workflows, setWorkflows] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    api("/api/workflows")
      .then((r) => setWorkflows(r.workflows))
      .catch((e) => setError(e.message));
  }, []);

  return (
    <>
      <div className="title-row">
        <h1 tabIndex={-1}>Workflows</h1>
        {can(session, "admin") && (
          <Link className="button" to="/workflows/new">New workflow</Link>
        )}
      </div>
      {error && <p role="alert" className="error">{error}</p>}
      {workflows === null && !error && <p role="status">Loading…</p>}
      {workflows && workflows.length === 0 && <p>No workflows yet.</p>}
      {workflows && workflows.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Slug</th>
                <th scope="col">Version</th>
                <th scope="col">Enabled</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {workflows.map((w) => (
                <tr key={w.id}>
                  <td><Link to={`/workflows/${w.slug}`}>{w.name}</Link></td>
                  <td><code>{w.slug}</code></td>
                  <td>{w.latest_version}</td>
                  <td>{w.enabled ? "yes" : "no"}</td>
                  <td>{when(w.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
