// Administration for owners and admins: members and roles, hubs (claim with a
// code, rename, release), files (upload with progress, download, delete) and
// the AI usage ledger.  Every failure is shown next to what failed, in words.

import { api, upload, describeError, withTextType } from "../api.js";
import { h, replace, field, fmtTime, fmtBytes, can } from "../ui.js";

export const title = "Admin";

const ROLES = ["owner", "admin", "operator", "technician", "viewer"];
const ROLE_TEXT = {
  owner: "Owner", admin: "Admin", operator: "Operator (lead technician)", technician: "Technician", viewer: "Viewer",
};
const CONNECTIONS = [
  ["opcua", "OPC UA (hub agent)"], ["bambu", "Bambu"], ["prusa", "Prusa"], ["octoprint", "OctoPrint"],
  ["klipper", "Klipper"], ["other", "Other"],
];
const CONFIRM_MS = 5000;
const PAGE = 100;

// A two-step button for destructive actions: the first press asks, the second
// (within CONFIRM_MS) does it.  No window.confirm: it blocks and is unstyled.
function confirmButton({ label, confirmLabel, ariaLabel, testid, onConfirm }) {
  let armed = null;
  const button = h("button", {
    type: "button", class: "danger small", "data-testid": testid, "aria-label": ariaLabel,
    onclick: async () => {
      if (!armed) {
        button.textContent = confirmLabel;
        button.setAttribute("aria-label", `${confirmLabel}: ${ariaLabel}`);
        armed = setTimeout(disarm, CONFIRM_MS);
        return;
      }
      disarm();
      button.disabled = true;
      try {
        await onConfirm();
      } finally {
        if (button.isConnected) button.disabled = false;
      }
    },
  }, label);
  function disarm() {
    clearTimeout(armed);
    armed = null;
    button.textContent = label;
    button.setAttribute("aria-label", ariaLabel);
  }
  return button;
}

function errorBox(testid) {
  const box = h("div", { class: "notice error", role: "alert", "data-testid": testid });
  box.hidden = true;
  return {
    el: box,
    show(message) { box.textContent = message; box.hidden = false; },
    clear() { box.hidden = true; box.textContent = ""; },
  };
}

function progressBar(label, testid) {
  const bar = h("div", { class: "bar" });
  const el = h("div", {
    class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0",
    "aria-label": label, "data-testid": testid,
  }, bar);
  return {
    el,
    set(value) {
      const p = Math.max(0, Math.min(100, Math.round(Number(value) || 0)));
      el.setAttribute("aria-valuenow", String(p));
      bar.style.width = `${p}%`;
    },
  };
}

// Say what a refusal means for this action, beyond the server's sentence.
function explain(err, what) {
  const text = describeError(err);
  if (err && err.status === 409 && /owner/i.test(err.message || "")) {
    return `${what}: ${text} Make someone else an owner first.`;
  }
  if (err && err.status === 422 && Array.isArray(err.details) && err.details.length) {
    const fields = err.details.map((d) => `${d.field}: ${d.message}`).join("; ");
    return `${what}: ${text} (${fields})`;
  }
  return `${what}: ${text}`;
}

export async function mount(root, ctx) {
  const me = ctx.me;
  const sections = {
    members: can(me, "members.manage"),
    hubs: can(me, "hubs.manage"),
    printers: can(me, "printers.write") && can(me, "members.manage"),
    files: can(me, "files.delete") && can(me, "members.manage"),
    usage: can(me, "ai.usage"),
  };
  if (!sections.members && !sections.hubs) {
    replace(root, h("section", { class: "card no-access", "aria-labelledby": "admin-h", "data-testid": "no-access" },
      h("h1", { id: "admin-h", text: "Administration" }),
      h("p", { role: "status", text: `Sorry, you don't have access to this page. Administration is for owners and admins; `
        + `your role is ${me.role || "unknown"}.` }),
      h("p", {}, "If you need a change to members, hubs or files, ask an owner or admin of ",
        h("strong", { text: (me.tenant && me.tenant.name) || "your organisation" }), ". ",
        h("a", { href: "#/dashboard", text: "Back to the dashboard" }))));
    return () => {};
  }
  const view = new Admin(root, ctx, me, sections);
  view.render();
  await view.load();
  return () => view.stop();
}

