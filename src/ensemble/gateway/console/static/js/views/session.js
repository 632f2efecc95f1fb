// One live diagnostic session (docs/sessions.md): participants with presence
// and typing, the message list (messages, readings, photos, system events),
// a composer (text, reading, photo), the AI assistant's answer streaming into
// one bubble and then its citations, complete / leave / invite.
//
// Theory of operation
// -------------------
// The socket (LiveSocket, ?token= auth) starts with `session_state` (the last
// 50 messages) or, after a reconnect with `since`, the events missed.  Every
// rendered item is keyed: a message by its id, a system event by its offset,
// the answer being written by its request id.  A replayed frame therefore
// finds its key taken and changes nothing, and items are placed by offset, so
// a late frame lands where it belongs.  `session_state` and `resync` replace
// the whole state.
//
// Sends carry a `client_id`; until the server echoes that id (in the stored
// message, an `ack` or an `error`) the send is pending.  Pending sends are sent
// again, in order, each time the socket is live again: the server stores a
// client_id once, so a send that did reach it before the drop is not doubled.

import { api, upload, describeError } from "../api.js";
import { LiveSocket, statusText } from "../live.js";
import { h, replace, field, fmtTime, fmtBytes, can } from "../ui.js";
import { citationList, citationLink, closeCitation } from "../citations.js";

export const title = "Diagnostic session";

const MAX_TEXT_CHARS = 4000;
const MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024;
const MAX_CAPTION_CHARS = 500;
const TYPING_EVERY_MS = 3000;
const TYPING_SHOWN_MS = 6000;
const HISTORY_PAGE = 200;
const HISTORY_MAX_PAGES = 25; // the server keeps at most 5000 messages per session
const MAX_RETRIES = 5;

const READING_KINDS = [
  ["suction_pressure", "Suction pressure", "psi"],
  ["discharge_pressure", "Discharge pressure", "psi"],
  ["superheat", "Superheat", "°F"],
  ["subcooling", "Subcooling", "°F"],
  ["supply_air_temp", "Supply air temperature", "°F"],
  ["return_air_temp", "Return air temperature", "°F"],
  ["outdoor_temp", "Outdoor temperature", "°F"],
  ["voltage", "Voltage", "V"],
  ["amperage", "Current", "A"],
  ["capacitance", "Capacitance", "µF"],
  ["static_pressure", "Static pressure", "inWC"],
];
const UNITS = ["psi", "kPa", "°F", "°C", "V", "A", "µF", "inWC", "Pa", "%", "rpm", "ppm"];

// Socket error codes in words for a technician (the server's message follows).
const ERROR_WORDS = {
  rate_limited: "You are sending faster than the session allows.",
  ai_busy: "The assistant is still answering the previous question. Ask again when it has finished.",
  session_completed: "This session is completed and read-only.",
  payload_too_large: "That is too large.",
  forbidden: "You are no longer a participant of this session.",
  overloaded: "The session is busy right now. Try again in a moment.",
  unavailable: "The session is restarting. Try again in a moment.",
};

let clientCounter = 0;
function newClientId(prefix) {
  clientCounter += 1;
  const rnd = Math.random().toString(36).slice(2, 8);
  return `${prefix}-${Date.now().toString(36)}-${clientCounter}-${rnd}`;
}

function words(frame) {
  const lead = ERROR_WORDS[frame.error];
  const message = frame.message || "";
  if (lead && message && !lead.toLowerCase().includes(message.toLowerCase())) return `${lead} (${message})`;
  return lead || message || "The server refused that.";
}

