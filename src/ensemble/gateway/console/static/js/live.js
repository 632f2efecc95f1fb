// A WebSocket to a real-time path that keeps itself connected.
//
// Recovery follows the server's contract (docs/sessions.md, docs/hubs.md):
// every frame carries the stream position in `offset`, so the highest offset
// seen is a safe `since`.  On reconnect we ask for `?since=<that offset>` and
// the server replays exactly the events after it, then goes live — or sends
// `resync` with full state when the gap is older than its retained log.
//
// Frames are not filtered here: ephemeral frames (presence, typing, ai_delta)
// legitimately repeat the current offset, so "offset already seen" does not
// mean "duplicate".  Views key what they render by the event's id or offset,
// which makes a replayed frame harmless.

import { freshAccessToken, describeError } from "./api.js";

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15_000;
// Close codes after which reconnecting cannot help.
const FINAL_CODES = new Map([
  [4403, "Your role doesn't allow this."],
  [4410, "This session is completed."],
  [4404, "This no longer exists."],
  [1008, "The server refused this connection."],
]);

// Frames that carry a whole state rather than one event.
const FULL_STATE = new Set(["session_state", "snapshot"]);

// Every open LiveSocket: tests drop them to simulate a network failure.
export const openSockets = new Set();

export class LiveSocket {
  // path: "/api/v1/dashboard/ws"; auth: "query" (?token=) or "frame" ({type:"auth"} first);
  // query: extra query parameters; onMessage(msg); onStatus(status, detail) with
  // status "connecting" | "live" | "offline" | "closed".
  constructor({ path, auth = "query", query = {}, onMessage, onStatus = () => {} }) {
    this.path = path;
    this.auth = auth;
    this.query = query;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.lastOffset = null;
    this.status = "connecting";
    this.ws = null;
    this.closed = false;
    this.attempt = 0;
    this.timer = null;
    this.authRetried = false;
    openSockets.add(this);
    this.connect();
  }

  setStatus(status, detail = "") {
    this.status = status;
    this.onStatus(status, detail);
  }

  async connect() {
    if (this.closed) return;
    this.setStatus("connecting");
    let token;
    try {
      token = await freshAccessToken();
    } catch (err) {
      this.finish(describeError(err));
      return;
    }
    if (this.closed) return;
    const params = new URLSearchParams(this.query);
    if (this.auth === "query") params.set("token", token);
    if (this.lastOffset !== null) params.set("since", String(this.lastOffset));
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const qs = params.toString();
    const ws = new WebSocket(`${scheme}//${location.host}${this.path}${qs ? `?${qs}` : ""}`, ["ensemble.json"]);
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.auth === "frame") ws.send(JSON.stringify({ type: "auth", token }));
      else this.becameLive();
    });
    ws.addEventListener("message", (event) => this.receive(event.data));
    ws.addEventListener("close", (event) => this.lost(ws, event));
  }

  becameLive() {
    this.attempt = 0;
    this.authRetried = false;
    this.setStatus("live");
  }

  receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return; // the server only sends JSON objects on this subprotocol
    }
    if (!msg || typeof msg !== "object") return;
    // With first-frame auth, the first answer that is not an error means the
    // server took the token (the dashboard says auth_success; a session
    // socket answers with its state or the replayed events).
    if (this.status !== "live" && msg.type !== "error" && msg.type !== "auth_error") this.becameLive();
    if (msg.type === "resync") {
      // The stream position is on the frame (and, for sessions, in its state).
      const offset = typeof msg.offset === "number" ? msg.offset : msg.state && msg.state.offset;
      if (typeof offset === "number") this.lastOffset = offset;
    } else if (FULL_STATE.has(msg.type) && typeof msg.offset === "number") {
      // Full state names the stream position outright (it may be lower than
      // what we saw if the server's log was reset).
      this.lastOffset = msg.offset;
    } else if (typeof msg.offset === "number") {
      this.lastOffset = this.lastOffset === null ? msg.offset : Math.max(this.lastOffset, msg.offset);
    }
    this.onMessage(msg);
  }

  lost(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    if (this.closed) return;
    if (FINAL_CODES.has(event.code)) {
      this.finish(event.reason || FINAL_CODES.get(event.code));
      return;
    }
    if (event.code === 4401) {
      // The token was refused: try once more with a fresh one, then give up.
      if (this.authRetried) {
        this.finish("You are signed out. Please log in again.");
        return;
      }
      this.authRetried = true;
    }
    this.attempt += 1;
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.min(this.attempt - 1, 10));
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.setStatus("offline", `Reconnecting in ${Math.ceil(delay / 1000)} s`);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }

  finish(reason) {
    this.close();
    this.setStatus("closed", reason);
  }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.status !== "live") return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  // Lose the connection as a network failure would; the socket reconnects
  // with `since`.  For tests and for "reconnect now" buttons.
  drop() {
    if (this.ws) this.ws.close(4000, "dropped by client");
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    openSockets.delete(this);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "bye");
    }
  }
}

// A small indicator element kept in step with a LiveSocket's status.
export function statusText(status, detail) {
  switch (status) {
    case "live": return "Live";
    case "connecting": return "Connecting…";
    case "offline": return `Reconnecting… ${detail || ""}`.trim();
    default: return detail ? `Disconnected: ${detail}` : "Disconnected";
  }
}
