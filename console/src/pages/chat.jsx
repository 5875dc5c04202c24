import { useEffect, useRef, useState } from "react";
import { ApiError, api, can, readEvents, when } from "../api.js";
import { Link, navigate } from "../router.jsx";

// Chat with an agent over the same stream `useChat` reads (the AI SDK's UI message
// stream, docs/ai-sdk.md): our JSON body with `Accept: text/event-stream`, so a paused
// turn's approvals are answered with `{conversation_id, approvals}`.

/** Words for an error answer, by its code. */
function explain(error) {
  if (!(error instanceof ApiError)) return error.message;
  switch (error.code) {
    case "unavailable":
      return `The agent can't answer: ${error.message}`;
    case "budget_exceeded":
      return `The workspace's LLM budget is spent: ${error.message}`;
    case "llm_error":
    case "llm_unavailable":
      return `The LLM provider failed: ${error.message}`;
    case "forbidden":
      return `Your key may not chat: ${error.message}`;
    default:
      return error.message;
  }
}

/** A stored conversation as the stream would have drawn it: one message per turn. */
function fromHistory(detail) {
  const calls = new Map();
  for (const turn of detail.turns) for (const call of turn.tool_calls) calls.set(call.call_id, call);
  const pending = new Map(detail.pending_approvals.map((a) => [a.call_id, a]));
  const turns = new Map(detail.turns.map((t) => [t.id, t]));
  const out = [];
  let current = null;
  for (const m of detail.messages) {
    if (m.role === "user") {
      out.push({ id: `m${m.id}`, role: "user", parts: [{ type: "text", text: m.content || "" }] });
      current = null;
      continue;
    }
    if (m.role === "tool") continue;
    if (!current || current.turnId !== m.turn_id) {
      const turn = turns.get(m.turn_id);
      current = {
        id: `m${m.id}`,
        role: "assistant",
        turnId: m.turn_id,
        parts: [],
        usage: turn ? { prompt_tokens: turn.prompt_tokens, completion_tokens: turn.completion_tokens } : null,
        error: turn && turn.status === "failed" ? turn.error : null,
      };
      out.push(current);
    }
    for (const call of m.tool_calls || []) {
      const record = calls.get(call.id);
      const approval = pending.get(call.id);
      let input = record ? record.input : null;
      if (input == null) {
        try {
          input = JSON.parse(call.function.arguments);
        } catch {
          input = call.function.arguments;
        }
      }
      current.parts.push({
        type: "tool",
        id: call.id,
        name: call.function.name,
        input,
        output: record ? record.output : undefined,
        error: record && record.error,
        state: approval
          ? "approval-requested"
          : record && record.outcome === "denied"
            ? "output-denied"
            : record && record.error
              ? "output-error"
              : "output-available",
        approvalId: approval && approval.approval_id,
      });
    }
    if (m.content) current.parts.push({ type: "text", text: m.content });
  }
  return out;
}

/** Applies one chunk of the UI message stream to the assistant message. */
function applyChunk(message, chunk) {
  const parts = message.parts.slice();
  const tool = (id) => parts.findIndex((p) => p.type === "tool" && p.id === id);
  const setTool = (id, change) => {
    const i = tool(id);
    if (i >= 0) parts[i] = { ...parts[i], ...change };
  };
  switch (chunk.type) {
    case "start":
      return { ...message, meta: chunk.messageMetadata || message.meta };
    case "text-start":
      parts.push({ type: "text", id: chunk.id, text: "" });
      break;
    case "text-delta": {
      const i = parts.findIndex((p) => p.type === "text" && p.id === chunk.id);
      if (i >= 0) parts[i] = { ...parts[i], text: parts[i].text + chunk.delta };
      break;
    }
    case "tool-input-start":
      if (tool(chunk.toolCallId) < 0) {
        parts.push({ type: "tool", id: chunk.toolCallId, name: chunk.toolName, state: "input-streaming" });
      }
      break;
    case "tool-input-available":
      if (tool(chunk.toolCallId) < 0) parts.push({ type: "tool", id: chunk.toolCallId, name: chunk.toolName });
      setTool(chunk.toolCallId, { input: chunk.input, state: "input-available" });
      break;
    case "tool-approval-request":
      setTool(chunk.toolCallId, { approvalId: chunk.approvalId, state: "approval-requested" });
      break;
    case "tool-output-available":
      setTool(chunk.toolCallId, { output: chunk.output, state: "output-available" });
      break;
    case "tool-output-error":
      setTool(chunk.toolCallId, { error: chunk.errorText, state: "output-error" });
      break;
    case "tool-output-denied":
      setTool(chunk.toolCallId, { state: "output-denied" });
      break;
    case "finish":
      return {
        ...message,
        parts,
        usage: (chunk.messageMetadata && chunk.messageMetadata.usage) || message.usage,
        finishReason: chunk.finishReason,
      };
    case "error":
      return { ...message, parts, error: chunk.errorText };
    default:
      break;
  }
  return { ...message, parts };
}