class Admin {
  constructor(root, ctx, me, sections) {
    this.root = root;
    this.ctx = ctx;
    this.me = me;
    this.sections = sections;
    this.aborter = new AbortController();
    this.stopped = false;
  }

  stop() {
    this.stopped = true;
    this.aborter.abort();
  }

  call(method, path, options = {}) {
    return api(method, path, { signal: this.aborter.signal, ...options });
  }

  render() {
    const parts = [];
    const nav = [];
    const add = (id, label, section) => {
      nav.push(h("button", {
        type: "button", class: "subtle small",
        onclick: () => {
          const target = document.getElementById(id);
          target.scrollIntoView({ behavior: "smooth", block: "start" });
          target.focus({ preventScroll: true });
        },
      }, label));
      parts.push(section);
    };
    if (this.sections.members) add("admin-members", "Members", this.renderMembers());
    if (this.sections.hubs) add("admin-hubs", "Hubs", this.renderHubs());
    if (this.sections.printers) add("admin-printers", "Printers", this.renderPrinters());
    if (this.sections.files) add("admin-files", "Files", this.renderFiles());
    if (this.sections.usage) add("admin-usage", "AI usage", this.renderUsage());
    replace(this.root, h("div", { class: "admin stack" },
      h("div", { class: "row spread" }, h("h1", { text: "Administration" }),
        h("nav", { class: "admin-nav", "aria-label": "Admin sections" }, nav)),
      parts));
  }

  async load() {
    const jobs = [];
    if (this.sections.members) jobs.push(this.loadMembers());
    if (this.sections.hubs || this.sections.printers) jobs.push(this.loadHubs().then(() => this.loadPrinters()));
    if (this.sections.files) jobs.push(this.loadFiles());
    if (this.sections.usage) jobs.push(this.loadUsage());
    await Promise.allSettled(jobs);
  }

  section(id, heading, ...content) {
    return h("section", { class: "card admin-section", id, tabindex: "-1", "aria-labelledby": `${id}-h` },
      h("h2", { id: `${id}-h`, text: heading }), content);
  }

  // -- members --------------------------------------------------------------------

