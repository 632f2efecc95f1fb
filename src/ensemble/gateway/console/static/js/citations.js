// Citations of the manuals: links, and a viewer that shows the cited page.
//
// The original file is behind the bearer token (GET /api/v1/knowledge/
// documents/{id}/content), so a plain link cannot open it: the viewer fetches
// it with the token and shows the cited page itself.  Markdown and text
// manuals are split into pages exactly as the server's extractor does
// (src/ensemble/knowledge/_extract.py), so "page 12" is the page the passage
// came from.  A PDF is shown by the browser's own viewer at `#page=N`.
//
// The viewer is a modal <dialog> (focus stays in it, Escape closes it), so a
// technician reads the page without leaving the live session.  Each link also
// has a real address, #/knowledge?doc=<id>&page=<n>, which the knowledge view
// opens: a new tab works too.

import { api, describeError } from "./api.js";
import { h, replace } from "./ui.js";

const MAX_CACHED = 6;
const cache = new Map(); // document id -> Promise<{doc, blob, pages}>

export function citationHref(citation) {
  const params = new URLSearchParams({ doc: citation.document_id, page: String(citation.page) });
  return `#/knowledge?${params}`;
}

function citationLabel(c) {
  return `${c.source}, page ${c.page}`;
}

// <a> to one cited page; a click opens the viewer instead of navigating.
export function citationLink(citation, text = citationLabel(citation)) {
  return h("a", {
    href: citationHref(citation),
    class: "citation",
    "data-document-id": citation.document_id,
    "data-page": String(citation.page),
    onclick: (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      openCitation(citation, event.currentTarget);
    },
    text,
  });
}

// The numbered list under an answer: "[1] Carrier 24ACC6 Service Manual, page 42".
export function citationList(citations) {
  if (!Array.isArray(citations) || !citations.length) return null;
  return h("div", { class: "citations-wrap" },
    h("div", { class: "citations-label", text: "Sources" }),
    h("ol", { class: "citations", "aria-label": "Sources" },
      citations.map((c) => h("li", {}, citationLink(c, `[${c.n}] ${citationLabel(c)}`)))));
}

function load(documentId) {
  if (!cache.has(documentId)) {
    const promise = (async () => {
      const doc = (await api("GET", `/api/v1/knowledge/documents/${encodeURIComponent(documentId)}`)).data;
      const blob = await api("GET", `/api/v1/knowledge/documents/${encodeURIComponent(documentId)}/content`);
      let pages = null;
      if (doc.format !== "pdf") {
        const text = await (blob instanceof Blob ? blob.text() : Promise.resolve(String(blob)));
        pages = doc.format === "markdown" ? markdownPages(text) : textPages(text);
      }
      return { doc, blob, pages };
    })();
    promise.catch(() => cache.delete(documentId));
    cache.set(documentId, promise);
    while (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value);
  }
  return cache.get(documentId);
}

// -- page splitting: the same rules as knowledge/_extract.py ------------------------

const FRONT_MATTER = /^---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)/;
const PAGEBREAK = /^\s*<!--\s*pagebreak\s*-->\s*$/im;
const PAGEBREAK_SPLIT = /\f|^\s*<!--\s*pagebreak\s*-->\s*$/gim;
const H1 = /^# \S/gm;

function normalise(text) {
  return text.replace(/^\uFEFF/, "").replace(/\r\n/g, "\n").replace(/\r/g, "\n");
}

function stripNewlines(page) {
  return page.replace(/^\n+|\n+$/g, "");
}

export function markdownPages(raw) {
  let text = normalise(raw);
  const front = FRONT_MATTER.exec(text);
  if (front) text = text.slice(front[0].length);
  if (text.includes("\f") || PAGEBREAK.test(text)) return text.split(PAGEBREAK_SPLIT).map(stripNewlines);
  const starts = [...text.matchAll(H1)].map((m) => m.index);
  if (!starts.length) return [stripNewlines(text)];
  const bounds = [0, ...starts.slice(1), text.length];
  const pages = [];
  for (let i = 0; i + 1 < bounds.length; i += 1) pages.push(stripNewlines(text.slice(bounds[i], bounds[i + 1])));
  return pages;
}

export function textPages(raw) {
  return normalise(raw).split("\f").map(stripNewlines);
}

// -- a small, safe Markdown renderer (DOM nodes only, never innerHTML) -----------------

