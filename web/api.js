// The REST API client: runtime config, the session's tokens, and errors as the API shapes them.

const SESSION_KEY = "streamforge.session";

let config = null;

export async function loadConfig() {
  if (!config) {
    const response = await fetch("/config.json", { cache: "no-store" });
    if (!response.ok) throw new ApiError(response.status, "config_unavailable", "could not load /config.json");
    config = await response.json();
  }
  return config;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Tokens live in sessionStorage: they survive a reload but not the tab, and never reach localStorage.
export const session = {
  get() {
    try {
      return JSON.parse(sessionStorage.getItem(SESSION_KEY)) || null;
    } catch {
      return null;
    }
  },
  set(value) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
  },
  clear() {
    sessionStorage.removeItem(SESSION_KEY);
  },
};

async function parse(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = errorOf(response.status, body);
    throw new ApiError(response.status, error?.code || `http_${response.status}`,
      error?.message || response.statusText || "request failed");
  }
  return body;
}

// Codes for the answers API Gateway gives itself, which carry only {"message": "..."} (docs/api.md,
// "Answers from the gateway"): the same code the application uses for that status.
const GATEWAY_CODES = { 401: "unauthorized", 404: "route_not_found", 429: "too_many_requests", 500: "internal_error" };

// An error body comes in one of two shapes: the application's {"error": {code, message}}, or the gateway's
// {"message": "..."}; both become {code, message}.
function errorOf(status, body) {
  if (body?.error) return body.error;
  if (typeof body?.message === "string") return { code: GATEWAY_CODES[status], message: body.message };
  return null;
}

async function send(method, path, { body, auth = false } = {}) {
  const { apiUrl } = await loadConfig();
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const current = session.get();
  if (auth && current) headers.Authorization = `Bearer ${current.access_token}`;
  const response = await fetch(apiUrl + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { response, usedToken: auth && current ? current.access_token : null };
}

async function refreshTokens() {
  const current = session.get();
  if (!current?.refresh_token) return false;
  const { response } = await send("POST", "/v1/auth/refresh", { body: { refresh_token: current.refresh_token } });
  if (!response.ok) return false;
  const tokens = await response.json();
  session.set({ ...current, ...tokens, refresh_token: tokens.refresh_token || current.refresh_token });
  return true;
}

// One retry after a refresh when an access token has expired; a second 401 means signed out.
export async function request(method, path, options = {}) {
  let { response, usedToken } = await send(method, path, options);
  if (response.status === 401 && usedToken && (await refreshTokens())) {
    ({ response } = await send(method, path, options));
  }
  if (response.status === 401 && options.auth) {
    session.clear();
    window.dispatchEvent(new Event("streamforge:signed-out"));
  }
  return parse(response);
}

export const api = {
  signup: (email, username, password) => request("POST", "/v1/auth/signup", { body: { email, username, password } }),
  async login(login, password) {
    const body = login.includes("@") ? { email: login, password } : { username: login, password };
    const tokens = await request("POST", "/v1/auth/login", { body });
    session.set(tokens);
    const me = await request("GET", "/v1/users/me", { auth: true });
    session.set({ ...tokens, user_id: me.user_id, username: me.username });
    return me;
  },
  liveStreams: () => request("GET", "/v1/streams?status=live&limit=50"),
  stream: (id) => request("GET", `/v1/streams/${encodeURIComponent(id)}`),
  myStreams: (userId) => request("GET", `/v1/streams?owner=${encodeURIComponent(userId)}&limit=50`),
  createStream: (fields) => request("POST", "/v1/streams", { body: fields, auth: true }),
  keys: (id) => request("GET", `/v1/streams/${encodeURIComponent(id)}/keys`, { auth: true }),
  createKey: (id, name) => request("POST", `/v1/streams/${encodeURIComponent(id)}/keys`,
    { body: name ? { name } : {}, auth: true }),
  revokeKey: (id, keyId) => request("DELETE",
    `/v1/streams/${encodeURIComponent(id)}/keys/${encodeURIComponent(keyId)}`, { auth: true }),
  analytics: (id) => request("GET", `/v1/streams/${encodeURIComponent(id)}/analytics`, { auth: true }),
  // A viewer session of a live stream: {viewer_id, viewer_token, expires_in, playback_url}.
  playback: (id, viewerId) => request("POST", `/v1/streams/${encodeURIComponent(id)}/playback`,
    { body: { viewer_id: viewerId } }),
  heartbeat: (beat) => request("POST", "/v1/analytics/heartbeat", { body: beat }),
};
