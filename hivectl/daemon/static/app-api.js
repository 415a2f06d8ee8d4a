// The web UI's client of hivectld's /1.0 API (docs/api.md): the bearer token, requests and operations.
//
// The token is kept in sessionStorage (this tab only, gone when it closes) and sent as an Authorization
// header: never in a URL, a cookie or localStorage. Reached through an ssh -L forward of the unix socket
// the daemon knows the caller from the socket and no token is needed (docs/web-ui.md).

const TOKEN_KEY = "hivectl.token";
const FINAL = new Set(["Success", "Failure", "Cancelled"]);

/** An answer of the API that is an error: its one-line message is the CLI's, word for word. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function headers(extra = {}) {
  const h = { ...extra };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

/** One request; resolves to the envelope (sync or async), rejects with ApiError on an error envelope. */
export async function call(method, path, { body, query, signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    for (const one of Array.isArray(v) ? v : [v]) url.searchParams.append(k, String(one));
  }
  const init = { method, headers: headers({ Accept: "application/json" }), signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let reply;
  try {
    reply = await fetch(url, init);
  } catch (error) {
    throw new ApiError(0, "unreachable", `hivectld did not answer: ${error.message}`);
  }
  let envelope = null;
  try {
    envelope = await reply.json();
  } catch {
    throw new ApiError(reply.status, "invalid", `hivectld answered ${reply.status} without JSON`);
  }
  if (!reply.ok || envelope.type === "error") {
    throw new ApiError(reply.status, envelope.code || "failed", envelope.error || `HTTP ${reply.status}`);
  }
  return envelope;
}

/** The metadata of a sync answer. */
export async function get(path, query) {
  return (await call("GET", path, { query })).metadata;
}

/**
 * Run an operation and follow it to its end: a sync answer is its result at once; an async one (202) is
 * waited on through /1.0/operations/ID/wait until it is done. Resolves to the result, rejects with the
 * operation's one-line error. `onStarted(operationInfo)` is told the operation's id (its progress arrives
 * on the event stream as "operation" events).
 */
export async function run(method, path, { body, query, onStarted } = {}) {
  const envelope = await call(method, path, { body, query });
  if (envelope.type !== "async") return envelope.metadata;
  if (onStarted) onStarted(envelope.metadata);
  let info = envelope.metadata;
  while (!FINAL.has(info.status)) {
    info = (await call("GET", `${envelope.operation}/wait`, { query: { timeout: 30 } })).metadata;
  }
  if (info.status !== "Success") {
    throw new ApiError(400, info.code || "failed", info.err || `${info.description}: ${info.status}`);
  }
  return info.metadata ? info.metadata.result : null;
}

/** What the caller may do: its role on each path, and the role and path each operation needs. */
export class Rights {
  static RANK = { viewer: 1, operator: 2, admin: 3 };

  constructor(whoami) {
    this.principal = whoami.principal;
    this.roles = { ...whoami.roles };
    this.operations = whoami.operations;
  }

  /** The role on `path`, or on the nearest path above it that was asked about. */
  roleOn(path) {
    for (let p = path; ; p = p.slice(0, p.lastIndexOf("/")) || "/") {
      if (p in this.roles) return this.roles[p];
      if (p === "/") return null;
    }
  }

  /** True when the caller holds the role `operation` needs on the resource `name` (a guest by default). */
  may(operation, name = null) {
    const op = this.operations[operation];
    if (!op) return false;
    const path = name === null || op.path === "/" ? op.path.replace("/{name}", "") || "/"
      : op.path.replace("{name}", name);
    const have = this.roleOn(path);
    return have !== null && Rights.RANK[have] >= Rights.RANK[op.role];
  }
}
