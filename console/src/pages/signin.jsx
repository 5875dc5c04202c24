import { useState } from "react";
import { ApiError, api } from "../api.js";

// A workspace API key (`ahk_…`) signs in to that workspace with the key's role; the
// instance admin token signs in to the instance's admin pages (plugins).
export default function SignIn({ onSignedIn }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const secret = token.trim();
    try {
      const me = await api("/api/me", { token: secret });
      onSignedIn({ kind: "key", token: secret, role: me.role, workspace: me.workspace });
    } catch (error) {
      if (error instanceof ApiError && error.status === 403) {
        // Not a workspace key: perhaps the admin token.
        try {
          await api("/api/admin/workspaces", { token: secret });
          onSignedIn({ kind: "admin", token: secret });
          return;
        } catch (inner) {
          setError(inner.message);
        }
      } else if (error instanceof ApiError && error.status === 401) {
        setError("This key or token is not valid.");
      } else {
        setError(error.message);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" className="signin">
      <h1 tabIndex={-1}>Sign in to Agenthost</h1>
      <form onSubmit={submit}>
        <label htmlFor="token">Workspace API key or instance admin token</label>
        <input
          id="token"
          type="password"
          autoComplete="off"
          required
          value={token}
          onChange={(e) => setToken(e.target.value)}
          aria-describedby="token-help"
        />
        <p id="token-help" className="hint">
          Kept in this tab only (session storage) and sent as a bearer token. The admin
          token was printed once when the server first started.
        </p>
        {error && <p role="alert" className="error">{error}</p>}
        <button type="submit" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
      </form>
    </main>
  );
}
