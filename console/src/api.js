// The API client: the credential (kept in sessionStorage, so it dies with the tab and
// never appears in a URL), JSON requests with the server's error shape, and a reader
// for `text/event-stream` responses (EventSource can't send an Authorization header).

const KEY = "agenthost.session";

export function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

export function saveSession(session) {
  if (session) sessionStorage.setItem(KEY, JSON.stringify(session));
  else sessionStorage.removeItem(KEY);
}

/** An error answer: `status`, the server's `code` and `message`, and 422 `problems`. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `the server answered ${status}`);
    this.status = status;
    this.code = error.code || "error";
    this.problems = error.problems || [];
    this.body = body;
  }
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return new ApiError(response.status, body);
}

function headers(token, extra) {
  return { Authorization: `Bearer ${token}`, ...extra };
}

/** A JSON request with the session's credential; throws ApiError on a 4xx/5xx. */
export async function api(path, { method = "GET", body, form, token, signal, accept } = {}) {
  const session = loadSession();
  const credential = token || (session && session.token);
  const extra = {};
  if (body !== undefined) extra["content-type"] = "application/json";
  if (accept) extra.accept = accept;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(credential, extra),
      // A FormData body sets its own multipart content type.
      body: form || (body === undefined ? undefined : JSON.stringify(body)),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { error: { code: "network", message: "the server could not be reached" } });
  }
  if (!response.ok) throw await errorOf(response);
  if (accept === "text/event-stream") return response;
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/**
 * Reads server-sent events from a fetch response: calls `onEvent({event, data, id})`
 * for each, with `data` parsed as JSON when it is JSON.
 */
export async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { event: "message", data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (line === "") {
        if (event.data.length) {
          const raw = event.data.join("\n");
          let data = raw;
          try {
            data = JSON.parse(raw);
          } catch {
            data = raw;
          }
          onEvent({ event: event.event, data, id: event.id });
        }
        event = { event: "message", data: [], id: event.id };
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") event.data.push(value);
        else if (field === "event") event.event = value;
        else if (field === "id") event.id = value;
      }
    }
  }
}

const ROLES = ["viewer", "member", "admin", "owner"];

/** Whether the session's role is at least `role` (an admin-token session has none). */
export function can(session, role) {
  if (!session || session.kind !== "key") return false;
  return ROLES.indexOf(session.role) >= ROLES.indexOf(role);
}

/** A time as the viewer's locale and time zone show it. */
export function when(value) {
  if (!value) return "—";
  const date = new Date(value);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** Milliseconds between two times, in words. */
export function duration(from, to) {
  if (!from || !to) return "—";
  const ms = new Date(to) - new Date(from);
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60000)} min`;
}
