// The knowledge base: search the manuals (with filters), read a cited page,
// upload a manual (owners and admins) and see the ingestion outcome, list the
// manuals and delete the organisation's own.
//
// #/knowledge?doc=<id>&page=<n> opens that page of a manual (the address every
// citation link carries, so a citation opened in a new tab lands here).

import { api, upload, describeError } from "../api.js";
import { h, replace, field, fmtTime, fmtBytes, can } from "../ui.js";
import { citationLink, renderManualPage, closeCitation } from "../citations.js";

export const title = "Knowledge";

const CATEGORIES = ["specs", "installation", "charging", "operation", "troubleshooting", "maintenance", "general"];
const MAX_SNIPPET_CHARS = 600;
const STOP_WORDS = new Set(["the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "is", "are", "what", "why", "how", "with", "my", "it", "at", "do", "does", "be"]);

export async function mount(root, ctx) {
  const me = ctx.me;
  const aborter = new AbortController();
  const signal = aborter.signal;
  let disposed = false;
  const cleanups = [];
  const query = ctx.params.query || new URLSearchParams();

  // A single manual page (a citation's address).
  const docId = query.get("doc");
  if (docId) {
    const box = h("section", { class: "card manual-standalone" });
    replace(root, h("p", {}, h("a", { href: "#/knowledge", text: "← Knowledge base" })), box);
    cleanups.push(renderManualPage(box, { documentId: docId, page: Number(query.get("page")) || 1 }));
    return () => { for (const fn of cleanups) fn(); };
  }

  // -- search ---------------------------------------------------------------------------------
  const qInput = h("input", { name: "q", type: "search", required: true, maxlength: "500", placeholder: "e.g. low suction pressure iced coil" });
  const manufacturerInput = h("input", { name: "manufacturer", list: "kb-manufacturers", maxlength: "200", autocomplete: "off" });
  const modelInput = h("input", { name: "model", list: "kb-models", maxlength: "200", autocomplete: "off" });
  const typeInput = h("input", { name: "equipment_type", list: "kb-types", maxlength: "200", autocomplete: "off" });
  const categorySelect = h("select", { name: "category" }, h("option", { value: "", text: "Any" }), CATEGORIES.map((c) => h("option", { value: c, text: c })));
  const kSelect = h("select", { name: "k" }, [5, 10, 20].map((k) => h("option", { value: String(k), text: String(k) })));
  const manufacturers = h("datalist", { id: "kb-manufacturers" });
  const models = h("datalist", { id: "kb-models" });
  const types = h("datalist", { id: "kb-types" });
  const searchError = h("p", { class: "notice error", role: "alert", hidden: true });
  const results = h("div", { class: "search-results", "aria-live": "polite" });
  const searchForm = h("form", { role: "search", "aria-label": "Search the manuals", novalidate: true },
    searchError,
    field("Question or keywords", qInput),
    h("div", { class: "inline-fields" },
      field("Manufacturer", manufacturerInput), field("Model", modelInput),
      field("Equipment type", typeInput), field("Category", categorySelect), field("Results", kSelect)),
    manufacturers, models, types,
    h("div", { class: "row" }, h("button", { type: "submit", text: "Search" })));

  // -- documents --------------------------------------------------------------------------------
  const docsBox = h("div", { "aria-live": "polite" }, h("p", { class: "muted", text: "Loading manuals…" }));
  const scopeSelect = h("select", { name: "scope" },
    h("option", { value: "all", text: "All manuals" }), h("option", { value: "tenant", text: "Our organisation's" }), h("option", { value: "global", text: "Platform manuals" }));

  const uploadBox = h("div", {});
  replace(root,
    h("h1", { text: "Knowledge base" }),
    h("div", { class: "stack" },
      h("section", { class: "card", "aria-labelledby": "kb-search" }, h("h2", { id: "kb-search", text: "Search the manuals" }), searchForm, results),
      uploadBox,
      h("section", { class: "card", "aria-labelledby": "kb-docs" },
        h("div", { class: "row spread" }, h("h2", { id: "kb-docs", text: "Manuals" }), h("div", {}, field("Show", scopeSelect))),
        docsBox)));

  // -- search ---------------------------------------------------------------------------------
  searchForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    searchError.hidden = true;
    const q = qInput.value.trim();
    if (!q) {
      searchError.textContent = "Type a question or some keywords to search for.";
      searchError.hidden = false;
      qInput.focus();
      return;
    }
    replace(results, h("p", { class: "muted", text: "Searching…" }));
    try {
      const body = await api("GET", "/api/v1/knowledge/search", {
        query: {
          q, manufacturer: manufacturerInput.value.trim(), model: modelInput.value.trim(),
          equipment_type: typeInput.value.trim(), category: categorySelect.value, k: kSelect.value,
        },
        signal,
      });
      if (!disposed) renderResults(q, body.data);
    } catch (err) {
      if (disposed || err.name === "AbortError") return;
      replace(results);
      searchError.textContent = `The search failed: ${describeError(err)}`;
      searchError.hidden = false;
    }
  });

  function renderResults(q, hits) {
    if (!hits.length) {
      replace(results, h("p", { class: "empty", text: "Nothing in the manuals matches. Try other words, or fewer filters." }));
      return;
    }
    const terms = queryTerms(q);
    replace(results,
      h("p", { class: "muted", text: `${hits.length} passage${hits.length === 1 ? "" : "s"}` }),
      h("ol", { class: "results" }, hits.map((hit) => h("li", { class: "result", "data-document-id": hit.citation.document_id, "data-page": String(hit.citation.page) },
        h("div", { class: "result-title" }, citationLink(hit.citation, `${hit.citation.source} — page ${hit.citation.page}`)),
        h("div", { class: "result-meta", text: [hit.heading, hit.manufacturer, hit.model, hit.category, hit.scope === "tenant" ? "your organisation" : null].filter(Boolean).join(" · ") }),
        h("p", { class: "snippet" }, highlight(snippet(hit.text, terms), terms))))));
  }

  // -- upload -------------------------------------------------------------------------------------
  if (can(me, "knowledge.manage")) {
    const fileInput = h("input", { name: "file", type: "file", accept: ".pdf,.md,.markdown,.txt,.text,application/pdf,text/markdown,text/plain", required: true });
    const sourceInput = h("input", { name: "source", maxlength: "200" });
    const upManufacturer = h("input", { name: "manufacturer", list: "kb-manufacturers", maxlength: "200" });
    const upModel = h("input", { name: "model", maxlength: "200" });
    const upType = h("input", { name: "equipment_type", list: "kb-types", maxlength: "200" });
    const upCategory = h("select", { name: "category" }, h("option", { value: "", text: "Infer per section" }), CATEGORIES.map((c) => h("option", { value: c, text: c })));
    const bar = h("div", { class: "bar" });
    const progress = h("div", { class: "progress", role: "progressbar", "aria-label": "Upload progress", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0", hidden: true }, bar);
    const progressText = h("p", { class: "muted", "aria-live": "polite" });
    const outcome = h("div", { class: "outcome", "aria-live": "polite" });
    const submit = h("button", { type: "submit", text: "Upload and index" });
    const form = h("form", { novalidate: true },
      field("Manual", fileInput, "PDF (with a text layer), Markdown or plain text."),
      h("div", { class: "inline-fields" },
        field("Name cited (optional)", sourceInput), field("Manufacturer", upManufacturer),
        field("Model", upModel), field("Equipment type", upType), field("Category", upCategory)),
      h("div", { class: "row" }, submit), progress, progressText, outcome);
    replace(uploadBox, h("section", { class: "card", "aria-labelledby": "kb-upload" }, h("h2", { id: "kb-upload", text: "Upload a manual" }), form));

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = fileInput.files && fileInput.files[0];
      replace(outcome);
      if (!file) {
        replace(outcome, h("p", { class: "notice error", role: "alert", text: "Choose the manual's file first." }));
        fileInput.focus();
        return;
      }
      if (file.size === 0) {
        replace(outcome, h("p", { class: "notice error", role: "alert", text: `${file.name} is empty.` }));
        return;
      }
      const data = new FormData();
      data.append("file", file, file.name);
      for (const [name, input] of [["source", sourceInput], ["manufacturer", upManufacturer], ["model", upModel], ["equipment_type", upType], ["category", upCategory]]) {
        if (input.value.trim()) data.append(name, input.value.trim());
      }
      submit.disabled = true;
      progress.hidden = false;
      bar.style.width = "0%";
      progress.setAttribute("aria-valuenow", "0");
      progressText.textContent = `Uploading ${file.name} (${fmtBytes(file.size)})…`;
      try {
        const body = await upload("/api/v1/knowledge/documents", data, {
          signal,
          onProgress: (loaded, total) => {
            const pct = total ? Math.round((loaded / total) * 100) : 0;
            bar.style.width = `${pct}%`;
            progress.setAttribute("aria-valuenow", String(pct));
            progressText.textContent = pct < 100 ? `Uploading ${file.name}: ${pct}%` : `Uploaded; reading and indexing ${file.name}…`;
          },
        });
        if (disposed) return;
        bar.style.width = "100%";
        progress.setAttribute("aria-valuenow", "100");
        progressText.textContent = "";
        const doc = body.data;
        const what = { created: "Added", replaced: `Replaced the previous version (now version ${doc.version})`, unchanged: "Already indexed: this exact file was uploaded before, nothing changed" }[doc.outcome] || doc.outcome;
        replace(outcome, h("p", { class: "notice", role: "status", "data-outcome": doc.outcome },
          h("strong", { text: `${what}: ` }), `${doc.source} — ${doc.pages} page${doc.pages === 1 ? "" : "s"}, ${doc.chunks} passage${doc.chunks === 1 ? "" : "s"} indexed. It is searchable now.`));
        fileInput.value = "";
        loadDocuments();
      } catch (err) {
        if (disposed) return;
        progress.hidden = true;
        progressText.textContent = "";
        replace(outcome, h("p", { class: "notice error", role: "alert", text: `${file.name} was not added: ${describeError(err)}` }));
      } finally {
        submit.disabled = false;
      }
    });
  }

  // -- documents -------------------------------------------------------------------------------------
  scopeSelect.addEventListener("change", () => loadDocuments());

  async function loadDocuments() {
    try {
      const body = await api("GET", "/api/v1/knowledge/documents", { query: { scope: scopeSelect.value, limit: 200 }, signal });
      if (disposed) return;
      renderDocuments(body.data, body.meta);
      fillSuggestions(body.data);
    } catch (err) {
      if (disposed || err.name === "AbortError") return;
      replace(docsBox, h("p", { class: "notice error", role: "alert", text: `The manuals could not be listed: ${describeError(err)}` }));
    }
  }

  function fillSuggestions(docs) {
    const uniq = (values) => [...new Set(values.filter(Boolean))].sort();
    replace(manufacturers, uniq(docs.map((d) => d.manufacturer)).map((v) => h("option", { value: v })));
    replace(models, uniq(docs.map((d) => d.model)).map((v) => h("option", { value: v })));
    replace(types, uniq(docs.map((d) => d.equipment_type)).map((v) => h("option", { value: v })));
  }

  function renderDocuments(docs, meta) {
    if (!docs.length) {
      replace(docsBox, h("p", { class: "empty", text: "No manuals here yet." }));
      return;
    }
    const mayDelete = can(me, "knowledge.manage");
    replace(docsBox,
      h("div", { class: "table-wrap" }, h("table", {},
        h("caption", { class: "visually-hidden", text: "Manuals" }),
        h("thead", {}, h("tr", {}, ["Manual", "Equipment", "Format", "Pages", "Scope", "Updated", ""].map((t) => h("th", { scope: "col", text: t })))),
        h("tbody", {}, docs.map((d) => h("tr", { "data-document-id": d.id },
          h("td", {}, citationLink({ document_id: d.id, page: 1, source: d.source }, d.source)),
          h("td", { text: [d.manufacturer, d.model, d.equipment_type].filter(Boolean).join(" · ") || "—" }),
          h("td", { text: `${d.format} · ${fmtBytes(d.size_bytes)}` }),
          h("td", { text: String(d.pages) }),
          h("td", { text: d.scope === "tenant" ? "ours" : "platform" }),
          h("td", { text: `${fmtTime(d.updated_at)}${d.version > 1 ? ` (v${d.version})` : ""}` }),
          h("td", {}, mayDelete && d.scope === "tenant"
            ? h("button", { type: "button", class: "subtle danger-text", "aria-label": `Delete ${d.source}`, text: "Delete", onclick: (e) => confirmDelete(d, e.currentTarget) })
            : null)))))),
      meta && meta.total > docs.length ? h("p", { class: "muted", text: `Showing ${docs.length} of ${meta.total}.` }) : null);
  }

  function confirmDelete(doc, button) {
    const cell = button.parentElement;
    const keep = h("button", { type: "button", class: "subtle", text: "Keep" });
    const yes = h("button", { type: "button", class: "danger", text: `Delete ${doc.source}` });
    const box = h("div", { class: "row", role: "group", "aria-label": `Delete ${doc.source}?` }, yes, keep);
    replace(cell, box);
    yes.focus();
    keep.addEventListener("click", () => loadDocuments());
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        await api("DELETE", `/api/v1/knowledge/documents/${doc.id}`, { signal });
        ctx.toast(`${doc.source} was deleted.`, "ok");
      } catch (err) {
        if (!disposed) ctx.toast(`${doc.source} was not deleted: ${describeError(err)}`, "error");
      }
      if (!disposed) loadDocuments();
    });
  }

  await loadDocuments();
  const initial = query.get("q");
  if (initial) {
    qInput.value = initial;
    searchForm.requestSubmit();
  }
  return () => {
    disposed = true;
    aborter.abort();
    closeCitation();
    for (const fn of cleanups) fn();
  };
}

