// The tenant's diagnostic sessions, and a form to start a new one.
//
// A session is for a client (and optionally a piece of its equipment, whose
// manufacturer and model the AI assistant uses to pick the manuals).  If the
// client is new, it is created first (technicians may create clients).

import { api, describeError } from "../api.js";
import { h, replace, field, fmtTime, can } from "../ui.js";

export const title = "Diagnostic sessions";

const PAGE = 50;
const MODES = [["guided", "Guided"], ["expert", "Expert"], ["quick", "Quick"]];

export async function mount(root, ctx) {
  const me = ctx.me;
  const aborter = new AbortController();
  const signal = aborter.signal;
  let disposed = false;
  let offset = 0;

  const statusSelect = h("select", { name: "status" },
    h("option", { value: "active", text: "Active" }),
    h("option", { value: "completed", text: "Completed" }),
    h("option", { value: "", text: "All" }));
  const mineBox = h("input", { type: "checkbox", name: "mine", class: "checkbox" });
  const listBox = h("div", { "aria-live": "polite" }, h("p", { class: "muted", text: "Loading sessions…" }));
  const pager = h("div", { class: "row" });
  const startBox = h("div", {});

  replace(root,
    h("div", { class: "row spread" }, h("h1", { text: "Diagnostic sessions" })),
    h("div", { class: "split" },
      h("section", { class: "card", "aria-labelledby": "sessions-heading" },
        h("h2", { id: "sessions-heading", text: "Sessions" }),
        h("form", { class: "inline-fields", role: "search", "aria-label": "Filter sessions", onsubmit: (e) => { e.preventDefault(); offset = 0; load(); } },
          field("Status", statusSelect),
          myId() ? h("div", { class: "field" }, h("label", {}, mineBox, " Only sessions I took part in")) : null),
        listBox, pager),
      startBox));

  statusSelect.addEventListener("change", () => { offset = 0; load(); });
  mineBox.addEventListener("change", () => { offset = 0; load(); });

  function myId() {
    return me && me.user ? me.user.id : null;
  }

  async function load() {
    try {
      const body = await api("GET", "/api/v1/diagnostic/sessions", {
        query: { status: statusSelect.value, technician_id: mineBox.checked ? myId() : null, limit: PAGE, offset, sort: "-updated_at" },
        signal,
      });
      if (disposed) return;
      render(body);
    } catch (err) {
      if (disposed || err.name === "AbortError") return;
      replace(listBox, h("p", { class: "notice error", role: "alert", text: `The sessions could not be loaded: ${describeError(err)}` }));
    }
  }

  function render(body) {
    const rows = body.data;
    if (!rows.length) {
      replace(listBox, h("p", { class: "empty", text: statusSelect.value === "active" ? "No active sessions. Start one to work a problem with your team and the assistant." : "No sessions." }));
    } else {
      replace(listBox, h("ul", { class: "session-list" }, rows.map((s) => {
        const eq = s.equipment;
        const name = s.title || (s.client_name ? `Session for ${s.client_name}` : "Diagnostic session");
        return h("li", { "data-session-id": s.id },
          h("div", { class: "row spread" },
            h("a", { class: "session-link", href: `#/sessions/${s.id}`, text: name }),
            h("span", { class: `badge ${s.status === "active" ? "ok" : ""}`, text: s.status })),
          h("div", { class: "meta", text: [
            s.client_name,
            eq && [eq.manufacturer, eq.model].filter(Boolean).join(" "),
            `${s.mode} mode`,
            `${s.message_count} message${s.message_count === 1 ? "" : "s"}`,
            s.last_message_at ? `last message ${fmtTime(s.last_message_at)}` : `started ${fmtTime(s.created_at)}`,
            s.created_by_name && `by ${s.created_by_name}`,
          ].filter(Boolean).join(" · ") }));
      })));
    }
    const total = body.meta ? body.meta.total : rows.length;
    replace(pager,
      offset > 0 ? h("button", { type: "button", class: "subtle", text: "← Newer", onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }) : null,
      total > PAGE ? h("span", { class: "muted", text: `${offset + 1}–${Math.min(total, offset + rows.length)} of ${total}` }) : null,
      offset + rows.length < total ? h("button", { type: "button", class: "subtle", text: "Older →", onclick: () => { offset += PAGE; load(); } }) : null);
  }

  // -- start a session --------------------------------------------------------------------
  if (can(me, "sessions.create")) renderStart();

  function renderStart() {
    const NEW = "__new__";
    const clientSelect = h("select", { name: "client_id", required: true }, h("option", { value: "", text: "Loading clients…" }));
    const newClient = h("input", { name: "client_name", maxlength: "200", autocomplete: "off" });
    const newClientField = field("New client's name", newClient);
    newClientField.hidden = true;
    const equipmentSelect = h("select", { name: "equipment_id" }, h("option", { value: "", text: "None" }));
    const titleInput = h("input", { name: "title", maxlength: "200", placeholder: "e.g. No cooling, iced suction line" });
    const modeSelect = h("select", { name: "mode" }, MODES.map(([value, label]) => h("option", { value, text: label })));
    const err = h("p", { class: "notice error", role: "alert", hidden: true });
    const submit = h("button", { type: "submit", text: "Start session" });
    const form = h("form", { novalidate: true },
      err,
      field("Client", clientSelect),
      newClientField,
      field("Equipment", equipmentSelect, "The assistant looks in this equipment's manuals first."),
      field("Title (optional)", titleInput),
      field("Mode", modeSelect, "Guided: step by step; expert: short answers; quick: one check at a time."),
      submit);
    replace(startBox, h("section", { class: "card", "aria-labelledby": "start-heading" }, h("h2", { id: "start-heading", text: "Start a session" }), form));

    const fail = (text) => { err.textContent = text; err.hidden = false; };

    (async () => {
      try {
        const body = await api("GET", "/api/v1/clients", { query: { limit: 200, status: "active" }, signal });
        if (disposed) return;
        replace(clientSelect,
          h("option", { value: "", text: body.data.length ? "Choose a client…" : "No clients yet" }),
          body.data.map((c) => h("option", { value: c.id, text: c.name })),
          can(me, "clients.write") ? h("option", { value: NEW, text: "+ New client…" }) : null);
      } catch (e) {
        if (!disposed && e.name !== "AbortError") fail(`The clients could not be loaded: ${describeError(e)}`);
      }
    })();

    clientSelect.addEventListener("change", async () => {
      err.hidden = true;
      newClientField.hidden = clientSelect.value !== NEW;
      replace(equipmentSelect, h("option", { value: "", text: "None" }));
      if (!clientSelect.value || clientSelect.value === NEW) {
        if (clientSelect.value === NEW) newClient.focus();
        return;
      }
      try {
        const body = await api("GET", "/api/v1/equipment", { query: { client_id: clientSelect.value, limit: 200 }, signal });
        if (disposed) return;
        replace(equipmentSelect, h("option", { value: "", text: body.data.length ? "None" : "No equipment on file" }),
          body.data.map((e) => h("option", { value: e.id, text: [e.name, [e.manufacturer, e.model_number].filter(Boolean).join(" ")].filter(Boolean).join(" — ") })));
      } catch (e) {
        if (!disposed && e.name !== "AbortError") fail(`The equipment could not be loaded: ${describeError(e)}`);
      }
    });

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      err.hidden = true;
      let clientId = clientSelect.value;
      if (!clientId) { fail("Choose the client this session is for."); clientSelect.focus(); return; }
      if (clientId === NEW && !newClient.value.trim()) { fail("Enter the new client's name."); newClient.focus(); return; }
      submit.disabled = true;
      try {
        if (clientId === NEW) {
          clientId = (await api("POST", "/api/v1/clients", { json: { name: newClient.value.trim() }, signal })).data.id;
        }
        const json = { client_id: clientId, mode: modeSelect.value };
        if (equipmentSelect.value) json.equipment_id = equipmentSelect.value;
        if (titleInput.value.trim()) json.title = titleInput.value.trim();
        const created = (await api("POST", "/api/v1/diagnostic/sessions", { json, signal })).data;
        ctx.navigate(`#/sessions/${created.id}`);
      } catch (e) {
        if (!disposed && e.name !== "AbortError") fail(`The session was not started: ${describeError(e)}`);
      } finally {
        submit.disabled = false;
      }
    });
  }

  await load();
  return () => {
    disposed = true;
    aborter.abort();
  };
}
