// Small DOM helpers shared by every view: no framework, no innerHTML with data.

// h("button", {class: "danger", onclick: fn, "aria-label": "Delete"}, "Delete")
// Attributes: class, text (textContent), on<event> (a function), hidden/disabled
// and other booleans, dataset via data-*, aria-*; any other name is set as an
// attribute.  Children: nodes, strings (as text), arrays, null/false (skipped).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, "");
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

// Replace all children of el.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A labelled form field: field("Email", h("input", {type: "email", name: "email"}))
// The input gets an id and the label points at it.
let fieldCounter = 0;
export function field(labelText, input, hint) {
  if (!input.id) input.id = `f-${++fieldCounter}`;
  const parts = [h("label", { for: input.id, text: labelText }), input];
  if (hint) {
    const hintEl = h("div", { class: "hint", id: `${input.id}-hint`, text: hint });
    input.setAttribute("aria-describedby", hintEl.id);
    parts.push(hintEl);
  }
  return h("div", { class: "field" }, parts);
}

const TOAST_MS = 6000;
const MAX_TOASTS = 4;

// Show a short message to the person; kind is "info", "ok" or "error".
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box) return;
  while (box.children.length >= MAX_TOASTS) box.firstElementChild.remove();
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : null, text: message });
  box.append(el);
  setTimeout(() => el.remove(), TOAST_MS);
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "—";
  let s = Math.max(0, Math.round(Number(seconds)));
  const hours = Math.floor(s / 3600);
  s -= hours * 3600;
  const minutes = Math.floor(s / 60);
  s -= minutes * 60;
  if (hours) return `${hours} h ${minutes} min`;
  if (minutes) return `${minutes} min ${s} s`;
  return `${s} s`;
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

// Whether the signed-in role may do `permission` (from GET /api/v1/me).
// The server checks every call; this only hides controls that would fail.
export function can(me, permission) {
  return Boolean(me && Array.isArray(me.permissions) && me.permissions.includes(permission));
}
