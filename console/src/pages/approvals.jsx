import { useEffect, useState } from "react";
import { api, when } from "../api.js";
import { Link } from "../router.jsx";

const STATUSES = ["pending", "approved", "rejected", "timed_out", "cancelled"];

function Decide({ approval, onDone }) {
  const [comment, setComment] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const decide = async (decision) => {
    setBusy(true);
    setError(null);
    try {
      await api(`/api/approvals/${approval.id}`, {
        method: "POST",
        body: { decision, ...(comment.trim() ? { comment: comment.trim() } : {}) },
      });
      onDone(decision);
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };
  const field = `comment-${approval.id}`;
  return (
    <div className="decide">
      <label htmlFor={field}>Comment (optional)</label>
      <input id={field} value={comment} onChange={(e) => setComment(e.target.value)} />
      {error && <p role="alert" className="error">{error}</p>}
      <div className="buttons">
        <button type="button" disabled={busy} onClick={() => decide("approve")}>Approve</button>
        <button type="button" className="danger" disabled={busy} onClick={() => decide("reject")}>Reject</button>
      </div>
    </div>
  );
}

/** The approvals inbox: workflow approval nodes waiting for people. */
export default function Approvals() {
  const [status, setStatus] = useState("pending");
  const [approvals, setApprovals] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);

  const load = () =>
    api(`/api/approvals?${new URLSearchParams(status ? { status } : {})}`)
      .then((r) => setApprovals(r.approvals))
      .catch((e) => setError(e.message));

  useEffect(() => {
    setApprovals(null);
    load();
  }, [status]);

  return (
    <>
      <h1 tabIndex={-1}>Approvals</h1>
      <div className="field inline">
        <label htmlFor="approval-status">Show</label>
        <select id="approval-status" value={status} onChange={(e) => setStatus(e.target.value)}>
          <option value="">all</option>
          {STATUSES.map((s) => <option key={s}>{s}</option>)}
        </select>
      </div>
      {notice && <p role="status" className="notice">{notice}</p>}
      {error && <p role="alert" className="error">{error}</p>}
      {approvals === null && !error && <p role="status">Loading…</p>}
      {approvals && approvals.length === 0 && <p>Nothing here.</p>}
      <ul className="plain cards">
        {(approvals || []).map((a) => (
          <li key={a.id} className="card">
            <h2>{a.message || `Approval of node ${a.node_id}`}</h2>
            <p>
              <span className={`badge ${a.status}`}>{a.status}</span> · node <code>{a.node_id}</code> of{" "}
              <Link to={`/executions/${a.execution_id}`}>execution {a.execution_id.slice(0, 8)}</Link>
            </p>
            <p className="hint">
              Asked {when(a.created_at)} · needs {a.required} approval{a.required > 1 ? "s" : ""} from a {a.role} or
              above ({a.approvals} so far){a.timeout_at ? ` · times out ${when(a.timeout_at)} (then ${a.on_timeout})` : ""}
            </p>
            {a.status === "pending" && (
              <Decide
                approval={a}
                onDone={(decision) => {
                  setNotice(`You chose to ${decision} "${a.message || a.node_id}".`);
                  load();
                }}
              />
            )}
          </li>
        ))}
      </ul>
    </>
  );
}