export async function mount(root, ctx) {
  const me = ctx.me;
  const myId = me && me.user ? String(me.user.id) : null;
  const sessionId = ctx.params.id;
  const aborter = new AbortController();
  const signal = aborter.signal;
  const timers = new Set();
  let socket = null;
  let disposed = false;

  const later = (fn, ms) => {
    const t = setTimeout(() => { timers.delete(t); if (!disposed) fn(); }, ms);
    timers.add(t);
    return t;
  };
  const cancel = (t) => {
    if (t === undefined) return;
    clearTimeout(t);
    timers.delete(t);
  };

  // -- state --------------------------------------------------------------------------
  let session = null;
  const participants = new Map(); // id -> participant
  const items = new Map(); // key -> element (messages, system events, streams, pending)
  const answered = new Set(); // request ids whose final answer is rendered
  const streams = new Map(); // request id -> {el, parts: [], body}
  const pending = new Map(); // client_id -> {frame, el, tries}
  const typing = new Map(); // participant id -> timer
  let everLive = false;
  let historyLoaded = false;
  let readOnly = false;

  // -- skeleton -----------------------------------------------------------------------
  const heading = h("h1", { text: "Diagnostic session" });
  const sub = h("p", { class: "session-sub" });
  const status = h("span", { class: "live-status connecting", role: "status", text: "Connecting…" });
  const stateBadge = h("span", { class: "badge", text: "" });
  const inviteBtn = h("button", { type: "button", class: "subtle", text: "Invite", hidden: true });
  const completeBtn = h("button", { type: "button", class: "subtle", text: "Complete", hidden: true });
  const leaveBtn = h("button", { type: "button", class: "subtle", text: "Leave", hidden: true });
  const panel = h("div", { class: "inline-panel", hidden: true });
  const head = h("header", { class: "card" },
    h("div", { class: "session-head" },
      h("div", {}, h("p", { class: "back" }, h("a", { href: "#/sessions", text: "← All sessions" })), heading, sub),
      h("div", { class: "session-actions" }, status, stateBadge, inviteBtn, completeBtn, leaveBtn)),
    panel);

  const participantList = h("ul", { class: "participants", "aria-label": "Participants" });
  const equipmentBox = h("div", { class: "panel" });
  const side = h("aside", { class: "session-side card", "aria-label": "Participants and equipment" },
    h("h2", { text: "Participants" }), participantList, equipmentBox);

  const list = h("ol", { class: "messages", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": "Messages", tabindex: "0" });
  const typingLine = h("p", { class: "typing-line", "aria-live": "polite" });
  const composerBox = h("div", {});
  const mainCol = h("section", { class: "session-main card", "aria-label": "Conversation" }, list, typingLine, composerBox);

  replace(root, h("div", { class: "session" }, head, h("div", { class: "session-layout" }, side, mainCol)));

  // -- composer -------------------------------------------------------------------------
  const alertBox = h("p", { class: "notice error", role: "alert", hidden: true });
  const infoBox = h("p", { class: "notice", role: "status", hidden: true });
  const textInput = h("textarea", { name: "text", rows: 2, maxlength: String(MAX_TEXT_CHARS + 1000), placeholder: "Describe what you see, or ask the assistant…" });
  const sendBtn = h("button", { type: "submit", text: "Send" });
  const askBtn = h("button", { type: "button", class: "subtle", text: "Ask AI", title: "Send and ask the AI assistant, which answers from the manuals" });

  const kindSelect = h("select", { name: "kind" }, READING_KINDS.map(([value, label]) => h("option", { value, text: label })));
  const valueInput = h("input", { name: "value", type: "number", step: "any", inputmode: "decimal", required: true });
  const unitInput = h("input", { name: "unit", list: "session-units", maxlength: "16", value: READING_KINDS[0][2] });
  const noteInput = h("input", { name: "note", maxlength: "500" });
  const readingForm = h("form", { class: "reading-form", novalidate: true },
    h("div", { class: "inline-fields" },
      field("Reading", kindSelect), field("Value", valueInput), field("Unit", unitInput)),
    field("Note (optional)", noteInput),
    h("datalist", { id: "session-units" }, UNITS.map((u) => h("option", { value: u }))),
    h("button", { type: "submit", text: "Add reading" }));
  kindSelect.addEventListener("change", () => {
    const found = READING_KINDS.find(([value]) => value === kindSelect.value);
    if (found) unitInput.value = found[2];
  });

  const photoInput = h("input", { name: "photo", type: "file", accept: "image/*", capture: "environment" });
  const captionInput = h("input", { name: "caption", maxlength: String(MAX_CAPTION_CHARS) });
  const progressBar = h("div", { class: "bar" });
  const progress = h("div", { class: "progress upload-progress", role: "progressbar", "aria-label": "Photo upload", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0", hidden: true }, progressBar);
  const photoStatus = h("p", { class: "muted", "aria-live": "polite" });
  const photoForm = h("form", { class: "photo-form", novalidate: true },
    field("Photo", photoInput, `JPEG, PNG, WebP or HEIC, at most ${fmtBytes(MAX_ATTACHMENT_BYTES)}`),
    field("Caption (optional)", captionInput),
    h("button", { type: "submit", text: "Upload photo" }), progress, photoStatus);

  const messageForm = h("form", { class: "message-form", novalidate: true },
    field("Message", textInput, "Enter sends, Shift+Enter starts a new line."),
    h("div", { class: "composer-buttons" }, sendBtn, askBtn));

  const composer = h("div", { class: "composer" },
    alertBox, infoBox, messageForm,
    h("details", {}, h("summary", { text: "Add a reading" }), readingForm),
    h("details", {}, h("summary", { text: "Add a photo" }), photoForm));

  function showError(text) {
    alertBox.textContent = text;
    alertBox.hidden = false;
  }
  function clearError() {
    alertBox.hidden = true;
    alertBox.textContent = "";
  }
  function showInfo(text) {
    infoBox.textContent = text || "";
    infoBox.hidden = !text;
  }

  // -- rendering ------------------------------------------------------------------------------
  function sortKey(el) { return Number(el.dataset.sort); }

  // Place `el` by its sort key (offset); almost always at the end.
  function place(el) {
    const key = sortKey(el);
    const wasAtBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    let before = null;
    let node = list.lastElementChild;
    let guard = 0;
    while (node && guard++ < 100_000 && sortKey(node) > key) { before = node; node = node.previousElementSibling; }
    list.insertBefore(el, before);
    if (wasAtBottom || el.classList.contains("mine")) list.scrollTop = list.scrollHeight;
  }

  function senderLine(name, at, extra) {
    return h("div", { class: "msg-meta" },
      h("span", { class: "msg-sender", text: name }),
      at ? h("time", { datetime: at, text: fmtTime(at) }) : null,
      extra || null);
  }

  // "[1]" in an answer becomes a link to that citation's page.
  function answerBody(text, citations) {
    const byN = new Map((citations || []).map((c) => [String(c.n), c]));
    const body = h("div", { class: "msg-body" });
    let last = 0;
    for (const m of text.matchAll(/\[(\d{1,3})\]/g)) {
      const c = byN.get(m[1]);
      if (!c) continue;
      if (m.index > last) body.append(text.slice(last, m.index));
      const link = citationLink(c, `[${c.n}]`);
      link.classList.add("cite-marker");
      link.setAttribute("aria-label", `source ${c.n}: ${c.source}, page ${c.page}`);
      body.append(link);
      last = m.index + m[0].length;
    }
    if (last < text.length) body.append(text.slice(last));
    return body;
  }

  function messageElement(m) {
    const mine = m.sender_id === myId;
    const cls = ["msg", `msg-${m.kind}`];
    if (mine) cls.push("mine");
    const el = h("li", { class: cls.join(" "), "data-key": `m:${m.id}`, "data-id": m.id, "data-offset": String(m.offset), "data-kind": m.kind, "data-sort": String(m.offset) });
    if (m.kind === "reading" && m.reading) {
      const r = m.reading;
      const label = (READING_KINDS.find(([v]) => v === r.kind) || [null, r.kind])[1];
      el.append(senderLine(m.sender_name, m.at, h("span", { class: "badge", text: "reading" })),
        h("div", { class: "msg-body" },
          h("span", { class: "reading-kind", text: `${label}: ` }),
          h("span", { class: "reading-value", text: `${r.value}${r.unit ? ` ${r.unit}` : ""}` })),
        r.note ? h("div", { class: "muted", text: r.note }) : null);
    } else if (m.kind === "attachment" && m.attachment) {
      el.append(senderLine(m.sender_name, m.at, h("span", { class: "badge", text: "photo" })), attachmentBody(m.attachment));
    } else if (m.kind === "ai") {
      el.append(senderLine(m.sender_name || "AI Assistant", m.at, h("span", { class: "badge info", text: "AI" })),
        answerBody(m.text || "", m.citations), citationList(m.citations));
    } else if (m.kind === "ai_error") {
      el.append(senderLine(m.sender_name || "AI Assistant", m.at, h("span", { class: "badge danger", text: "AI error" })),
        h("div", { class: "msg-body", text: m.text || "The assistant could not answer." }));
    } else {
      el.append(senderLine(m.sender_name, m.at, m.ask_ai ? h("span", { class: "badge info", text: "asked the AI" }) : null),
        h("div", { class: "msg-body", text: m.text }));
    }
    return el;
  }

  function attachmentBody(a) {
    const name = a.name || "photo";
    const isImage = String(a.content_type || "").startsWith("image/");
    const wrap = h("div", { class: "msg-body" });
    if (a.url && isImage) {
      let retried = false;
      const img = h("img", { src: a.url, alt: a.caption ? `Photo: ${a.caption}` : `Photo ${name}`, loading: "lazy" });
      // A stored signed URL may have expired: ask for a fresh one, once.
      img.addEventListener("error", async () => {
        if (retried || !a.file_id) return;
        retried = true;
        try {
          const fresh = (await api("GET", `/api/v1/files/${a.file_id}/download`, { signal })).data;
          img.src = fresh.url;
          link.href = fresh.url;
        } catch {
          img.replaceWith(h("span", { class: "muted", text: `The photo ${name} is no longer available.` }));
        }
      });
      const link = h("a", { class: "thumb", href: a.url, target: "_blank", rel: "noopener", "aria-label": `Open photo ${name}` }, img);
      wrap.append(link);
    } else if (a.url) {
      wrap.append(h("a", { href: a.url, target: "_blank", rel: "noopener", text: `${name} (${fmtBytes(a.size_bytes)})` }));
    } else {
      wrap.append(h("span", { class: "muted", text: `${name} (deleted)` }));
    }
    if (a.caption) wrap.append(h("div", { text: a.caption }));
    return wrap;
  }

  function addMessage(m) {
    if (!m || !m.id) return;
    const key = `m:${m.id}`;
    if (items.has(key)) return; // a replay: already shown
    const el = messageElement(m);
    items.set(key, el);
    place(el);
    if (m.client_id && m.sender_id === myId) settle(m.client_id);
    if (typing.has(m.sender_id)) { cancel(typing.get(m.sender_id)); typing.delete(m.sender_id); renderParticipants(); }
    if ((m.kind === "ai" || m.kind === "ai_error") && m.reply_to) {
      answered.add(m.reply_to);
      const stream = streams.get(m.reply_to);
      if (stream) { stream.el.remove(); streams.delete(m.reply_to); items.delete(`s:${m.reply_to}`); }
      renderParticipants();
    }
  }

  function addSystem(offset, text) {
    if (typeof offset !== "number") return;
    const key = `e:${offset}`;
    if (items.has(key)) return;
    const el = h("li", { class: "msg msg-system", "data-key": key, "data-sort": String(offset), text });
    items.set(key, el);
    place(el);
  }

  function nameOf(id) {
    const p = participants.get(String(id));
    return p ? p.name : "Someone";
  }

  // The answer being written: one bubble per request, growing with each delta.
  function streamFor(requestId, sort, askedBy) {
    if (answered.has(requestId)) return null;
    let stream = streams.get(requestId);
    if (!stream) {
      const body = h("div", { class: "msg-body" });
      const el = h("li", { class: "msg msg-ai streaming", "data-key": `s:${requestId}`, "data-request-id": requestId, "data-sort": String(sort), "aria-busy": "true" },
        senderLine("AI Assistant", null, h("span", { class: "badge info", text: "writing…" })),
        askedBy ? h("div", { class: "visually-hidden", text: `Answering ${nameOf(askedBy)}` }) : null,
        body);
      stream = { el, body, parts: [] };
      streams.set(requestId, stream);
      items.set(`s:${requestId}`, el);
      place(el);
      renderParticipants();
    }
    return stream;
  }

  function onDelta(frame) {
    const stream = streamFor(frame.request_id, (frame.offset ?? 0) + 0.5);
    if (!stream) return;
    const index = Number.isInteger(frame.index) ? frame.index : stream.parts.length;
    if (stream.parts[index] !== undefined) return; // a repeated delta
    stream.parts[index] = String(frame.delta || "");
    let text = "";
    for (let i = 0; i < stream.parts.length; i += 1) text += stream.parts[i] ?? "";
    stream.body.textContent = text;
    if (list.scrollHeight - list.scrollTop - list.clientHeight < 160) list.scrollTop = list.scrollHeight;
  }

  function renderParticipants() {
    const people = [...participants.values()].sort((a, b) => (a.role === "ai") - (b.role === "ai") || String(a.joined_at).localeCompare(String(b.joined_at)));
    const aiBusy = streams.size > 0;
    replace(participantList, people.map((p) => {
      const isAi = p.role === "ai" || p.id === "ai";
      const left = Boolean(p.left_at);
      let label;
      if (isAi) label = aiBusy ? "writing an answer…" : "assistant";
      else if (left) label = "left";
      else if (p.online) label = p.devices > 1 ? `online (${p.devices} devices)` : "online";
      else label = "offline";
      if (!isAi && !left && typing.has(p.id)) label += ", typing…";
      return h("li", { class: `participant${left ? " left" : ""}`, "data-participant-id": p.id, "data-online": String(Boolean(p.online)) },
        h("span", { class: `presence-dot${isAi ? " ai" : p.online && !left ? " online" : ""}`, "aria-hidden": "true" }),
        h("span", { class: "name", text: p.id === myId ? `${p.name} (you)` : p.name }),
        p.role === "primary" ? h("span", { class: "badge", text: "primary" }) : null,
        h("span", { class: "presence-label", text: label }));
    }));
    const names = [...typing.keys()].filter((id) => id !== myId).map(nameOf);
    typingLine.textContent = names.length ? `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…` : "";
  }

  function renderHead() {
    if (!session) return;
    const eq = session.equipment;
    heading.textContent = session.title || (session.client_name ? `Session for ${session.client_name}` : "Diagnostic session");
    sub.textContent = [session.client_name, eq && [eq.manufacturer, eq.model].filter(Boolean).join(" "), session.mode && `${session.mode} mode`]
      .filter(Boolean).join(" · ");
    stateBadge.textContent = session.status === "completed" ? "completed" : "active";
    stateBadge.className = `badge ${session.status === "completed" ? "" : "ok"}`;
    replace(equipmentBox, eq ? [
      h("h2", { text: "Equipment" }),
      h("p", {}, [eq.name, [eq.manufacturer, eq.model].filter(Boolean).join(" "), eq.type, eq.serial && `serial ${eq.serial}`]
        .filter(Boolean).map((t, i) => [i ? h("br") : null, t])),
    ] : null);
    if (session.status === "completed") {
      readOnlyMode(session.summary ? `Completed. Summary: ${session.summary}` : "This session is completed (read-only).");
    }
  }

  function amParticipant() {
    const p = myId && participants.get(myId);
    return Boolean(p && !p.left_at);
  }

  function renderActions() {
    const active = session && session.status !== "completed" && !readOnly;
    const participant = amParticipant();
    const dispatcher = ["owner", "admin", "operator"].includes(me && me.role);
    inviteBtn.hidden = !(active && (participant || dispatcher) && can(me, "sessions.participate"));
    completeBtn.hidden = !(active && (participant || dispatcher) && can(me, "sessions.participate"));
    leaveBtn.hidden = !(active && participant);
  }

  function readOnlyMode(note) {
    readOnly = true;
    replace(composerBox, h("p", { class: "notice read-only-note", role: "status", text: note }));
    for (const p of pending.values()) if (p.el) p.el.remove();
    pending.clear();
    renderActions();
  }

  // -- state from the server -------------------------------------------------------------------
  function applyState(state) {
    for (const el of items.values()) el.remove();
    items.clear();
    streams.clear();
    answered.clear();
    participants.clear();
    session = { ...(session || {}), ...state.session };
    for (const p of state.participants || []) participants.set(String(p.id), p);
    for (const m of state.messages || []) addMessage(m);
    if (state.ai && state.ai.request_id) streamFor(state.ai.request_id, (state.offset ?? 0) + 0.5, state.ai.asked_by);
    for (const p of pending.values()) if (p.el) { items.set(p.el.dataset.key, p.el); place(p.el); }
    renderHead();
    renderParticipants();
    renderActions();
    const count = Number(state.session && state.session.message_count);
    if (!historyLoaded && Number.isFinite(count) && count > (state.messages || []).length) loadHistory();
  }

  // Older messages than the state's last 50 come from the REST history.
  async function loadHistory() {
    historyLoaded = true;
    try {
      for (let page = 0; page < HISTORY_MAX_PAGES; page += 1) {
        const body = await api("GET", `/api/v1/diagnostic/sessions/${sessionId}/messages`, { query: { limit: HISTORY_PAGE, offset: page * HISTORY_PAGE }, signal });
        if (disposed) return;
        for (const m of body.data) addMessage(m);
        if (body.data.length < HISTORY_PAGE) break;
      }
    } catch (err) {
      if (!disposed && err.name !== "AbortError") ctx.toast(`Older messages could not be loaded: ${describeError(err)}`, "error");
    }
  }

  function onFrame(frame) {
    if (disposed || !frame || typeof frame !== "object") return;
    switch (frame.type) {
      case "session_state":
        applyState(frame);
        break;
      case "resync":
        if (frame.state) applyState({ ...frame.state, offset: frame.state.offset ?? frame.offset });
        break;
      case "new_message":
      case "reading":
      case "attachment_added":
        addMessage(frame.message);
        break;
      case "ack":
        settle(frame.client_id);
        break;
      case "participant_joined": {
        const p = frame.participant;
        const known = participants.get(String(p.id));
        participants.set(String(p.id), { ...p, ...(known ? { online: known.online, devices: known.devices } : {}) });
        if (p.role !== "ai") addSystem(frame.offset, `${p.name} joined the session`);
        renderParticipants();
        renderActions();
        break;
      }
      case "participant_left": {
        const p = participants.get(String(frame.participant_id));
        if (p) participants.set(p.id, { ...p, left_at: frame.at, online: false });
        addSystem(frame.offset, `${nameOf(frame.participant_id)} left the session`);
        typing.delete(String(frame.participant_id));
        renderParticipants();
        renderActions();
        if (String(frame.participant_id) === myId) {
          if (socket) socket.close();
          readOnlyMode("You left this session.");
          setStatus("closed", "You left this session");
        }
        break;
      }
      case "presence": {
        const p = participants.get(String(frame.participant_id));
        if (p) participants.set(p.id, { ...p, online: Boolean(frame.online), devices: frame.devices });
        if (!frame.online) typing.delete(String(frame.participant_id));
        renderParticipants();
        break;
      }
      case "typing": {
        const id = String(frame.participant_id);
        if (id === myId) break;
        cancel(typing.get(id));
        if (frame.active === false) typing.delete(id);
        else typing.set(id, later(() => { typing.delete(id); renderParticipants(); }, TYPING_SHOWN_MS));
        renderParticipants();
        break;
      }
      case "ai_requested":
        streamFor(frame.request_id, frame.offset, frame.asked_by);
        break;
      case "ai_delta":
        onDelta(frame);
        break;
      case "session_completed":
        session = { ...(session || {}), status: "completed", summary: frame.summary };
        addSystem(frame.offset, `${frame.completed_by_name || "Someone"} completed the session${frame.summary ? `: ${frame.summary}` : ""}`);
        if (socket) socket.close();
        setStatus("closed", "completed");
        renderHead();
        break;
      case "error":
        onError(frame);
        break;
      default:
        break; // pong, session_created and future frames
    }
  }

  function onError(frame) {
    const p = frame.client_id ? pending.get(frame.client_id) : null;
    if (p && frame.error === "rate_limited" && p.tries < MAX_RETRIES) {
      p.tries += 1;
      const wait = Math.min(60, Math.max(0.5, Number(frame.retry_after) || 1));
      showInfo(`Sending too fast: trying again in ${Math.ceil(wait)} s.`);
      later(() => { showInfo(""); if (pending.has(frame.client_id) && socket) socket.send(p.frame); }, wait * 1000);
      return;
    }
    if (frame.client_id) settle(frame.client_id, true);
    showError(words(frame));
  }

  // The send with this client_id got its answer.
  function settle(clientId, failed = false) {
    const p = pending.get(clientId);
    if (!p) return;
    pending.delete(clientId);
    if (p.el) { p.el.remove(); items.delete(p.el.dataset.key); }
    if (failed && p.frame.type === "message" && !textInput.value) textInput.value = p.frame.text; // keep what they wrote
    if (!pending.size) showInfo("");
  }

  function send(frame, preview) {
    const clientId = newClientId(frame.type === "message" ? (frame.ask_ai ? "q" : "m") : frame.type[0]);
    const full = { ...frame, client_id: clientId, sent_at: new Date().toISOString() };
    let el = null;
    if (preview) {
      el = h("li", { class: "msg msg-text mine pending", "data-key": `p:${clientId}`, "data-sort": String(Number.MAX_SAFE_INTEGER) },
        senderLine("You", null, h("span", { class: "badge", text: "sending…" })), h("div", { class: "msg-body", text: preview }));
      items.set(el.dataset.key, el);
      place(el);
    }
    pending.set(clientId, { frame: full, el, tries: 0 });
    if (!socket || !socket.send(full)) showInfo("You are offline: this will be sent when the connection is back.");
    return clientId;
  }

  function flushPending() {
    for (const p of pending.values()) if (!socket.send(p.frame)) break;
  }

  // -- connection status ------------------------------------------------------------------------------
  function setStatus(kind, detail) {
    let text;
    if (kind === "live") text = "Live";
    else if (kind === "closed") text = detail === "completed" ? "Completed (read-only)" : statusText(kind, detail);
    else if (everLive) text = "Reconnecting…";
    else text = statusText(kind, detail);
    status.textContent = text;
    status.className = `live-status ${kind}`;
    status.dataset.status = kind;
  }

  function onStatus(kind, detail) {
    if (disposed) return;
    setStatus(kind, detail);
    if (kind === "live") {
      everLive = true;
      flushPending();
    }
    if (kind === "closed" && !readOnly && session && session.status !== "completed") {
      readOnlyMode(detail ? `Disconnected: ${detail}` : "Disconnected from the session.");
    }
  }

  // -- composer actions ------------------------------------------------------------------------------
  let lastTypingSent = 0;
  textInput.addEventListener("input", () => {
    clearError();
    const now = Date.now();
    if (textInput.value && now - lastTypingSent > TYPING_EVERY_MS && socket) {
      lastTypingSent = now;
      socket.send({ type: "typing", active: true });
    }
  });
  textInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitText(false);
    }
  });
  messageForm.addEventListener("submit", (event) => { event.preventDefault(); submitText(false); });
  askBtn.addEventListener("click", () => submitText(true));

  function submitText(askAi) {
    clearError();
    const text = textInput.value.trim();
    if (!text) {
      showError(askAi ? "Write your question for the assistant first." : "Write a message before sending.");
      textInput.focus();
      return;
    }
    if (text.length > MAX_TEXT_CHARS) {
      showError(`A message can be at most ${MAX_TEXT_CHARS} characters; this one has ${text.length}.`);
      textInput.focus();
      return;
    }
    if (askAi && streams.size) {
      showError(ERROR_WORDS.ai_busy);
      return;
    }
    send({ type: "message", text, ...(askAi ? { ask_ai: true } : {}) }, text);
    textInput.value = "";
    if (socket && lastTypingSent) { socket.send({ type: "typing", active: false }); lastTypingSent = 0; }
    textInput.focus();
  }

  readingForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearError();
    const raw = valueInput.value.trim();
    const value = Number(raw);
    if (!raw || !Number.isFinite(value)) {
      showError("Enter the reading's value as a number.");
      valueInput.focus();
      return;
    }
    const unit = unitInput.value.trim();
    if (unit.length > 16) {
      showError("The unit can be at most 16 characters.");
      unitInput.focus();
      return;
    }
    const note = noteInput.value.trim();
    send({ type: "reading", kind: kindSelect.value, value, unit, ...(note ? { note } : {}) });
    valueInput.value = "";
    noteInput.value = "";
  });

  photoForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    const file = photoInput.files && photoInput.files[0];
    if (!file) {
      showError("Choose a photo first.");
      photoInput.focus();
      return;
    }
    if (file.size > MAX_ATTACHMENT_BYTES) {
      showError(`That photo is ${fmtBytes(file.size)}; photos can be at most ${fmtBytes(MAX_ATTACHMENT_BYTES)}.`);
      return;
    }
    const caption = captionInput.value.trim();
    const data = new FormData();
    data.append("file", file, file.name);
    const button = photoForm.querySelector("button[type=submit]");
    button.disabled = true;
    progress.hidden = false;
    progressBar.style.width = "0%";
    photoStatus.textContent = `Uploading ${file.name}…`;
    try {
      const body = await upload("/api/v1/files", data, {
        signal,
        onProgress: (loaded, total) => {
          const pct = total ? Math.round((loaded / total) * 100) : 0;
          progressBar.style.width = `${pct}%`;
          progress.setAttribute("aria-valuenow", String(pct));
        },
      });
      progressBar.style.width = "100%";
      photoStatus.textContent = `${file.name} uploaded.`;
      send({ type: "attachment", file_id: body.data.id, ...(caption ? { caption } : {}) });
      photoInput.value = "";
      captionInput.value = "";
    } catch (err) {
      if (disposed) return;
      photoStatus.textContent = "";
      showError(`The photo was not uploaded: ${describeError(err)}`);
    } finally {
      button.disabled = false;
      later(() => { progress.hidden = true; }, 1500);
    }
  });

  // -- head actions: invite, complete, leave ---------------------------------------------------------------
  function openPanel(...children) {
    replace(panel, children);
    panel.hidden = false;
    const first = panel.querySelector("select, textarea, input, button");
    if (first) first.focus();
  }
  function closePanel(focusBack) {
    panel.hidden = true;
    replace(panel);
    if (focusBack) focusBack.focus();
  }
  function panelError() {
    return h("p", { class: "notice error", role: "alert", hidden: true });
  }

  inviteBtn.addEventListener("click", async () => {
    const select = h("select", { name: "technician" }, h("option", { value: "", text: "Loading technicians…" }));
    const err = panelError();
    const form = h("form", { class: "card", novalidate: true },
      h("h2", { text: "Invite a technician" }), err, field("Technician", select),
      h("div", { class: "row" }, h("button", { type: "submit", text: "Invite" }),
        h("button", { type: "button", class: "subtle", text: "Cancel", onclick: () => closePanel(inviteBtn) })));
    openPanel(form);
    try {
      const body = await api("GET", "/api/v1/technicians", { query: { limit: 200 }, signal });
      const open = body.data.filter((u) => !amIn(String(u.id)));
      replace(select, open.length
        ? [h("option", { value: "", text: "Choose…" }), open.map((u) => h("option", { value: u.id, text: `${u.name} (${u.role})` }))]
        : h("option", { value: "", text: "Every technician is already here" }));
    } catch (e) {
      err.textContent = describeError(e);
      err.hidden = false;
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!select.value) { err.textContent = "Choose a technician to invite."; err.hidden = false; return; }
      try {
        const p = (await api("POST", `/api/v1/diagnostic/sessions/${sessionId}/invite`, { json: { technician_id: select.value }, signal })).data;
        ctx.toast(`${p.name} was invited.`, "ok");
        closePanel(inviteBtn);
      } catch (e) {
        err.textContent = describeError(e);
        err.hidden = false;
      }
    });
  });

  function amIn(id) {
    const p = participants.get(id);
    return Boolean(p && !p.left_at);
  }

  completeBtn.addEventListener("click", () => {
    const summary = h("textarea", { name: "summary", required: true, maxlength: "10000" });
    const err = panelError();
    const form = h("form", { class: "card", novalidate: true },
      h("h2", { text: "Complete the session" }), err,
      field("Summary", summary, "What was found and done. The session becomes read-only."),
      h("div", { class: "row" }, h("button", { type: "submit", text: "Complete session" }),
        h("button", { type: "button", class: "subtle", text: "Cancel", onclick: () => closePanel(completeBtn) })));
    openPanel(form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!summary.value.trim()) { err.textContent = "Write a short summary first."; err.hidden = false; summary.focus(); return; }
      try {
        const done = (await api("PUT", `/api/v1/diagnostic/sessions/${sessionId}/complete`, { json: { summary: summary.value.trim() }, signal })).data;
        session = { ...session, ...done };
        closePanel(null);
        renderHead();
        ctx.toast("The session is completed.", "ok");
      } catch (e) {
        err.textContent = describeError(e);
        err.hidden = false;
      }
    });
  });

  leaveBtn.addEventListener("click", () => {
    const err = panelError();
    openPanel(h("div", { class: "card" },
      h("h2", { text: "Leave this session?" }), err,
      h("p", { text: "You will stop receiving its messages. Someone in the session can invite you again." }),
      h("div", { class: "row" },
        h("button", { type: "button", class: "danger", text: "Leave session", onclick: async () => {
          try {
            await api("POST", `/api/v1/diagnostic/sessions/${sessionId}/leave`, { json: {}, signal });
            if (socket) socket.close();
            ctx.toast("You left the session.", "ok");
            ctx.navigate("#/sessions");
          } catch (e) {
            err.textContent = describeError(e);
            err.hidden = false;
          }
        } }),
        h("button", { type: "button", class: "subtle", text: "Stay", onclick: () => closePanel(leaveBtn) }))));
  });

  // -- start ------------------------------------------------------------------------------------------------
  const cleanup = () => {
    disposed = true;
    aborter.abort();
    for (const t of timers) clearTimeout(t);
    timers.clear();
    if (socket) socket.close();
    closeCitation();
  };

  let detail;
  try {
    detail = (await api("GET", `/api/v1/diagnostic/sessions/${sessionId}`, { signal })).data;
  } catch (err) {
    replace(root, h("h1", { text: "Diagnostic session" }),
      h("p", { class: "notice error", role: "alert", text: err.status === 404 ? "There is no such session in your organisation." : describeError(err) }),
      h("p", {}, h("a", { href: "#/sessions", text: "Back to the sessions" })));
    return cleanup;
  }
  session = detail;
  for (const p of detail.participants || []) participants.set(String(p.id), { ...p, online: false, devices: 0 });
  renderHead();
  renderParticipants();

  const live = detail.status !== "completed" && amParticipant() && can(me, "sessions.participate");
  if (!live) {
    // Read-only: the full history over REST (viewers, dispatchers who are not in it, completed sessions).
    setStatus("closed", detail.status === "completed" ? "completed" : "read-only");
    if (detail.status !== "completed") {
      readOnlyMode(can(me, "sessions.participate")
        ? "You are not a participant of this session: you can read it; a participant can invite you."
        : "You can read this session; your role does not take part in sessions.");
    }
    historyLoaded = false;
    await loadHistory();
    renderActions();
    return cleanup;
  }

  replace(composerBox, composer);
  renderActions();
  socket = new LiveSocket({
    path: `/api/v1/diagnostic/sessions/${sessionId}/ws`,
    auth: "query",
    onMessage: onFrame,
    onStatus,
  });
  return cleanup;
}