// Focusable, so a keyboard can scroll a long value.
function Json({ value, label }) {
  return (
    <pre className="json" tabIndex={0} aria-label={label}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

const STATE_WORDS = {
  "input-streaming": "preparing",
  "input-available": "running",
  "approval-requested": "waiting for your approval",
  "output-available": "done",
  "output-error": "failed",
  "output-denied": "denied",
};

function ToolPart({ part, answer, onAnswer, canApprove }) {
  const [reason, setReason] = useState("");
  return (
    <details className={`tool ${part.state}`} open={part.state === "approval-requested"}>
      <summary>
        Tool <code>{part.name}</code> — {STATE_WORDS[part.state] || part.state}
      </summary>
      <div className="tool-body">
        <h3>Input</h3>
        {part.input === undefined ? <p>…</p> : <Json value={part.input} label={`Input of ${part.name}`} />}
        {part.state === "output-available" && (
          <>
            <h3>Output</h3>
            <Json value={part.output} label={`Output of ${part.name}`} />
          </>
        )}
        {part.state === "output-error" && <p className="error">{part.error}</p>}
        {part.state === "approval-requested" && canApprove && (
          <div className="approval" role="group" aria-label={`Approve ${part.name}`}>
            {answer ? (
              <p>You {answer.approved ? "approved" : "denied"} this call.</p>
            ) : (
              <>
                <label htmlFor={`reason-${part.id}`}>Reason (optional)</label>
                <input id={`reason-${part.id}`} value={reason} onChange={(e) => setReason(e.target.value)} />
                <div className="buttons">
                  <button type="button" onClick={() => onAnswer(part, true, reason)}>Approve</button>
                  <button type="button" className="danger" onClick={() => onAnswer(part, false, reason)}>
                    Deny
                  </button>
                </div>
              </>
            )}
          </div>
        )}
      </div>
    </details>
  );
}

function Message({ message, answers, onAnswer, canApprove }) {
  return (
    <article className={`message ${message.role}`} aria-label={message.role === "user" ? "You" : "Agent"}>
      <p className="who">{message.role === "user" ? "You" : "Agent"}</p>
      {message.parts.map((part, i) =>
        part.type === "text" ? (
          <p key={part.id || i} className="text">{part.text}</p>
        ) : (
          <ToolPart key={part.id} part={part} answer={answers[part.approvalId]} onAnswer={onAnswer} canApprove={canApprove} />
        ),
      )}
      {message.error && <p role="alert" className="error">The turn failed: {message.error}</p>}
      {message.usage && (
        <p className="usage">
          {message.usage.prompt_tokens} prompt + {message.usage.completion_tokens} completion tokens
        </p>
      )}
    </article>
  );
}

export default function Chat({ session, conversation }) {
  const [agents, setAgents] = useState([]);
  const [agent, setAgent] = useState("");
  const [conversations, setConversations] = useState([]);
  const [messages, setMessages] = useState([]);
  const [conversationId, setConversationId] = useState(conversation || null);
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [answers, setAnswers] = useState({});
  const abort = useRef(null);
  const mayChat = can(session, "member");

  const refreshList = (slug) =>
    api(`/api/conversations?agent=${encodeURIComponent(slug)}&limit=50`)
      .then((r) => setConversations(r.conversations))
      .catch((e) => setError(explain(e)));

  useEffect(() => {
    api("/api/agents")
      .then((r) => {
        const enabled = r.agents.filter((a) => a.enabled);
        setAgents(enabled);
        if (!conversation && enabled.length && !agent) setAgent(enabled[0].slug);
      })
      .catch((e) => setError(explain(e)));
  }, []);

  useEffect(() => {
    if (!conversation) {
      setConversationId(null);
      setMessages([]);
      return;
    }
    setConversationId(conversation);
    api(`/api/conversations/${conversation}`)
      .then((detail) => {
        setAgent(detail.agent_slug || "");
        setMessages(fromHistory(detail));
      })
      .catch((e) => setError(explain(e)));
  }, [conversation]);

  useEffect(() => {
    if (agent) refreshList(agent);
  }, [agent]);

  useEffect(() => () => abort.current && abort.current.abort(), []);

  /** Streams one request's answer into the last (assistant) message. */
  const stream = async (body, fresh) => {
    setBusy(true);
    setError(null);
    abort.current = new AbortController();
    if (fresh) setMessages((list) => [...list, { id: `a${Date.now()}`, role: "assistant", parts: [] }]);
    try {
      const response = await api(`/api/agents/${encodeURIComponent(agent)}/chat`, {
        method: "POST",
        body,
        accept: "text/event-stream",
        signal: abort.current.signal,
      });
      await readEvents(response, ({ data }) => {
        if (typeof data !== "object" || data === null) return;
        if (data.type === "start" && data.messageMetadata && data.messageMetadata.conversationId) {
          setConversationId(data.messageMetadata.conversationId);
        }
        setMessages((list) => {
          const last = list[list.length - 1];
          return [...list.slice(0, -1), applyChunk(last, data)];
        });
      });
    } catch (e) {
      if (e.name !== "AbortError") {
        setError(explain(e));
        if (fresh) setMessages((list) => (list[list.length - 1].parts.length ? list : list.slice(0, -1)));
      }
    } finally {
      setBusy(false);
      refreshList(agent);
    }
  };

  const send = async (event) => {
    event.preventDefault();
    const message = text.trim();
    if (!message || !agent) return;
    setText("");
    setMessages((list) => [...list, { id: `u${Date.now()}`, role: "user", parts: [{ type: "text", text: message }] }]);
    await stream({ message, ...(conversationId ? { conversation_id: conversationId } : {}) }, true);
  };

  // Every pending call of the turn is answered in one request (the model needs a
  // result for each): send once the last one is answered.
  const onAnswer = (part, approved, reason) => {
    const next = { ...answers, [part.approvalId]: { approved, reason } };
    setAnswers(next);
    const last = messages[messages.length - 1];
    const pending = last.parts.filter((p) => p.type === "tool" && p.state === "approval-requested");
    if (pending.every((p) => next[p.approvalId])) {
      const approvals = pending.map((p) => ({
        id: p.approvalId,
        approved: next[p.approvalId].approved,
        ...(next[p.approvalId].reason ? { reason: next[p.approvalId].reason } : {}),
      }));
      stream({ conversation_id: conversationId, approvals }, false);
    }
  };

  const newChat = () => {
    setMessages([]);
    setConversationId(null);
    setAnswers({});
    navigate("/chat");
  };

  return (
    <div className="chat">
      <h1 tabIndex={-1}>Chat</h1>
      <div className="chat-layout">
        <aside className="conversations" aria-label="Conversations">
          <label htmlFor="agent">Agent</label>
          <select
            id="agent"
            value={agent}
            onChange={(e) => {
              setAgent(e.target.value);
              newChat();
            }}
            disabled={busy}
          >
            {agents.map((a) => (
              <option key={a.slug} value={a.slug}>
                {a.name} — {a.role}
              </option>
            ))}
          </select>
          <button type="button" onClick={newChat} disabled={busy}>New conversation</button>
          <h2>Conversations</h2>
          {conversations.length === 0 ? (
            <p className="hint">None yet.</p>
          ) : (
            <ul className="plain">
              {conversations.map((c) => (
                <li key={c.id}>
                  <Link to={`/chat/${c.id}`} aria-current={c.id === conversationId ? "true" : undefined}>
                    {c.title || "Untitled"}
                  </Link>
                  <span className="hint"> {when(c.updated_at)}</span>
                </li>
              ))}
            </ul>
          )}
        </aside>
        <section className="thread" aria-label="Conversation">
          <div className="messages" role="log" aria-live="polite" aria-busy={busy}>
            {messages.length === 0 && <p className="hint">Ask the agent something.</p>}
            {messages.map((m) => (
              <Message key={m.id} message={m} answers={answers} onAnswer={onAnswer} canApprove={mayChat && !busy} />
            ))}
          </div>
          {error && <p role="alert" className="error">{error}</p>}
          {mayChat ? (
            <form className="composer" onSubmit={send}>
              <label htmlFor="message">Message</label>
              <textarea
                id="message"
                rows={2}
                value={text}
                onChange={(e) => setText(e.target.value)}
                onKeyDown={(e) => {
                  if (e.key === "Enter" && !e.shiftKey) send(e);
                }}
              />
              <div className="buttons">
                <button type="submit" disabled={busy || !text.trim() || !agent}>Send</button>
                {busy && (
                  <button type="button" onClick={() => abort.current.abort()}>Stop</button>
                )}
              </div>
            </form>
          ) : (
            <p className="hint">A viewer key can read conversations but not chat.</p>
          )}
        </section>
      </div>
    </div>
  );
}