// -- highlighting -------------------------------------------------------------------------------------

function queryTerms(q) {
  return [...new Set(q.toLowerCase().split(/[^\p{L}\p{N}-]+/u).filter((t) => t.length > 1 && !STOP_WORDS.has(t)))];
}

function escapeRe(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// The part of a passage around its first matching term, at most MAX_SNIPPET_CHARS.
function snippet(text, terms) {
  const clean = String(text || "").replace(/\s+\n/g, "\n");
  if (clean.length <= MAX_SNIPPET_CHARS) return clean;
  const lower = clean.toLowerCase();
  const first = Math.min(...terms.map((t) => lower.indexOf(t)).filter((i) => i >= 0), clean.length);
  const start = first === clean.length ? 0 : Math.max(0, first - 120);
  return `${start > 0 ? "…" : ""}${clean.slice(start, start + MAX_SNIPPET_CHARS)}${start + MAX_SNIPPET_CHARS < clean.length ? "…" : ""}`;
}

// Text with the query's terms (word starts, so "compressor" marks "compressors") in <mark>.
function highlight(text, terms) {
  if (!terms.length) return [text];
  const re = new RegExp(`(?<![\\p{L}\\p{N}])(${terms.map(escapeRe).join("|")})[\\p{L}\\p{N}]*`, "giu");
  const out = [];
  let last = 0;
  let guard = 0;
  for (const m of text.matchAll(re)) {
    if (guard++ > 5000) break;
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(h("mark", { text: m[0] }));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}