function inline(text) {
  // **bold** and `code`; everything else is text.
  const out = [];
  const re = /(\*\*[^*]+\*\*|`[^`]+`)/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const token = m[0];
    out.push(token.startsWith("**") ? h("strong", { text: token.slice(2, -2) }) : h("code", { text: token.slice(1, -1) }));
    last = m.index + token.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function tableRow(line) {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((cell) => cell.trim());
}

export function renderMarkdown(text) {
  const root = h("div", { class: "manual-page" });
  const lines = text.split("\n");
  let i = 0;
  let guard = 0;
  while (i < lines.length && guard++ < 100_000) {
    const line = lines[i];
    if (!line.trim()) { i += 1; continue; }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      root.append(h(heading[1].length <= 2 ? "h3" : "h4", {}, inline(heading[2])));
      i += 1;
      continue;
    }
    if (/^\s*\|/.test(line)) {
      const rows = [];
      while (i < lines.length && /^\s*\|/.test(lines[i])) { rows.push(lines[i]); i += 1; }
      const cells = rows.filter((r) => !/^\s*\|?\s*:?-{2,}/.test(r)).map(tableRow);
      const [head, ...body] = cells;
      root.append(h("div", { class: "table-wrap" }, h("table", {},
        head ? h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, inline(c))))) : null,
        h("tbody", {}, body.map((r) => h("tr", {}, r.map((c) => h("td", {}, inline(c)))))))));
      continue;
    }
    if (/^\s*([-*+]|\d+[.)])\s+/.test(line)) {
      const ordered = /^\s*\d/.test(line);
      const items = [];
      while (i < lines.length && /^\s*([-*+]|\d+[.)])\s+/.test(lines[i])) {
        items.push(lines[i].replace(/^\s*([-*+]|\d+[.)])\s+/, ""));
        i += 1;
      }
      root.append(h(ordered ? "ol" : "ul", {}, items.map((t) => h("li", {}, inline(t)))));
      continue;
    }
    if (/^```/.test(line)) {
      const body = [];
      i += 1;
      while (i < lines.length && !/^```/.test(lines[i])) { body.push(lines[i]); i += 1; }
      i += 1;
      root.append(h("pre", { text: body.join("\n") }));
      continue;
    }
    const para = [];
    while (i < lines.length && lines[i].trim() && !/^(#{1,6}\s|\s*\||\s*([-*+]|\d+[.)])\s+|```)/.test(lines[i])) {
      para.push(lines[i].trim());
      i += 1;
    }
    root.append(h("p", {}, inline(para.join(" "))));
  }
  return root;
}

// -- the viewer ------------------------------------------------------------------------------

// Render the cited page of a manual into `container`; returns a cleanup function.
export function renderManualPage(container, { documentId, page }, { onTitle } = {}) {
  let current = Math.max(1, Number(page) || 1);
  let objectUrl = null;
  let alive = true;
  const heading = h("h2", { text: "Loading the manual…" });
  const body = h("div", { class: "manual-body", "aria-live": "polite" }, h("p", { class: "muted", text: "Loading…" }));
  const prev = h("button", { type: "button", class: "subtle", text: "← Previous page", disabled: true });
  const next = h("button", { type: "button", class: "subtle", text: "Next page →", disabled: true });
  const nav = h("div", { class: "page-nav" }, prev, next);
  replace(container, h("div", { class: "manual-head" }, heading, nav), body);

  const show = ({ doc, blob, pages }) => {
    if (!alive) return;
    const title = `${doc.source}`;
    if (onTitle) onTitle(title);
    if (doc.format === "pdf") {
      if (!objectUrl) objectUrl = URL.createObjectURL(blob instanceof Blob ? new Blob([blob], { type: "application/pdf" }) : blob);
      heading.textContent = `${title} — page ${current} of ${doc.pages}`;
      nav.hidden = true;
      replace(body,
        h("iframe", { class: "manual-frame", src: `${objectUrl}#page=${current}`, title: `${title}, page ${current}` }),
        h("p", {}, h("a", { href: `${objectUrl}#page=${current}`, download: doc.filename, text: `Download the PDF (${doc.filename})` }),
          ` and open it at page ${current} if it does not show above.`));
      return;
    }
    const total = pages.length;
    current = Math.min(Math.max(1, current), total);
    heading.textContent = `${title} — page ${current} of ${total}`;
    prev.disabled = current <= 1;
    next.disabled = current >= total;
    const text = pages[current - 1] || "";
    replace(body,
      h("p", { class: "muted", text: [doc.manufacturer, doc.model, doc.equipment_type].filter(Boolean).join(" · ") || null }),
      doc.format === "markdown" ? renderMarkdown(text) : h("div", { class: "manual-page" }, h("pre", { text })));
  };

  const fail = (err) => {
    if (!alive) return;
    heading.textContent = "The manual could not be opened";
    replace(body, h("p", { class: "notice error", role: "alert", text: describeError(err) }));
  };

  const go = (delta) => {
    current += delta;
    load(documentId).then(show, fail);
  };
  prev.addEventListener("click", () => go(-1));
  next.addEventListener("click", () => go(1));
  load(documentId).then(show, fail);

  return () => {
    alive = false;
    if (objectUrl) URL.revokeObjectURL(objectUrl);
  };
}

let openDialog = null;

// Open the cited page in a modal dialog; focus returns to `opener` on close.
export function openCitation(citation, opener = null) {
  if (openDialog) openDialog.close();
  const close = h("button", { type: "button", class: "subtle", text: "Close", "aria-label": "Close the manual" });
  const content = h("div", {});
  const dialog = h("dialog", { class: "manual", "aria-label": `${citation.source}, page ${citation.page}` },
    content, h("div", { class: "manual-body row" }, close));
  document.body.append(dialog);
  const cleanup = renderManualPage(content, { documentId: citation.document_id, page: citation.page });
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    cleanup();
    dialog.remove();
    if (openDialog === dialog) openDialog = null;
    if (opener && opener.isConnected) opener.focus();
  });
  openDialog = dialog;
  dialog.showModal();
  close.focus();
  return dialog;
}

// Close the viewer (a view that unmounts calls this).
export function closeCitation() {
  if (openDialog) openDialog.close();
}
