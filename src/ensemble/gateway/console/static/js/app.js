// The console shell: a hash router, the login gate, navigation and the
// account bar.  Each page is a view module:
//
//   export const title = "Dashboard";
//   export async function mount(root, ctx) { ...; return () => cleanup(); }
//
// ctx = {params, me, navigate(hash), toast(message, kind)}; `me` is the body of
// GET /api/v1/me (user, tenant, role, permissions).

import { api, describeError, isSignedIn, signOut } from "./api.js";
import { openSockets } from "./live.js";
import { h, replace, toast } from "./ui.js";

// Tests reach the open sockets here (to drop them); nothing else uses it.
window.ensembleConsole = { live: openSockets };

const ROUTES = [
  { pattern: /^\/login$/, module: "./views/login.js", public: true },
  { pattern: /^\/dashboard$/, module: "./views/dashboard.js", nav: "dashboard" },
  { pattern: /^\/sessions$/, module: "./views/sessions.js", nav: "sessions" },
  { pattern: /^\/sessions\/(?<id>[0-9a-fA-F-]{36})$/, module: "./views/session.js", nav: "sessions" },
  { pattern: /^\/knowledge$/, module: "./views/knowledge.js", nav: "knowledge" },
  { pattern: /^\/admin$/, module: "./views/admin.js", nav: "admin" },
];
const HOME = "#/dashboard";

const main = document.getElementById("main");
let me = null;
let unmount = null;
let generation = 0;

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function currentPath() {
  const raw = location.hash.replace(/^#/, "");
  const [path, query = ""] = raw.split("?");
  return { path: path || "/", query: new URLSearchParams(query) };
}

async function loadMe() {
  try {
    me = (await api("GET", "/api/v1/me")).data;
  } catch (err) {
    me = null;
    if (err.status !== 401) toast(describeError(err), "error");
  }
  renderAccount();
  return me;
}

function renderAccount() {
  const nav = document.getElementById("nav");
  const account = document.getElementById("account");
  nav.hidden = account.hidden = !me;
  if (!me) return;
  document.getElementById("account-name").textContent = `${me.user.name || me.user.email} · ${me.tenant.name}`;
  document.getElementById("account-role").textContent = me.role;
  for (const link of nav.querySelectorAll("[data-needs]")) {
    link.hidden = !me.permissions.includes(link.dataset.needs);
  }
}

function markNav(name) {
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function route() {
  const mine = ++generation;
  const { path, query } = currentPath();
  if (path === "/") return navigate(HOME);
  const found = ROUTES.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  if (!found) return showPage(mine, null, "Not found", h("p", { class: "notice" }, "There is no such page. ", h("a", { href: HOME, text: "Go to the dashboard" })));
  if (!found.r.public) {
    if (!isSignedIn()) return navigate(`#/login?next=${encodeURIComponent(location.hash)}`);
    if (!me && !(await loadMe())) return navigate("#/login");
  }
  if (mine !== generation) return;
  let view;
  try {
    view = await import(found.r.module);
  } catch (err) {
    console.error(err);
    return showPage(mine, found.r.nav, "Unavailable", h("p", { class: "notice error", text: "This page could not be loaded. Reload to try again." }));
  }
  if (mine !== generation) return;
  teardown();
  replace(main);
  markNav(found.r.nav);
  document.title = `${view.title || "Ensemble"} · Ensemble`;
  const ctx = { params: { ...(found.m.groups || {}), query }, me, navigate, toast, refreshMe: loadMe };
  try {
    const cleanup = await view.mount(main, ctx);
    if (mine !== generation) {
      if (typeof cleanup === "function") cleanup();
      return;
    }
    unmount = typeof cleanup === "function" ? cleanup : null;
  } catch (err) {
    console.error(err);
    replace(main, h("p", { class: "notice error", role: "alert", text: describeError(err) }));
  }
  // Move focus to the new page (screen readers announce it), unless the view
  // already put it somewhere useful, like the login form's first field.
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
}

function showPage(mine, nav, title, content) {
  if (mine !== generation) return;
  teardown();
  markNav(nav);
  document.title = `${title} · Ensemble`;
  replace(main, h("h1", { text: title }), content);
}

function teardown() {
  if (!unmount) return;
  try {
    unmount();
  } catch (err) {
    console.error(err);
  }
  unmount = null;
}

window.addEventListener("hashchange", route);
window.addEventListener("ensemble:signed-out", (event) => {
  me = null;
  renderAccount();
  if (event.detail && event.detail.reason) toast(event.detail.reason, "error");
  navigate("#/login");
});
document.getElementById("logout").addEventListener("click", async () => {
  teardown();
  await signOut();
  me = null;
  renderAccount();
  navigate("#/login");
});

// After login the login view calls this to load the account and move on.
export async function signedIn(next) {
  await loadMe();
  navigate(next && next.startsWith("#/") && !next.startsWith("#/login") ? next : HOME);
}

route();