  renderMembers() {
    this.membersError = errorBox("members-error");
    this.membersBody = h("tbody");
    const email = h("input", { type: "email", name: "email", required: true, autocomplete: "off", "data-testid": "member-email" });
    const name = h("input", { type: "text", name: "name", autocomplete: "off", "data-testid": "member-name" });
    const role = h("select", { name: "role", "data-testid": "member-role" },
      this.assignableRoles().map((r) => h("option", { value: r, text: ROLE_TEXT[r] })));
    role.value = "technician";
    const password = h("input", { type: "password", name: "password", autocomplete: "new-password", minlength: "8", "data-testid": "member-password" });
    const addError = errorBox("member-add-error");
    const submit = h("button", { type: "submit", "data-testid": "member-add" }, "Add member");
    const form = h("form", {
      class: "add-member", "aria-label": "Add a member",
      onsubmit: async (event) => {
        event.preventDefault();
        addError.clear();
        const body = { email: email.value.trim(), role: role.value };
        if (name.value.trim()) body.name = name.value.trim();
        if (password.value) body.password = password.value;
        submit.disabled = true;
        try {
          const answer = await this.call("POST", "/api/v1/users", { json: body });
          this.ctx.toast(`${(answer && answer.data && answer.data.name) || body.email} is now a member.`, "ok");
          form.reset();
          role.value = "technician";
          await this.loadMembers();
        } catch (err) {
          if (!this.stopped) addError.show(explain(err, "Could not add the member"));
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h3", { text: "Add a member" }),
    h("div", { class: "inline-fields" },
      field("Email", email),
      field("Name", name, "For a new account."),
      field("Role", role),
      field("Password", password, "Only for a new account: 8 or more characters.")),
    addError.el,
    h("div", { class: "form-actions" }, submit));
    return this.section("admin-members", "Members and roles",
      this.membersError.el,
      h("div", { class: "table-wrap" }, h("table", { class: "responsive", "data-testid": "members-table" },
        h("caption", { class: "visually-hidden", text: "Members of the organisation" }),
        h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Name" }), h("th", { scope: "col", text: "Email" }),
          h("th", { scope: "col", text: "Role" }), h("th", { scope: "col", text: "Actions" }))),
        this.membersBody)),
      form);
  }

  assignableRoles() {
    // Only an owner grants the owner role (the server says so too).
    return this.me.role === "owner" ? ROLES : ROLES.filter((r) => r !== "owner");
  }

  async loadMembers() {
    try {
      const body = await this.call("GET", "/api/v1/users", { query: { limit: PAGE, sort: "name" } });
      this.membersError.clear();
      const rows = (body && body.data) || [];
      replace(this.membersBody, rows.length ? rows.map((m) => this.memberRow(m))
        : h("tr", {}, h("td", { colspan: "4", class: "empty", text: "No members." })));
    } catch (err) {
      if (!this.stopped) this.membersError.show(explain(err, "Could not load the members"));
    }
  }

  memberRow(member) {
    const who = member.name || member.email;
    const isMe = this.me.user && member.id === this.me.user.id;
    const roles = this.assignableRoles().includes(member.role) ? this.assignableRoles() : [member.role, ...this.assignableRoles()];
    const select = h("select", {
      class: "role-select", "aria-label": `Role of ${who}`, "data-testid": "member-role-select",
      disabled: member.role === "owner" && this.me.role !== "owner",
    }, roles.map((r) => h("option", { value: r, text: ROLE_TEXT[r] || r })));
    select.value = member.role;
    select.addEventListener("change", async () => {
      const wanted = select.value;
      select.disabled = true;
      try {
        await this.call("PATCH", `/api/v1/users/${member.id}`, { json: { role: wanted } });
        this.membersError.clear();
        member.role = wanted;
        this.ctx.toast(`${who} is now ${ROLE_TEXT[wanted] || wanted}.`, "ok");
        if (isMe && this.ctx.refreshMe) this.ctx.refreshMe();
      } catch (err) {
        if (this.stopped) return;
        select.value = member.role; // the change did not happen: show what is true
        this.membersError.show(explain(err, `Could not change the role of ${who}`));
      } finally {
        if (select.isConnected) select.disabled = member.role === "owner" && this.me.role !== "owner";
      }
    });
    const remove = confirmButton({
      label: "Remove", confirmLabel: "Confirm removal", ariaLabel: `Remove ${who}`, testid: "member-remove",
      onConfirm: async () => {
        try {
          await this.call("DELETE", `/api/v1/users/${member.id}`);
          this.membersError.clear();
          this.ctx.toast(`${who} was removed from the organisation.`, "ok");
          await this.loadMembers();
        } catch (err) {
          if (!this.stopped) this.membersError.show(explain(err, `Could not remove ${who}`));
        }
      },
    });
    return h("tr", { "data-user-id": member.id, "data-email": member.email },
      h("td", { "data-label": "Name" }, member.name || "—", isMe ? h("span", { class: "muted", text: " (you)" }) : null),
      h("td", { class: "mono", "data-label": "Email", text: member.email }),
      h("td", { "data-label": "Role" }, select),
      h("td", { "data-label": "Actions" }, remove));
  }

  // -- hubs -----------------------------------------------------------------------

  renderHubs() {
    this.hubsError = errorBox("hubs-error");
    this.hubsBody = h("tbody");
    const code = h("input", {
      type: "text", name: "claim_code", required: true, autocomplete: "off", autocapitalize: "characters",
      spellcheck: "false", minlength: "8", maxlength: "16", "data-testid": "claim-code",
    });
    const name = h("input", { type: "text", name: "name", required: true, maxlength: "200", "data-testid": "claim-name" });
    const claimError = errorBox("claim-error");
    const submit = h("button", { type: "submit", "data-testid": "claim-submit" }, "Claim hub");
    const form = h("form", {
      "aria-label": "Claim a hub",
      onsubmit: async (event) => {
        event.preventDefault();
        claimError.clear();
        submit.disabled = true;
        try {
          const body = await this.call("POST", "/api/v1/hubs/claim", {
            json: { claim_code: code.value.trim(), name: name.value.trim() },
          });
          this.ctx.toast(`Hub "${(body && body.data && body.data.name) || name.value}" is now yours.`, "ok");
          form.reset();
          await this.loadHubs();
        } catch (err) {
          if (this.stopped) return;
          if (err && err.status === 404) {
            claimError.show("That claim code is wrong or has expired. Codes last 10 minutes and work once: "
              + "read the current code from the hub (its log shows one while it is unclaimed), "
              + "or issue a fresh one with `ensemble hub claim-code HUB_ID`.");
          } else if (err && err.status === 422) {
            claimError.show("A claim code has 8 letters or digits (dashes and spaces are fine), and the hub needs a name.");
          } else {
            claimError.show(explain(err, "Could not claim the hub"));
          }
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h3", { text: "Claim a hub" }),
    h("div", { class: "inline-fields" },
      field("Claim code", code, "The 8-character code the hub shows."),
      field("Hub name", name, "For example: Print room")),
    claimError.el,
    h("div", { class: "form-actions" }, submit));
    return this.section("admin-hubs", "Hubs",
      form,
      this.hubsError.el,
      h("div", { class: "table-wrap" }, h("table", { class: "responsive", "data-testid": "hubs-table" },
        h("caption", { class: "visually-hidden", text: "Hubs of the organisation" }),
        h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Name" }), h("th", { scope: "col", text: "Status" }),
          h("th", { scope: "col", text: "Firmware" }), h("th", { scope: "col", text: "Last seen" }),
          h("th", { scope: "col", text: "Actions" }))),
        this.hubsBody)));
  }

  async loadHubs() {
    try {
      const body = await this.call("GET", "/api/v1/hubs", { query: { limit: PAGE } });
      if (this.hubsError) this.hubsError.clear();
      const rows = (body && body.data) || [];
      this.hubRows = rows;
      this.fillHubOptions();
      if (!this.hubsBody) return;
      replace(this.hubsBody, rows.length ? rows.map((hub) => this.hubRow(hub))
        : h("tr", {}, h("td", { colspan: "5", class: "empty", text: "No hubs yet: claim one with its code above." })));
    } catch (err) {
      if (this.stopped) return;
      (this.hubsError || this.printersError).show(explain(err, "Could not load the hubs"));
    }
  }

  hubRow(hub) {
    const label = hub.name || `Hub ${String(hub.id).slice(0, 8)}`;
    const nameCell = h("td", { class: "hub-name", "data-label": "Name", text: label });
    const rename = h("button", {
      type: "button", class: "subtle small", "aria-label": `Rename ${label}`, "data-testid": "hub-rename",
      onclick: () => this.startRename(hub, nameCell, rename),
    }, "Rename");
    const release = confirmButton({
      label: "Release", confirmLabel: "Confirm release", ariaLabel: `Release ${label}`, testid: "hub-release",
      onConfirm: async () => {
        try {
          await this.call("POST", `/api/v1/hubs/${hub.id}/release`, { json: {} });
          this.hubsError.clear();
          this.ctx.toast(`${label} was released. Its printers stay, without a hub.`, "ok");
          await this.loadHubs();
          await this.loadPrinters();
        } catch (err) {
          if (!this.stopped) this.hubsError.show(explain(err, `Could not release ${label}`));
        }
      },
    });
    return h("tr", { "data-hub-id": hub.id },
      nameCell,
      h("td", { "data-label": "Status" },
        h("span", { class: `badge ${hub.is_online ? "ok" : "danger"}`, text: hub.is_online ? "Online" : "Offline" })),
      h("td", { "data-label": "Firmware", text: hub.firmware_version || "—" }),
      h("td", { "data-label": "Last seen", text: fmtTime(hub.last_seen_at) }),
      h("td", { "data-label": "Actions" }, h("div", { class: "row" }, rename, release)));
  }

  startRename(hub, cell, button) {
    const input = h("input", { type: "text", value: hub.name || "", required: true, maxlength: "200", "aria-label": `New name for ${hub.name || "the hub"}` });
    const save = h("button", { type: "submit", class: "small" }, "Save");
    const cancel = h("button", { type: "button", class: "subtle small", onclick: () => this.loadHubs() }, "Cancel");
    const form = h("form", {
      class: "row",
      onsubmit: async (event) => {
        event.preventDefault();
        save.disabled = true;
        try {
          await this.call("PATCH", `/api/v1/hubs/${hub.id}`, { json: { name: input.value.trim() } });
          this.hubsError.clear();
          this.ctx.toast(`Hub renamed to "${input.value.trim()}".`, "ok");
          await this.loadHubs();
          await this.loadPrinters();
        } catch (err) {
          if (this.stopped) return;
          save.disabled = false;
          this.hubsError.show(explain(err, "Could not rename the hub"));
        }
      },
      onkeydown: (event) => { if (event.key === "Escape") this.loadHubs(); },
    }, input, save, cancel);
    button.hidden = true;
    replace(cell, form);
    input.focus();
    input.select();
  }

  // -- printers -------------------------------------------------------------------

  renderPrinters() {
    this.printersError = errorBox("printers-error");
    this.printersBody = h("tbody");
    const name = h("input", { type: "text", name: "name", required: true, maxlength: "200", "data-testid": "printer-name" });
    const model = h("input", { type: "text", name: "model", required: true, maxlength: "200", "data-testid": "printer-model" });
    this.printerHub = h("select", { name: "hub_id", "data-testid": "printer-hub" });
    const connection = h("select", { name: "connection_type", "data-testid": "printer-connection" },
      CONNECTIONS.map(([value, text]) => h("option", { value, text })));
    const location = h("input", { type: "text", name: "location", maxlength: "100", "data-testid": "printer-location" });
    const addError = errorBox("printer-add-error");
    const submit = h("button", { type: "submit", "data-testid": "printer-add" }, "Add printer");
    const form = h("form", {
      "aria-label": "Add a printer", novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        addError.clear();
        if (!name.value.trim() || !model.value.trim()) {
          addError.show("A printer needs a name and a model.");
          (name.value.trim() ? model : name).focus();
          return;
        }
        const body = { name: name.value.trim(), model: model.value.trim(), connection_type: connection.value };
        if (this.printerHub.value) body.hub_id = this.printerHub.value;
        if (location.value.trim()) body.location = location.value.trim();
        submit.disabled = true;
        try {
          const answer = await this.call("POST", "/api/v1/printers", { json: body });
          const id = answer && answer.data && answer.data.id;
          this.ctx.toast(`${body.name} was added${id ? ` (id ${id})` : ""}.`, "ok");
          form.reset();
          await this.loadPrinters();
        } catch (err) {
          if (!this.stopped) addError.show(explain(err, "Could not add the printer"));
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h3", { text: "Add a printer" }),
    h("div", { class: "inline-fields" },
      field("Printer name", name),
      field("Model", model),
      field("Hub", this.printerHub),
      field("Connection", connection),
      field("Location", location)),
    h("p", { class: "muted", text: "A printer behind a hub also goes into the hub's configuration ([[printers]] with "
      + "the printer's id and its OPC UA endpoint); the hub then reports it." }),
    addError.el,
    h("div", { class: "form-actions" }, submit));
    this.fillHubOptions();
    return this.section("admin-printers", "Printers",
      this.printersError.el,
      h("div", { class: "table-wrap" }, h("table", { class: "responsive", "data-testid": "printers-table" },
        h("caption", { class: "visually-hidden", text: "Printers of the organisation" }),
        h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Name" }), h("th", { scope: "col", text: "Model" }),
          h("th", { scope: "col", text: "Hub" }), h("th", { scope: "col", text: "Status" }),
          h("th", { scope: "col", text: "Printer id" }), h("th", { scope: "col", text: "Actions" }))),
        this.printersBody)),
      form);
  }

  fillHubOptions() {
    if (!this.printerHub) return;
    const current = this.printerHub.value;
    replace(this.printerHub, h("option", { value: "", text: "No hub" }),
      (this.hubRows || []).map((hub) => h("option", { value: hub.id, text: hub.name || `Hub ${String(hub.id).slice(0, 8)}` })));
    if (current && (this.hubRows || []).some((hub) => hub.id === current)) this.printerHub.value = current;
  }

  async loadPrinters() {
    if (!this.printersBody) return;
    try {
      const body = await this.call("GET", "/api/v1/printers", { query: { limit: PAGE } });
      this.printersError.clear();
      const rows = (body && body.data) || [];
      replace(this.printersBody, rows.length ? rows.map((p) => this.printerRow(p))
        : h("tr", {}, h("td", { colspan: "6", class: "empty", text: "No printers yet." })));
    } catch (err) {
      if (!this.stopped) this.printersError.show(explain(err, "Could not load the printers"));
    }
  }

  printerRow(printer) {
    const hub = (this.hubRows || []).find((row) => row.id === printer.hub_id);
    const hubText = printer.hub_id ? (hub && hub.name) || `Hub ${String(printer.hub_id).slice(0, 8)}` : "No hub";
    const remove = confirmButton({
      label: "Remove", confirmLabel: "Confirm removal", ariaLabel: `Remove ${printer.name}`, testid: "printer-remove",
      onConfirm: async () => {
        try {
          await this.call("DELETE", `/api/v1/printers/${printer.id}`);
          this.printersError.clear();
          this.ctx.toast(`${printer.name} was removed.`, "ok");
          await this.loadPrinters();
        } catch (err) {
          if (!this.stopped) this.printersError.show(explain(err, `Could not remove ${printer.name}`));
        }
      },
    });
    return h("tr", { "data-printer-row": printer.id },
      h("td", { "data-label": "Name", text: printer.name }),
      h("td", { "data-label": "Model", text: printer.model }),
      h("td", { "data-label": "Hub", text: hubText }),
      h("td", { "data-label": "Status" }, h("span", { class: "badge", text: printer.status })),
      h("td", { class: "mono", "data-label": "Printer id", text: printer.id }),
      h("td", { "data-label": "Actions" }, remove));
  }

  // -- files ----------------------------------------------------------------------

  renderFiles() {
    this.filesError = errorBox("files-error");
    this.filesBody = h("tbody");
    const input = h("input", { type: "file", name: "file", "data-testid": "file-input" });
    const progress = progressBar("Upload progress", "file-upload-progress");
    progress.el.hidden = true;
    const status = h("p", { class: "muted", "aria-live": "polite", "data-testid": "file-upload-status" });
    const uploadError = errorBox("file-upload-error");
    const submit = h("button", { type: "submit", "data-testid": "file-upload" }, "Upload");
    const form = h("form", {
      "aria-label": "Upload a file",
      onsubmit: async (event) => {
        event.preventDefault();
        uploadError.clear();
        const chosen = input.files && input.files[0];
        if (!chosen) {
          uploadError.show("Choose a file to upload first.");
          input.focus();
          return;
        }
        const file = withTextType(chosen);
        const data = new FormData();
        data.append("file", file, file.name);
        submit.disabled = true;
        progress.el.hidden = false;
        progress.set(0);
        status.textContent = `Uploading ${chosen.name}…`;
        try {
          await upload("/api/v1/files", data, {
            signal: this.aborter.signal,
            onProgress: (loaded, total) => progress.set(total ? (loaded / total) * 100 : 0),
          });
          progress.set(100);
          status.textContent = `Uploaded ${chosen.name} (${fmtBytes(chosen.size)}).`;
          form.reset();
          await this.loadFiles();
        } catch (err) {
          if (this.stopped) return;
          status.textContent = "";
          uploadError.show(explain(err, `Could not upload ${chosen.name}`));
        } finally {
          submit.disabled = false;
          progress.el.hidden = true;
        }
      },
    },
    h("h3", { text: "Upload a file" }),
    h("div", { class: "inline-fields" }, field("File", input, "Print files (G-code, 3MF), images, PDFs or text.")),
    progress.el, status, uploadError.el,
    h("div", { class: "form-actions" }, submit));
    return this.section("admin-files", "Files",
      form,
      this.filesError.el,
      h("div", { class: "table-wrap" }, h("table", { class: "responsive", "data-testid": "files-table" },
        h("caption", { class: "visually-hidden", text: "Files of the organisation" }),
        h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Name" }), h("th", { scope: "col", text: "Type" }),
          h("th", { scope: "col", class: "num", text: "Size" }), h("th", { scope: "col", text: "Uploaded" }),
          h("th", { scope: "col", text: "Actions" }))),
        this.filesBody)));
  }

