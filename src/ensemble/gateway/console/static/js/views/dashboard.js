// The tenant dashboard: printers live over the dashboard socket, hubs, print
// jobs (start, pause, resume, cancel) and a telemetry chart per printer.
//
// Live state comes from /api/v1/dashboard/ws (snapshot, then printer_status,
// job_update, hub_status, alert; resync after a long gap).  REST fills in what
// frames do not carry: printer names, the job history with file names, the
// print files, and the telemetry history for the chart.

import { api, upload, describeError, withTextType } from "../api.js";
import { LiveSocket } from "../live.js";
import { h, replace, field, fmtDuration, fmtTime, fmtBytes, can } from "../ui.js";
import { LineChart } from "../chart.js";

export const title = "Dashboard";

const STATUS_TEXT = {
  idle: "Idle", printing: "Printing", paused: "Paused", error: "Error", offline: "Offline", maintenance: "Maintenance",
};
const STATUS_KIND = { idle: "info", printing: "ok", paused: "warn", error: "danger", offline: "", maintenance: "warn" };
const JOB_TEXT = {
  queued: "Queued", uploading: "Uploading", printing: "Printing", paused: "Paused",
  completed: "Completed", failed: "Failed", cancelled: "Cancelled",
};
const JOB_KIND = {
  queued: "info", uploading: "info", printing: "ok", paused: "warn", completed: "ok", failed: "danger", cancelled: "",
};
const ACTIVE_JOBS = new Set(["queued", "uploading", "printing", "paused"]);
// Which buttons a job shows; the same table the server enforces (job_states.TRANSITIONS).
const JOB_ACTIONS = {
  queued: ["cancel"], uploading: ["cancel"], printing: ["pause", "cancel"], paused: ["resume", "cancel"],
};
const ACTION_TEXT = { pause: "Pause", resume: "Resume", cancel: "Cancel" };
const ACTION_DONE = { pause: "Pause requested", resume: "Resume requested", cancel: "Cancel requested" };

// Chart ranges: the interval keeps every answer well under the server's point limit.
const RANGES = [
  { id: "15m", label: "Last 15 minutes", ms: 15 * 60e3, interval: "raw" },
  { id: "1h", label: "Last hour", ms: 3600e3, interval: "1min" },
  { id: "6h", label: "Last 6 hours", ms: 6 * 3600e3, interval: "5min" },
  { id: "24h", label: "Last 24 hours", ms: 24 * 3600e3, interval: "5min" },
];
const CHART_REFRESH_MS = 30e3;
const JOBS_LIMIT = 25;
const MAX_ALERTS = 5;
const MAX_LIVE_POINTS = 3000;

function shortId(id) {
  return String(id || "").slice(0, 8);
}

function clampPercent(v) {
  const n = Number(v);
  return Number.isFinite(n) ? Math.max(0, Math.min(100, Math.round(n))) : 0;
}

function minutesText(m) {
  const n = Math.max(0, Math.round(Number(m) || 0));
  if (n < 1) return "under 1 min";
  if (n < 60) return `${n} min`;
  return `${Math.floor(n / 60)} h ${n % 60} min`;
}

function temp(v) {
  return v === null || v === undefined || !Number.isFinite(Number(v)) ? "—" : `${Math.round(Number(v))} °C`;
}

function badge(kindMap, textMap, status) {
  const kind = kindMap[status] || "";
  return h("span", { class: `badge ${kind}`.trim(), text: textMap[status] || status || "Unknown" });
}

// A progress bar people and tests can read: role=progressbar with aria-valuenow.
function progressBar(label, testid) {
  const bar = h("div", { class: "bar" });
  const el = h(
    "div",
    {
      class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
      "aria-valuenow": "0", "aria-label": label, "data-testid": testid,
    },
    bar,
  );
  return {
    el,
    set(value) {
      const p = clampPercent(value);
      el.setAttribute("aria-valuenow", String(p));
      el.setAttribute("aria-valuetext", `${p} %`);
      bar.style.width = `${p}%`;
    },
  };
}

// Put `elements` in this order under `parent`, moving only what is out of place
// (moving a node that holds keyboard focus would drop the focus).
function reorder(parent, elements) {
  elements.forEach((el, i) => {
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] || null);
  });
}

export async function mount(root, ctx) {
  const view = new Dashboard(root, ctx);
  view.render();
  await view.start();
  return () => view.stop();
}

