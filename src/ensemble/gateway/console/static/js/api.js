// The REST client: bearer tokens, one refresh on 401, errors as ApiError.
//
// The login (access + refresh token) is kept in localStorage so a reload or a
// new tab stays signed in; logging out or a refused refresh forgets it and
// fires "ensemble:signed-out" on window, which the shell turns into the login
// page with a sentence saying why.

const STORE_KEY = "ensemble.login";
const REFRESH_MARGIN_MS = 30_000;

export class ApiError extends Error {
  constructor(status, code, message, details = null, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

let login = readLogin();
let refreshing = null;

function readLogin() {
  try {
    const value = JSON.parse(localStorage.getItem(STORE_KEY));
    return value && value.access_token && value.refresh_token ? value : null;
  } catch {
    return null;
  }
}

function keepLogin(tokens) {
  login = {
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    expires_at: Date.now() + Number(tokens.expires_in || 0) * 1000,
  };
  localStorage.setItem(STORE_KEY, JSON.stringify(login));
}

function forgetLogin(reason) {
  const had = login !== null;
  login = null;
  localStorage.removeItem(STORE_KEY);
  if (had) window.dispatchEvent(new CustomEvent("ensemble:signed-out", { detail: { reason } }));
}

// Another tab refreshed or logged out: follow it.
window.addEventListener("storage", (event) => {
  if (event.key === STORE_KEY) login = readLogin();
});

export function isSignedIn() {
  return login !== null;
}

export function accessToken() {
  return login ? login.access_token : null;
}

// An access token good for at least REFRESH_MARGIN_MS (for sockets, which
// cannot answer a 401 with a retry).
export async function freshAccessToken() {
  if (!login) throw new ApiError(401, "unauthenticated", "You are signed out.");
  if (Date.now() > login.expires_at - REFRESH_MARGIN_MS) await refresh();
  return login.access_token;
}

async function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const current = login;
      if (!current) throw new ApiError(401, "unauthenticated", "You are signed out.");
      const res = await fetch("/api/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ refresh_token: current.refresh_token }),
      });
      if (!res.ok) {
        const error = await toError(res);
        if (res.status === 401) forgetLogin("Your sign-in has ended. Please log in again.");
        throw error;
      }
      keepLogin((await res.json()).data);
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

export async function signIn(email, password) {
  const body = await api("POST", "/api/v1/auth/login", { json: { email, password }, anonymous: true });
  keepLogin(body.data);
  return body.data;
}

export async function signOut() {
  const current = login;
  if (!current) return;
  try {
    await api("POST", "/api/v1/auth/logout", { json: { refresh_token: current.refresh_token } });
  } catch {
    // Signing out locally is what matters; the server session expires anyway.
  }
  forgetLogin(null);
}

function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}${path.includes("?") ? "&" : "?"}${text}` : path;
}

// An error answer as ApiError: the server's {error, message, details} body
// when there is one (a proxy's page is not), and Retry-After in seconds.
function errorOf(status, body, retryAfter, statusText = "") {
  const retry = Number(retryAfter);
  return new ApiError(
    status,
    (body && body.error) || `http_${status}`,
    (body && body.message) || statusText || `The server answered ${status}.`,
    (body && body.details) || null,
    Number.isFinite(retry) && retry > 0 ? retry : null,
  );
}

async function toError(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: a proxy's page, say
  }
  return errorOf(res.status, body, res.headers.get("Retry-After"), res.statusText);
}

// api("GET", "/api/v1/printers", {query: {limit: 50}}) -> parsed JSON (null for 204).
// Options: json (a body), body (FormData/Blob as is), query, signal, anonymous.
export async function api(method, path, { json, body, query, signal, anonymous = false } = {}) {
  const url = withQuery(path, query);
  const send = async () => {
    const headers = { Accept: "application/json" };
    if (json !== undefined) headers["Content-Type"] = "application/json";
    if (!anonymous) {
      const token = await freshAccessToken();
      headers.Authorization = `Bearer ${token}`;
    }
    return fetch(url, {
      method,
      headers,
      body: json !== undefined ? JSON.stringify(json) : body,
      signal,
    });
  };
  let res = await send();
  if (res.status === 401 && !anonymous && login) {
    await refresh();
    res = await send();
  }
  if (!res.ok) throw await toError(res);
  if (res.status === 204) return null;
  const type = res.headers.get("Content-Type") || "";
  return type.includes("json") ? res.json() : res.blob();
}

// A chosen file with a content type the server takes.  G-code has no
// registered type (browsers send none, or Chromium's text/x.gcode); it is
// plain text, and so are .txt/.md files a browser left untyped.
export function withTextType(file) {
  if (/\.(gcode|gco|g)$/i.test(file.name) || (!file.type && /\.(txt|md)$/i.test(file.name))) {
    return new File([file], file.name, { type: /\.md$/i.test(file.name) ? "text/markdown" : "text/plain" });
  }
  return file;
}

// Upload a FormData with progress: onProgress(loaded, total).  XHR, because
// fetch() cannot report upload progress.
export async function upload(path, formData, { onProgress, signal } = {}) {
  const attempt = (token) => new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (onProgress && event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => resolve(xhr));
    xhr.addEventListener("error", () => reject(new TypeError("network error")));
    xhr.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
    if (signal) signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(formData);
  });
  let xhr = await attempt(await freshAccessToken());
  if (xhr.status === 401 && login) {
    await refresh();
    xhr = await attempt(login.access_token);
  }
  let body = null;
  try {
    body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
  } catch {
    body = null;
  }
  if (xhr.status < 200 || xhr.status >= 300) {
    throw errorOf(xhr.status, body, xhr.getResponseHeader("Retry-After"));
  }
  return body;
}

// A sentence for people, never a stack trace.
export function describeError(err) {
  if (err instanceof ApiError) {
    switch (err.code) {
      case "unauthenticated":
        return "You are signed out. Please log in again.";
      case "forbidden":
        return `Your role doesn't allow this. ${err.message}`;
      case "rate_limited":
        return err.retryAfter
          ? `Too many requests. Try again in ${Math.ceil(err.retryAfter)} s.`
          : "Too many requests. Try again in a moment.";
      case "payload_too_large":
        return `That is too large. ${err.message}`;
      default:
        return err.message || `Something went wrong (${err.status}).`;
    }
  }
  if (err && err.name === "AbortError") return "Cancelled.";
  if (err instanceof TypeError) return "Can't reach the server. Check your connection and try again.";
  return "Something went wrong. Please try again.";
}