  async loadFiles() {
    try {
      const body = await this.call("GET", "/api/v1/files", { query: { limit: PAGE, sort: "-created_at" } });
      this.filesError.clear();
      const rows = (body && body.data) || [];
      replace(this.filesBody, rows.length ? rows.map((f) => this.fileRow(f))
        : h("tr", {}, h("td", { colspan: "5", class: "empty", text: "No files yet." })));
    } catch (err) {
      if (!this.stopped) this.filesError.show(explain(err, "Could not load the files"));
    }
  }

  fileRow(file) {
    const download = h("button", {
      type: "button", class: "subtle small", "aria-label": `Download ${file.name}`, "data-testid": "file-download",
      onclick: async () => {
        download.disabled = true;
        try {
          // A signed, expiring URL: the browser downloads it without our bearer token.
          const body = await this.call("GET", `/api/v1/files/${file.id}/download`);
          const link = h("a", { href: body.data.url, download: file.name, rel: "noopener" });
          link.hidden = true;
          document.body.append(link);
          link.click();
          link.remove();
        } catch (err) {
          if (!this.stopped) this.filesError.show(explain(err, `Could not download ${file.name}`));
        } finally {
          download.disabled = false;
        }
      },
    }, "Download");
    const remove = confirmButton({
      label: "Delete", confirmLabel: "Confirm delete", ariaLabel: `Delete ${file.name}`, testid: "file-delete",
      onConfirm: async () => {
        try {
          await this.call("DELETE", `/api/v1/files/${file.id}`);
          this.filesError.clear();
          this.ctx.toast(`${file.name} was deleted.`, "ok");
          await this.loadFiles();
        } catch (err) {
          if (!this.stopped) this.filesError.show(explain(err, `Could not delete ${file.name}`));
        }
      },
    });
    return h("tr", { "data-file-id": file.id },
      h("td", { class: "file-name", "data-label": "Name", text: file.name }),
      h("td", { class: "mono", "data-label": "Type", text: file.content_type }),
      h("td", { class: "num", "data-label": "Size", text: fmtBytes(file.size_bytes) }),
      h("td", { "data-label": "Uploaded", text: fmtTime(file.created_at) }),
      h("td", { "data-label": "Actions" }, h("div", { class: "row" }, download, remove)));
  }