class Dashboard {
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.me = ctx.me;
    this.mayManage = can(this.me, "print_jobs.manage");
    this.mayUpload = can(this.me, "files.write");
    this.aborter = new AbortController();
    this.timers = new Set();
    this.stopped = false;
    this.printers = new Map(); // id -> latest status (frames merged over REST rows)
    this.cards = new Map(); // id -> card handles
    this.hubs = new Map();
    this.jobs = new Map(); // id -> job (REST rows merged with job_update frames)
    this.jobRows = new Map();
    this.files = [];
    this.alerts = [];
    this.wasLive = false;
    this.chartPrinter = null;
    this.chartRange = RANGES[0];
    this.chartSeries = null; // {nozzle, bed, progress} point arrays of the shown range
    this.pending = new Map(); // name -> timer of a debounced refresh
    this.askedNames = new Set();
    this.askedJobs = new Set();
  }

  // -- lifecycle ------------------------------------------------------------------

  async start() {
    this.live = new LiveSocket({
      path: "/api/v1/dashboard/ws",
      auth: "frame",
      onMessage: (msg) => this.onFrame(msg),
      onStatus: (status, detail) => this.onStatus(status, detail),
    });
    // REST in parallel with the socket: names, job history, files.
    await Promise.allSettled([this.loadPrinters(), this.loadJobs(), this.loadFiles()]);
    this.every(CHART_REFRESH_MS, () => this.loadChart());
  }

  stop() {
    this.stopped = true;
    this.aborter.abort();
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
    if (this.chartAbort) this.chartAbort.abort();
    if (this.live) this.live.close();
    if (this.tempChart) this.tempChart.destroy();
    if (this.progressChart) this.progressChart.destroy();
  }

  every(ms, fn) {
    if (this.stopped) return;
    const t = setInterval(() => { if (!this.stopped) fn(); }, ms);
    this.timers.add(t);
  }

  // Run fn once, `ms` after the last call (bounded: one timer per name).
  later(name, ms, fn) {
    clearTimeout(this.pending.get(name));
    this.pending.set(name, setTimeout(() => {
      this.pending.delete(name);
      if (!this.stopped) fn();
    }, ms));
  }

  async call(method, path, options = {}) {
    return api(method, path, { signal: this.aborter.signal, ...options });
  }

  // -- layout ---------------------------------------------------------------------

  render() {
    this.connection = h("p", {
      class: "live-status connecting", role: "status", "aria-live": "polite", "data-testid": "connection-status",
    }, "Connecting…");
    this.alertList = h("ul", { class: "dash-alerts", "aria-label": "Alerts", "data-testid": "alerts" });
    this.alertBox = h("div", { "aria-live": "polite" }, this.alertList);
    this.alertBox.hidden = true;

    this.printerGrid = h("div", { class: "printer-grid", "data-testid": "printer-grid" });
    this.printersEmpty = h("p", {
      class: "empty",
      text: "No printers yet. An owner or admin claims a hub (Admin), then printers are added to it.",
    });

    this.hubList = h("ul", { class: "hub-list", "data-testid": "hub-list" });
    this.hubsEmpty = h("p", { class: "empty", text: "No hubs claimed yet." });

    this.jobsError = h("div", { class: "notice error", role: "alert", "data-testid": "jobs-error" });
    this.jobsError.hidden = true;
    this.jobList = h("ul", { class: "job-list", "aria-label": "Print jobs", "data-testid": "job-list" });
    this.jobsEmpty = h("p", { class: "empty", text: "No print jobs yet." });

    const jobsSection = h("section", { class: "card", "aria-labelledby": "jobs-h" },
      h("div", { class: "row spread" },
        h("h2", { id: "jobs-h", text: "Print jobs" }),
        h("button", {
          type: "button", class: "subtle", "data-testid": "refresh-jobs", onclick: () => this.loadJobs(),
        }, "Refresh")),
      this.jobsError, this.jobList, this.jobsEmpty);

    const side = h("div", { class: "stack" },
      this.renderStartForm(),
      h("section", { class: "card", "aria-labelledby": "hubs-h" },
        h("h2", { id: "hubs-h", text: "Hubs" }), this.hubList, this.hubsEmpty));

    replace(this.root,
      h("div", { class: "dashboard stack" },
        h("div", { class: "row spread dash-head" }, h("h1", { text: "Dashboard" }), this.connection),
        this.alertBox,
        h("section", { "aria-labelledby": "printers-h" },
          h("h2", { id: "printers-h", text: "Printers" }), this.printerGrid, this.printersEmpty),
        h("div", { class: "split" }, jobsSection, side),
        this.renderChartSection()));
  }

  renderStartForm() {
    if (!this.mayManage) {
      return h("section", { class: "card", "aria-labelledby": "start-h", "data-testid": "start-print-readonly" },
        h("h2", { id: "start-h", text: "Start a print" }),
        h("p", { class: "muted", text: `Your role (${this.me.role || "unknown"}) can watch printers and jobs, `
          + "but not start or control prints. Ask an operator, admin or owner." }));
    }
    this.startPrinter = h("select", { name: "printer_id", required: true, "data-testid": "start-printer" });
    this.startFile = h("select", { name: "file_id", required: true, "data-testid": "start-file" });
    this.startError = h("div", { class: "notice error", role: "alert", "data-testid": "start-error" });
    this.startError.hidden = true;
    this.startButton = h("button", { type: "submit", "data-testid": "start-print" }, "Start print");
    const parts = [
      field("Printer", this.startPrinter),
      field("Print file", this.startFile, "A file uploaded to Ensemble (G-code or 3MF)."),
    ];
    if (this.mayUpload) {
      this.uploadInput = h("input", {
        type: "file", name: "file", "data-testid": "start-upload",
        accept: ".gcode,.gco,.g,.3mf,.txt,text/plain,model/3mf", onchange: () => this.uploadPrintFile(),
      });
      this.uploadProgress = progressBar("Upload progress", "start-upload-progress");
      this.uploadProgress.el.hidden = true;
      this.uploadStatus = h("p", { class: "muted", "aria-live": "polite" });
      parts.push(field("Or upload a new print file", this.uploadInput), this.uploadProgress.el, this.uploadStatus);
    }
    // novalidate: our own sentence in the alert box, not the browser's bubble.
    this.startForm = h("form", {
      class: "start-form", "aria-labelledby": "start-h", novalidate: true, onsubmit: (e) => this.startPrint(e),
    },
      parts, this.startError, this.startButton);
    return h("section", { class: "card", "aria-labelledby": "start-h" },
      h("h2", { id: "start-h", text: "Start a print" }), this.startForm);
  }

  renderChartSection() {
    this.chartPrinterSelect = h("select", {
      name: "chart_printer", "data-testid": "chart-printer", onchange: () => this.selectChartPrinter(this.chartPrinterSelect.value),
    });
    this.chartRangeSelect = h("select", {
      name: "chart_range", "data-testid": "chart-range",
      onchange: () => {
        this.chartRange = RANGES.find((r) => r.id === this.chartRangeSelect.value) || RANGES[0];
        this.loadChart();
      },
    }, RANGES.map((r) => h("option", { value: r.id, text: r.label })));
    this.chartStatus = h("p", { class: "muted chart-status", "aria-live": "polite", "data-testid": "chart-status" });
    const charts = h("div", { class: "chart-pair" });
    const section = h("section", { class: "card", "aria-labelledby": "chart-h", "data-testid": "telemetry" },
      h("h2", { id: "chart-h", text: "Temperature and progress" }),
      h("div", { class: "inline-fields" }, field("Printer", this.chartPrinterSelect), field("Range", this.chartRangeSelect)),
      this.chartStatus, charts);
    this.tempChart = new LineChart(charts, { label: "Temperatures", unit: " °C", yMin: 0, emptyText: "No temperatures in this range." });
    this.progressChart = new LineChart(charts, { label: "Progress", unit: " %", yMin: 0, yMax: 100, emptyText: "No progress in this range." });
    return section;
  }

  // -- live frames ----------------------------------------------------------------

  onStatus(status, detail) {
    if (this.stopped) return;
    let text;
    if (status === "live") {
      this.wasLive = true;
      text = "Live";
    } else if (status === "connecting") {
      text = this.wasLive ? "Reconnecting…" : "Connecting…";
    } else if (status === "offline") {
      text = "Offline — reconnecting…";
    } else {
      text = detail ? `Disconnected: ${detail}` : "Disconnected";
    }
    this.connection.className = `live-status ${status}`;
    this.connection.dataset.status = status;
    this.connection.textContent = text;
  }

  onFrame(msg) {
    if (this.stopped || !msg || typeof msg !== "object") return;
    switch (msg.type) {
      case "snapshot":
        this.applySnapshot(msg);
        break;
      case "resync":
        this.applySnapshot(msg.state || msg);
        break;
      case "printer_status":
        this.applyPrinter(msg);
        break;
      case "job_update":
        this.applyJob(msg);
        break;
      case "hub_status":
        this.applyHub(msg);
        break;
      case "alert":
        this.applyAlert(msg);
        break;
      case "error":
      case "auth_error":
        this.ctx.toast(`Live updates: ${msg.message || "the server refused the dashboard connection"}`, "error");
        break;
      default:
        break; // auth_success, pong and anything newer
    }
  }

  applySnapshot(snapshot) {
    const seen = new Set();
    for (const p of snapshot.printers || []) {
      seen.add(p.printer_id);
      this.applyPrinter(p, { replaceAll: true });
    }
    // A printer the snapshot no longer has was removed (REST rows without a hub stay).
    for (const id of [...this.printers.keys()]) {
      if (!seen.has(id) && this.printers.get(id).fromSnapshot) this.removePrinter(id);
    }
    this.hubs.clear();
    for (const hub of snapshot.hubs || []) this.hubs.set(hub.hub_id, hub);
    this.renderHubs();
    for (const job of snapshot.jobs || []) this.applyJob(job, { quiet: true });
    // Jobs that were active but are not in the snapshot finished while we were away.
    const activeIds = new Set((snapshot.jobs || []).map((j) => j.job_id));
    if ([...this.jobs.values()].some((j) => ACTIVE_JOBS.has(j.status) && !activeIds.has(j.id))) {
      this.later("jobs", 300, () => this.loadJobs());
    }
  }

  applyPrinter(frame, { replaceAll = false } = {}) {
    const id = frame.printer_id;
    if (!id) return;
    const old = this.printers.get(id) || {};
    const next = replaceAll
      ? { name: old.name, model: old.model, ...frame, fromSnapshot: true }
      : { ...old, ...frame, fromSnapshot: old.fromSnapshot || !!frame.hub_id };
    if (!replaceAll && frame.type === "printer_status") {
      // Absent fields in a live frame mean "none now" (the server drops None values).
      for (const key of ["job_id", "progress", "remaining_minutes", "current_layer", "total_layers", "error_code"]) {
        if (!(key in frame)) delete next[key];
      }
    }
    if (!next.name && !this.askedNames.has(id)) {
      this.askedNames.add(id); // once per printer: a printer REST does not know stays nameless
      this.later("printers", 1000, () => this.loadPrinters());
    }
    this.printers.set(id, next);
    this.renderPrinter(id);
    if (this.chartPrinter === id && frame.type === "printer_status") this.appendLivePoint(next);
  }

  applyHub(frame) {
    this.hubs.set(frame.hub_id, { ...(this.hubs.get(frame.hub_id) || {}), ...frame });
    this.renderHubs();
  }

  applyJob(frame, { quiet = false } = {}) {
    const id = frame.job_id || frame.id;
    if (!id) return;
    const known = this.jobs.get(id);
    const job = { ...(known || {}), ...frame, id };
    delete job.type;
    this.jobs.set(id, job);
    if ((!known || !known.file_name) && !this.askedJobs.has(id)) {
      // A job this page has not listed yet (started elsewhere): fetch its name, once.
      this.askedJobs.add(id);
      this.later("jobs", 500, () => this.loadJobs());
    } else if (!quiet && known.status !== job.status && !ACTIVE_JOBS.has(job.status)) {
      this.later("jobs", 500, () => this.loadJobs()); // finished: pick up times and reasons
    }
    this.renderJobs();
  }

  applyAlert(alert) {
    this.alerts = [alert, ...this.alerts.filter((a) => a.alert_id !== alert.alert_id)].slice(0, MAX_ALERTS);
    this.alertBox.hidden = false;
    replace(this.alertList, this.alerts.map((a) => h("li", { class: `notice ${a.severity === "info" ? "" : a.severity === "critical" ? "error" : "warn"}`.trim() },
      h("strong", { text: a.severity === "critical" ? "Critical: " : a.severity === "warning" ? "Warning: " : "" }),
      a.message, " ", h("span", { class: "muted", text: fmtTime(a.ts ? new Date(a.ts).toISOString() : null) }))));
  }

  // -- printers -------------------------------------------------------------------

  async loadPrinters() {
    try {
      const body = await this.call("GET", "/api/v1/printers", { query: { limit: 200, is_active: true } });
      for (const row of (body && body.data) || []) {
        const old = this.printers.get(row.id);
        this.printers.set(row.id, {
          printer_id: row.id, status: row.status, hub_id: row.hub_id, ...(old || {}),
          name: row.name, model: row.model,
        });
        this.renderPrinter(row.id);
      }
    } catch (err) {
      if (!this.stopped) this.ctx.toast(`Could not load the printers: ${describeError(err)}`, "error");
    }
  }

  removePrinter(id) {
    this.printers.delete(id);
    const card = this.cards.get(id);
    if (card) card.el.remove();
    this.cards.delete(id);
    this.afterPrintersChanged();
  }

  printerName(id) {
    const p = this.printers.get(id);
    return (p && p.name) || (id ? `Printer ${shortId(id)}` : "No printer");
  }

  renderPrinter(id) {
    const p = this.printers.get(id);
    let card = this.cards.get(id);
    if (!card) {
      card = this.makeCard(id);
      this.cards.set(id, card);
      this.printerGrid.append(card.el);
      this.sortCards();
    }
    const name = this.printerName(id);
    const status = p.status || "offline";
    card.el.dataset.status = status;
    card.name.textContent = name;
    replace(card.badge, badge(STATUS_KIND, STATUS_TEXT, status));
    card.progress.el.setAttribute("aria-label", `Print progress of ${name}`);
    // An idle printer may still report its last job's numbers: show them only while they mean something.
    const hasJob = status === "printing" || status === "paused" || (status === "error" && Boolean(p.job_id));
    card.progress.set(hasJob ? p.progress : 0);
    const layers = p.total_layers ? ` · layer ${p.current_layer ?? 0} of ${p.total_layers}` : "";
    card.progressText.textContent = hasJob ? `${clampPercent(p.progress)} %${layers}` : "Not printing";
    card.nozzle.textContent = temp(p.nozzle_temp);
    card.bed.textContent = temp(p.bed_temp);
    if ((status === "printing" || status === "paused") && p.remaining_minutes !== undefined && p.remaining_minutes !== null) {
      const done = new Date(Date.now() + p.remaining_minutes * 60e3);
      replace(card.eta, minutesText(p.remaining_minutes),
        h("span", { class: "eta-clock", text: `done ≈ ${done.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` }));
    } else {
      card.eta.textContent = "—";
    }
    card.error.hidden = !(status === "error" || p.error_code);
    card.error.textContent = p.error_code ? `Printer error ${p.error_code}` : "The printer reports an error.";
    const hub = p.hub_id ? this.hubs.get(p.hub_id) : null;
    card.hub.textContent = p.hub_id ? `Hub: ${(hub && hub.name) || shortId(p.hub_id)}` : "Not on a hub";
    card.chartButton.setAttribute("aria-label", `Show the chart of ${name}`);
    card.chartButton.setAttribute("aria-pressed", String(this.chartPrinter === id));
    this.afterPrintersChanged();
  }

  makeCard(id) {
    const headingId = `printer-${id}-name`;
    const name = h("h3", { id: headingId });
    const badgeBox = h("span", { "data-testid": "printer-status" });
    const progress = progressBar("Print progress", "printer-progress");
    const progressText = h("p", { class: "progress-text muted", "data-testid": "printer-progress-text" });
    const nozzle = h("dd", { "data-testid": "nozzle-temp" });
    const bed = h("dd", { "data-testid": "bed-temp" });
    const eta = h("dd", { "data-testid": "printer-eta" });
    const error = h("p", { class: "notice error printer-error", "data-testid": "printer-error" });
    const hub = h("span", { class: "muted" });
    const chartButton = h("button", {
      type: "button", class: "subtle small", "data-testid": "show-chart", "aria-pressed": "false",
      onclick: () => this.selectChartPrinter(id, { scroll: true }),
    }, "Chart");
    const el = h("article", { class: "card printer-card", "data-printer-id": id, "aria-labelledby": headingId },
      h("div", { class: "row spread printer-card-head" }, name, badgeBox),
      progress.el, progressText,
      h("dl", { class: "printer-facts" },
        h("div", {}, h("dt", { text: "Nozzle" }), nozzle),
        h("div", {}, h("dt", { text: "Bed" }), bed),
        h("div", {}, h("dt", { text: "Time left" }), eta)),
      error,
      h("div", { class: "row spread printer-card-foot" }, hub, chartButton));
    return { el, name, badge: badgeBox, progress, progressText, nozzle, bed, eta, error, hub, chartButton };
  }

  sortCards() {
    const ordered = [...this.cards.entries()].sort((a, b) => this.printerName(a[0]).localeCompare(this.printerName(b[0])));
    reorder(this.printerGrid, ordered.map(([, card]) => card.el));
  }

  afterPrintersChanged() {
    this.printersEmpty.hidden = this.printers.size > 0;
    this.later("printer-options", 50, () => {
      this.sortCards();
      this.fillPrinterOptions();
    });
  }

  fillPrinterOptions() {
    const printers = [...this.printers.entries()].sort((a, b) => this.printerName(a[0]).localeCompare(this.printerName(b[0])));
    const fill = (select, placeholder, describe) => {
      if (!select) return;
      // Rebuild only when the choices changed: an open list must not jump under the finger.
      const key = JSON.stringify(printers.map(([id, p]) => [id, describe(id, p)]));
      if (select.dataset.optionsKey === key) return;
      select.dataset.optionsKey = key;
      const current = select.value;
      replace(select, h("option", { value: "", text: placeholder }),
        printers.map(([id, p]) => h("option", { value: id, text: describe(id, p) })));
      if (current && this.printers.has(current)) select.value = current;
    };
    fill(this.startPrinter, "Choose a printer…", (id, p) => {
      const status = STATUS_TEXT[p.status] || p.status || "unknown";
      return `${this.printerName(id)} (${status.toLowerCase()}${p.hub_id ? "" : ", no hub"})`;
    });
    fill(this.chartPrinterSelect, "Choose a printer…", (id) => this.printerName(id));
    if (!this.chartPrinter && printers.length) this.selectChartPrinter(printers[0][0]);
    else if (this.chartPrinterSelect && this.chartPrinter) this.chartPrinterSelect.value = this.chartPrinter;
  }

  // -- hubs -----------------------------------------------------------------------

  renderHubs() {
    const hubs = [...this.hubs.values()].sort((a, b) => String(a.name || a.hub_id).localeCompare(String(b.name || b.hub_id)));
    replace(this.hubList, hubs.map((hub) => h("li", { class: "hub-item", "data-hub-id": hub.hub_id },
      h("span", { class: "hub-name", text: hub.name || `Hub ${shortId(hub.hub_id)}` }),
      h("span", { class: `badge ${hub.is_online ? "ok" : "danger"}`, text: hub.is_online ? "Online" : "Offline" }),
      h("span", { class: "muted hub-meta", text: [
        `${hub.printer_count ?? 0} printer${hub.printer_count === 1 ? "" : "s"}`,
        hub.is_online || !hub.last_seen_at ? null : `last seen ${fmtTime(new Date(hub.last_seen_at).toISOString())}`,
      ].filter(Boolean).join(" · ") }))));
    this.hubsEmpty.hidden = hubs.length > 0;
    for (const id of this.cards.keys()) {
      const p = this.printers.get(id);
      if (p && p.hub_id) this.renderPrinterHub(id);
    }
  }

  renderPrinterHub(id) {
    const p = this.printers.get(id);
    const card = this.cards.get(id);
    const hub = this.hubs.get(p.hub_id);
    card.hub.textContent = `Hub: ${(hub && hub.name) || shortId(p.hub_id)}`;
  }

  // -- jobs -----------------------------------------------------------------------

  async loadJobs() {
    try {
      const body = await this.call("GET", "/api/v1/print-jobs", { query: { limit: JOBS_LIMIT, sort: "-submitted_at" } });
      const rows = (body && body.data) || [];
      const listed = new Set(rows.map((r) => r.id));
      for (const row of rows) {
        const live = this.jobs.get(row.id);
        // A live frame newer than the row wins for status and progress.
        const merged = { ...live, ...row, job_id: row.id };
        if (live && live.ts && Date.parse(row.updated_at) < live.ts) {
          merged.status = live.status;
          merged.progress = live.progress;
        }
        this.jobs.set(row.id, merged);
      }
      // Keep live-only active jobs; drop finished ones that fell off the page.
      for (const [id, job] of this.jobs) {
        if (!listed.has(id) && !ACTIVE_JOBS.has(job.status)) this.jobs.delete(id);
      }
      this.jobsError.hidden = true;
      this.renderJobs();
    } catch (err) {
      if (this.stopped) return;
      this.showError(this.jobsError, `Could not load the print jobs: ${describeError(err)}`);
    }
  }

  renderJobs() {
    const jobs = [...this.jobs.values()].sort((a, b) => {
      const ta = Date.parse(a.submitted_at || "") || a.ts || 0;
      const tb = Date.parse(b.submitted_at || "") || b.ts || 0;
      return tb - ta;
    });
    const seen = new Set();
    for (const job of jobs) {
      seen.add(job.id);
      let row = this.jobRows.get(job.id);
      if (!row) {
        row = this.makeJobRow(job.id);
        this.jobRows.set(job.id, row);
      }
      this.fillJobRow(row, job);
    }
    reorder(this.jobList, jobs.map((job) => this.jobRows.get(job.id).el));
    for (const [id, row] of this.jobRows) {
      if (!seen.has(id)) {
        row.el.remove();
        this.jobRows.delete(id);
      }
    }
    this.jobsEmpty.hidden = jobs.length > 0;
  }

  makeJobRow(id) {
    const name = h("strong", { class: "job-name" });
    const badgeBox = h("span", { "data-testid": "job-status" });
    const progress = progressBar("Job progress", "job-progress");
    const meta = h("p", { class: "muted job-meta" });
    const reason = h("p", { class: "job-reason" });
    const actions = h("div", { class: "row job-actions" });
    const el = h("li", { class: "job-row", "data-job-id": id },
      h("div", { class: "row spread" }, name, badgeBox), progress.el, meta, reason, actions);
    return { el, name, badge: badgeBox, progress, meta, reason, actions, shown: "" };
  }

  fillJobRow(row, job) {
    const fileName = job.file_name || `Job ${shortId(job.id)}`;
    const printer = this.printerName(job.printer_id);
    row.el.dataset.status = job.status;
    row.name.textContent = fileName;
    replace(row.badge, badge(JOB_KIND, JOB_TEXT, job.status));
    row.progress.el.setAttribute("aria-label", `Progress of ${fileName}`);
    row.progress.set(job.progress);
    const when = job.submitted_at ? `submitted ${fmtTime(job.submitted_at)}` : "";
    const took = job.actual_time_minutes !== undefined && job.actual_time_minutes !== null
      ? `took ${fmtDuration(job.actual_time_minutes * 60)}` : "";
    row.meta.textContent = [`on ${printer}`, `${clampPercent(job.progress)} %`, when, took,
      job.file_size ? fmtBytes(job.file_size) : ""].filter(Boolean).join(" · ");
    row.reason.hidden = !job.failure_reason;
    row.reason.textContent = job.failure_reason ? `Reason: ${job.failure_reason}` : "";
    if (!this.mayManage) {
      row.actions.hidden = true;
      return;
    }
    const actions = JOB_ACTIONS[job.status] || [];
    const key = `${actions.join(",")}|${fileName}|${printer}`;
    if (row.shown === key) return; // keep the buttons (and keyboard focus) when nothing changed
    row.shown = key;
    row.actions.hidden = actions.length === 0;
    replace(row.actions, actions.map((action) => h("button", {
      type: "button",
      class: action === "cancel" ? "danger small" : "small",
      "data-testid": `job-${action}`,
      "aria-label": `${ACTION_TEXT[action]} ${fileName} on ${printer}`,
      onclick: (e) => this.jobAction(job.id, action, e.currentTarget),
    }, ACTION_TEXT[action])));
  }

  async jobAction(id, action, button) {
    const job = this.jobs.get(id);
    const fileName = (job && job.file_name) || "the job";
    if (button) button.disabled = true;
    try {
      const body = await this.call("POST", `/api/v1/print-jobs/${id}/${action}`, { json: {} });
      if (body && body.data) this.jobs.set(id, { ...this.jobs.get(id), ...body.data, job_id: id });
      this.jobsError.hidden = true;
      this.ctx.toast(`${ACTION_DONE[action]} for ${fileName}.`, "ok");
      this.renderJobs();
    } catch (err) {
      if (this.stopped) return;
      this.showError(this.jobsError, `Could not ${action} ${fileName}: ${describeError(err)}`);
      this.later("jobs", 200, () => this.loadJobs());
    } finally {
      if (button && button.isConnected) button.disabled = false;
    }
  }

  // -- start a print --------------------------------------------------------------

  async loadFiles() {
    if (!this.startFile) return;
    try {
      const body = await this.call("GET", "/api/v1/files", { query: { limit: 200, sort: "-created_at" } });
      this.files = (body && body.data) || [];
      this.fillFileOptions();
    } catch (err) {
      if (!this.stopped) this.showError(this.startError, `Could not load the print files: ${describeError(err)}`);
    }
  }

  fillFileOptions(selectId) {
    const current = selectId || this.startFile.value;
    replace(this.startFile, h("option", { value: "", text: this.files.length ? "Choose a file…" : "No files uploaded yet" }),
      this.files.map((f) => h("option", { value: f.id, text: `${f.name} (${fmtBytes(f.size_bytes)})` })));
    if (current && this.files.some((f) => f.id === current)) this.startFile.value = current;
  }

  async uploadPrintFile() {
    const chosen = this.uploadInput.files && this.uploadInput.files[0];
    if (!chosen) return;
    const file = withTextType(chosen);
    const form = new FormData();
    form.append("file", file, file.name);
    this.startError.hidden = true;
    this.uploadProgress.el.hidden = false;
    this.uploadProgress.set(0);
    this.uploadStatus.textContent = `Uploading ${chosen.name}…`;
    this.startButton.disabled = true;
    try {
      const body = await upload("/api/v1/files", form, {
        signal: this.aborter.signal,
        onProgress: (loaded, total) => {
          const fraction = typeof loaded === "object" && loaded ? loaded.loaded / (loaded.total || 1)
            : total ? loaded / total : loaded;
          this.uploadProgress.set((fraction || 0) * 100);
        },
      });
      const row = body && body.data;
      this.uploadProgress.set(100);
      this.uploadStatus.textContent = `Uploaded ${chosen.name}.`;
      if (row) {
        this.files = [row, ...this.files.filter((f) => f.id !== row.id)];
        this.fillFileOptions(row.id);
      }
    } catch (err) {
      if (this.stopped) return;
      this.uploadStatus.textContent = "";
      this.showError(this.startError, `Could not upload ${chosen.name}: ${describeError(err)}`);
    } finally {
      this.uploadProgress.el.hidden = true;
      this.startButton.disabled = false;
      this.uploadInput.value = "";
    }
  }

  async startPrint(event) {
    event.preventDefault();
    const printerId = this.startPrinter.value;
    const fileId = this.startFile.value;
    if (!printerId || !fileId) {
      this.showError(this.startError, !printerId ? "Choose a printer first." : "Choose a print file first (or upload one).");
      (printerId ? this.startFile : this.startPrinter).focus();
      return;
    }
    this.startButton.disabled = true;
    this.startError.hidden = true;
    try {
      const body = await this.call("POST", "/api/v1/print-jobs", { json: { printer_id: printerId, file_id: fileId } });
      const job = body && body.data;
      if (job) this.jobs.set(job.id, { ...this.jobs.get(job.id), ...job, job_id: job.id });
      this.renderJobs();
      this.ctx.toast(`Print queued on ${this.printerName(printerId)}.`, "ok");
      this.selectChartPrinter(printerId);
    } catch (err) {
      if (this.stopped) return;
      this.showError(this.startError, `Could not start the print: ${describeError(err)}`);
    } finally {
      this.startButton.disabled = false;
    }
  }

  showError(box, message) {
    if (!box) {
      this.ctx.toast(message, "error");
      return;
    }
    box.textContent = message;
    box.hidden = false;
  }

  // -- chart ----------------------------------------------------------------------

  selectChartPrinter(id, { scroll = false } = {}) {
    if (!id || this.stopped) return;
    const changed = id !== this.chartPrinter;
    this.chartPrinter = id;
    if (changed) this.chartSeries = null; // live points of the old printer must not land in the new chart
    if (this.chartPrinterSelect) this.chartPrinterSelect.value = id;
    for (const [pid, card] of this.cards) card.chartButton.setAttribute("aria-pressed", String(pid === id));
    if (changed) this.loadChart();
    if (scroll) {
      this.chartPrinterSelect.scrollIntoView({ behavior: "smooth", block: "start" });
      this.chartPrinterSelect.focus({ preventScroll: true });
    }
  }

  async loadChart() {
    const id = this.chartPrinter;
    if (!id || this.stopped) return;
    const range = this.chartRange;
    if (this.chartAbort) this.chartAbort.abort();
    const aborter = (this.chartAbort = new AbortController());
    const start = new Date(Date.now() - range.ms).toISOString();
    const fetchSeries = (interval) => api("GET", `/api/v1/printers/${id}/telemetry`, {
      query: { start, interval, metrics: "nozzle_temp,bed_temp,progress" },
      signal: aborter.signal,
    });
    try {
      let body;
      let interval = range.interval;
      try {
        body = await fetchSeries(interval);
      } catch (err) {
        // Too many points for this range: the server names an interval that fits; ask once more.
        const better = err && err.code === "payload_too_large" && err.details && err.details.suggested_interval;
        if (!better) throw err;
        interval = better;
        body = await fetchSeries(interval);
      }
      if (aborter.signal.aborted || this.chartPrinter !== id) return;
      const series = {};
      for (const s of (body && body.data && body.data.series) || []) {
        series[s.metric] = s.points.map((p) => ({ t: p.ts, v: p.value ?? p.avg })).filter((p) => p.v !== null && p.v !== undefined);
      }
      this.chartSeries = {
        interval, nozzle: series.nozzle_temp || [], bed: series.bed_temp || [], progress: series.progress || [],
      };
      this.drawChart();
      this.chartStatus.textContent = `${this.printerName(id)}, ${range.label.toLowerCase()}. Updated ${new Date().toLocaleTimeString()}.`;
    } catch (err) {
      if (aborter.signal.aborted || this.stopped) return;
      this.chartStatus.textContent = `Could not load the history: ${describeError(err)}`;
    }
  }

  appendLivePoint(p) {
    // Only the raw range is a sample-per-status series; buckets wait for the refresh.
    if (!this.chartSeries || this.chartSeries.interval !== "raw") return;
    const t = Number(p.ts) || Date.now();
    const cutoff = Date.now() - this.chartRange.ms;
    const push = (arr, v) => {
      if (v === null || v === undefined || !Number.isFinite(Number(v))) return;
      if (arr.length && arr[arr.length - 1].t >= t) return;
      arr.push({ t, v: Number(v) });
      while (arr.length && (arr[0].t < cutoff || arr.length > MAX_LIVE_POINTS)) arr.shift();
    };
    push(this.chartSeries.nozzle, p.nozzle_temp);
    push(this.chartSeries.bed, p.bed_temp);
    push(this.chartSeries.progress, p.progress);
    this.later("chart-draw", 1000, () => this.drawChart());
  }

  drawChart() {
    const s = this.chartSeries || { nozzle: [], bed: [], progress: [] };
    this.tempChart.update([
      { name: "Nozzle", className: "series-nozzle", points: s.nozzle },
      { name: "Bed", className: "series-bed", points: s.bed },
    ]);
    this.progressChart.update([{ name: "Progress", className: "series-progress", points: s.progress }]);
  }
}
