import { StrictMode, Suspense, lazy, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import "./style.css";
import { api, can, loadSession, saveSession } from "./api.js";
import { Link, match, navigate, usePath } from "./router.jsx";
import SignIn from "./pages/signin.jsx";
import Chat from "./pages/chat.jsx";
import Workflows from "./pages/workflows.jsx";
import { Executions, Execution } from "./pages/executions.jsx";
import Approvals from "./pages/approvals.jsx";
import Plugins from "./pages/plugins.jsx";
import Workspaces from "./pages/workspaces.jsx";
import { Activity, Rules, Schedules } from "./pages/automation.jsx";
import { Ticket, Tickets } from "./pages/tickets.jsx";
import { Article, Articles } from "./pages/kb.jsx";
import { Agent, Agents, Keys, Usage } from "./pages/admin.jsx";

// The graph editor (React Flow, dagre) is most of the bundle: loaded when needed.
const Workflow = lazy(() => import("./pages/workflow.jsx"));

const KEY_PAGES = [
  { path: "/chat", label: "Chat" },
  { path: "/workflows", label: "Workflows" },
  { path: "/executions", label: "Executions" },
  { path: "/approvals", label: "Approvals" },
  { path: "/schedules", label: "Schedules" },
  { path: "/rules", label: "Rules" },
  { path: "/activity", label: "Activity" },
  { path: "/tickets", label: "Tickets" },
  { path: "/kb", label: "Knowledge base" },
  { path: "/agents", label: "Agents" },
  { path: "/usage", label: "Usage" },
  { path: "/keys", label: "Keys", role: "admin" },
];
const ADMIN_PAGES = [
  { path: "/workspaces", label: "Workspaces" },
  { path: "/plugins", label: "Plugins" },
];

function routes(session, signInWith) {
  if (session.kind === "admin") {
    return [
      ["/workspaces", () => <Workspaces onUseKey={signInWith} />],
      ["/plugins", () => <Plugins />],
      ["/plugins/:name", (p) => <Plugins name={p.name} />],
    ];
  }
  return [
    ["/chat", () => <Chat session={session} />],
    ["/chat/:conversation", (p) => <Chat session={session} conversation={p.conversation} />],
    ["/workflows", () => <Workflows session={session} />],
    ["/workflows/new", () => <Workflow session={session} />],
    ["/workflows/:slug", (p) => <Workflow session={session} slug={p.slug} />],
    ["/executions", () => <Executions />],
    ["/executions/:id", (p) => <Execution session={session} id={p.id} />],
    ["/approvals", () => <Approvals session={session} />],
    ["/schedules", () => <Schedules session={session} />],
    ["/rules", () => <Rules session={session} />],
    ["/activity", () => <Activity />],
    ["/tickets", () => <Tickets />],
    ["/tickets/:number", (p) => <Ticket session={session} number={p.number} />],
    ["/kb", () => <Articles />],
    ["/kb/:slug", (p) => <Article session={session} slug={p.slug} />],
    ["/agents", () => <Agents />],
    ["/agents/:slug", (p) => <Agent session={session} slug={p.slug} />],
    ["/usage", () => <Usage />],
    ["/keys", () => <Keys session={session} />],
  ];
}

function App() {
  const [session, setSession] = useState(loadSession);
  const path = usePath();
  const pages =
    session && session.kind === "admin"
      ? ADMIN_PAGES
      : KEY_PAGES.filter((p) => !p.role || can(session, p.role));

  useEffect(() => {
    if (session && (path === "/" || path === "/signin")) navigate(pages[0].path);
  }, [session, path]);

  // Move focus to the new page's heading, so keyboard and screen-reader users land
  // where the page starts.
  useEffect(() => {
    const heading = document.querySelector("main h1");
    if (heading) heading.focus({ preventScroll: true });
  }, [path]);

  if (!session) {
    return <SignIn onSignedIn={(s) => { saveSession(s); setSession(s); }} />;
  }
  // The admin token's new workspace: sign in with its owner key.
  const signInWith = async (secret) => {
    const me = await api("/api/me", { token: secret });
    const next = { kind: "key", token: secret, role: me.role, workspace: me.workspace };
    saveSession(next);
    setSession(next);
    navigate("/chat");
  };
  const signOut = () => {
    saveSession(null);
    setSession(null);
    navigate("/");
  };
  let page = null;
  for (const [pattern, render] of routes(session, signInWith)) {
    const params = match(pattern, path);
    if (params) {
      page = render(params);
      break;
    }
  }
  if (!page) {
    page = (
      <>
        <h1 tabIndex={-1}>Not found</h1>
        <p>There is no page at {path}.</p>
      </>
    );
  }
  const who =
    session.kind === "admin" ? "instance admin" : `${session.workspace.name} · ${session.role}`;
  return (
    <>
      <a className="skip" href="#main">Skip to content</a>
      <header className="top">
        <span className="brand">Agenthost</span>
        <nav aria-label="Main">
          <ul>
            {pages.map((p) => (
              <li key={p.path}>
                <Link to={p.path} aria-current={path === p.path || path.startsWith(`${p.path}/`) ? "page" : undefined}>
                  {p.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <span className="who">{who}</span>
        <button type="button" className="link" onClick={signOut}>Sign out</button>
      </header>
      <main id="main">
        {/* Keyed by path: a new page starts with fresh state, even on the same component. */}
        <Suspense key={path} fallback={<p role="status">Loading…</p>}>{page}</Suspense>
      </main>
    </>
  );
}

createRoot(document.getElementById("root")).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