  // -- AI usage -------------------------------------------------------------------

  renderUsage() {
    this.usageError = errorBox("usage-error");
    const today = new Date();
    const monthAgo = new Date(today.getTime() - 29 * 86400e3);
    const iso = (d) => d.toISOString().slice(0, 10);
    this.usageFrom = h("input", { type: "date", name: "from", value: iso(monthAgo), "data-testid": "usage-from" });
    this.usageTo = h("input", { type: "date", name: "to", value: iso(today), "data-testid": "usage-to" });
    this.usageTotals = h("dl", { class: "usage-totals", "data-testid": "usage-totals" });
    this.usageBody = h("tbody");
    const form = h("form", {
      "aria-label": "Usage period",
      onsubmit: (event) => { event.preventDefault(); this.loadUsage(); },
    }, h("div", { class: "inline-fields" }, field("From", this.usageFrom), field("To", this.usageTo),
      h("div", { class: "field" }, h("button", { type: "submit", "data-testid": "usage-show" }, "Show"))));
    return this.section("admin-usage", "AI assistant usage",
      h("p", { class: "muted", text: "Questions answered by the assistant, cache hits and cost, per UTC day." }),
      form, this.usageError.el, this.usageTotals,
      h("div", { class: "table-wrap" }, h("table", { class: "responsive", "data-testid": "usage-table" },
        h("caption", { class: "visually-hidden", text: "AI usage per day" }),
        h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Day" }),
          h("th", { scope: "col", class: "num", text: "Requests" }), h("th", { scope: "col", class: "num", text: "Answered" }),
          h("th", { scope: "col", class: "num", text: "Cache hits" }), h("th", { scope: "col", class: "num", text: "Offline" }),
          h("th", { scope: "col", class: "num", text: "Failed" }), h("th", { scope: "col", class: "num", text: "Tokens in / out" }),
          h("th", { scope: "col", class: "num", text: "Cost" }))),
        this.usageBody)));
  }

  async loadUsage() {
    try {
      const body = await this.call("GET", "/api/v1/ai/usage", {
        query: { from: this.usageFrom.value, to: this.usageTo.value },
      });
      this.usageError.clear();
      const report = (body && body.data) || { days: [], totals: {} };
      const t = report.totals || {};
      const money = (v) => `$${Number(v || 0).toFixed(v && v < 0.01 ? 4 : 2)}`;
      const stat = (label, value) => h("div", {}, h("dt", { text: label }), h("dd", { text: value }));
      replace(this.usageTotals,
        stat("Requests", String(t.requests ?? 0)),
        stat("Answered", String(t.answered ?? 0)),
        stat("Cache hits", String(t.cache_hits ?? 0)),
        stat("Cache hit rate", `${Math.round((t.cache_hit_rate || 0) * 100)} %`),
        stat("Offline answers", String(t.offline ?? 0)),
        stat("Cost", money(t.cost_usd)));
      const days = (report.days || []).filter((d) => d.requests > 0).reverse();
      replace(this.usageBody, days.length ? days.map((d) => h("tr", {},
        h("td", { "data-label": "Day", text: d.day }),
        h("td", { class: "num", "data-label": "Requests", text: String(d.requests) }),
        h("td", { class: "num", "data-label": "Answered", text: String(d.answered) }),
        h("td", { class: "num", "data-label": "Cache hits", text: String(d.cache_hits) }),
        h("td", { class: "num", "data-label": "Offline", text: String(d.offline) }),
        h("td", { class: "num", "data-label": "Failed", text: String(d.failed) }),
        h("td", { class: "num", "data-label": "Tokens in / out", text: `${d.input_tokens} / ${d.output_tokens}` }),
        h("td", { class: "num", "data-label": "Cost", text: money(d.cost_usd) })))
        : h("tr", {}, h("td", { colspan: "8", class: "empty", text: "No assistant requests in this period." })));
    } catch (err) {
      if (!this.stopped) this.usageError.show(explain(err, "Could not load the usage"));
    }
  }
}
