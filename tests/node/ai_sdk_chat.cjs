// The AI SDK's own chat client against our chat endpoint, as `useChat` drives it:
// `AbstractChat` (what the React, Vue and Svelte hooks wrap) with `DefaultChatTransport`
// sends the requests, and the transport's parser reads our stream. A fetch wrapper
// keeps a copy of each response and checks every chunk against `uiMessageChunkSchema`
// with `parseJsonEventStream` on its own, so a chunk the schema rejects is reported
// even where the chat would only show an error.
//
// Usage: node ai_sdk_chat.cjs BASE_URL API_KEY AGENT
// Prints one JSON object: each chat's final messages and its exchanges.

"use strict";

const {
  AbstractChat,
  DefaultChatTransport,
  lastAssistantMessageIsCompleteWithApprovalResponses,
  parseJsonEventStream,
  uiMessageChunkSchema,
} = require("ai");

const [base, key, agent] = process.argv.slice(2);

/** The chat state a UI framework would keep; here plain arrays. */
class PlainState {
  constructor() {
    this.status = "ready";
    this.error = undefined;
    this.messages = [];
  }
  pushMessage(message) {
    this.messages = [...this.messages, message];
  }
  popMessage() {
    this.messages = this.messages.slice(0, -1);
  }
  replaceMessage(index, message) {
    this.messages = this.messages.map((m, i) => (i === index ? message : m));
  }
  snapshot(value) {
    return structuredClone(value);
  }
}

class Chat extends AbstractChat {
  constructor(options) {
    super({ ...options, state: new PlainState() });
  }
}

/** A fetch that records the request body and every chunk of the response. */
function recordingFetch(exchanges) {
  return async (url, init) => {
    const response = await fetch(url, init);
    const record = {
      request: JSON.parse(init.body),
      accept: new Headers(init.headers).get("accept"),
      status: response.status,
      contentType: response.headers.get("content-type"),
      protocol: response.headers.get("x-vercel-ai-ui-message-stream"),
      chunks: [],
      invalid: [],
    };
    exchanges.push(record);
    if (!response.body) return response;
    const [ours, theirs] = response.body.tee();
    record.read = (async () => {
      const parsed = parseJsonEventStream({ stream: ours, schema: uiMessageChunkSchema });
      for await (const result of parsed) {
        if (result.success) record.chunks.push(result.value);
        else record.invalid.push(String(result.error));
      }
    })();
    return new Response(theirs, { status: response.status, headers: response.headers });
  };
}

function newChat(id) {
  const exchanges = [];
  let finished = [];
  const chat = new Chat({
    id,
    transport: new DefaultChatTransport({
      api: `${base}/api/agents/${agent}/chat`,
      headers: { Authorization: `Bearer ${key}` },
      fetch: recordingFetch(exchanges),
    }),
    // As an app using approvals configures useChat: answering the last approval sends.
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
    onFinish: () => {
      const waiting = finished;
      finished = [];
      waiting.forEach((resolve) => resolve());
    },
    onError: () => {},
  });
  const nextFinish = () => new Promise((resolve) => finished.push(resolve));
  return { chat, exchanges, nextFinish };
}

/** The approval the last assistant message asks for. */
function pendingApproval(chat) {
  const last = chat.messages[chat.messages.length - 1];
  const part = last.parts.find((p) => p.state === "approval-requested");
  if (!part) throw new Error(`no approval requested in ${JSON.stringify(last)}`);
  return part.approval.id;
}

async function report({ chat, exchanges }) {
  await Promise.all(exchanges.map((e) => e.read));
  return {
    status: chat.status,
    error: chat.error ? String(chat.error.message) : null,
    messages: chat.messages,
    exchanges: exchanges.map(({ read, ...rest }) => rest),
  };
}

async function main() {
  const out = {};

  // A turn with a tool call, then the same chat id again.
  const plain = newChat("chat-plain");
  await plain.chat.sendMessage({ text: "Analyse Q4 revenue" });
  out.first = await report(plain);
  await plain.chat.sendMessage({ text: "And compared with Q3?" });
  out.plain = await report(plain);

  // A gated tool, approved: the chat sends the answer by itself.
  const approved = newChat("chat-approved");
  await approved.chat.sendMessage({ text: "What was our Q4 profit?" });
  out.approvalId = pendingApproval(approved.chat);
  out.paused = structuredClone(approved.chat.messages);
  let done = approved.nextFinish();
  await approved.chat.addToolApprovalResponse({ id: out.approvalId, approved: true });
  await done;
  out.approved = await report(approved);

  // The same, denied with a reason.
  const denied = newChat("chat-denied");
  await denied.chat.sendMessage({ text: "What was our Q4 profit?" });
  const deniedId = pendingApproval(denied.chat);
  done = denied.nextFinish();
  await denied.chat.addToolApprovalResponse({ id: deniedId, approved: false, reason: "not now" });
  await done;
  out.denied = await report(denied);

  process.stdout.write(JSON.stringify(out));
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
