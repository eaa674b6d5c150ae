// The only way the pages talk to the server: the REST API under /api/v1.
// The signed-in session is exchanged for a short-lived JWT at /api/v1/me/; every other call
// sends it as a Bearer token, as any API client would.

export interface Permission { read: boolean; write: boolean }
export interface Me {
  id: number;
  username: string;
  name: string;
  roles: string[];
  is_admin: boolean;
  can: Record<string, Permission>;
  locale: string;
  timezone: string;
  executor?: string;   // "local" or "kubernetes": the installation's (workspace claims matter on kubernetes)
  access_token: string;
  expires_in: number;
}

export interface FieldError { field: string; message: string }

export class ApiError extends Error {
  status: number;
  errors: FieldError[];
  body: unknown;
  constructor(status: number, message: string, errors: FieldError[], body: unknown) {
    super(message);
    this.status = status;
    this.errors = errors;
    this.body = body;
  }
}

const BASE = "/api/v1";
let me: Me | null = null;
let mePromise: Promise<Me> | null = null;
let fetchedAt = 0;

function toLogin(): never {
  window.location.href = "/login/?next=" + encodeURIComponent(window.location.pathname + window.location.search);
  throw new ApiError(401, "not signed in", [], null);
}

/** Return the signed-in user (cached; refreshed before the token expires or when `force`). */
export async function loadMe(force = false): Promise<Me> {
  const fresh = me !== null && Date.now() - fetchedAt < (me.expires_in * 1000) / 2;
  if (!force && fresh && me) return me;
  if (!mePromise) {
    mePromise = (async () => {
      const res = await fetch(BASE + "/me/", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (res.status === 401) toLogin();
      if (!res.ok) throw new ApiError(res.status, `GET /me/: ${res.status}`, [], null);
      me = (await res.json()) as Me;
      fetchedAt = Date.now();
      return me;
    })().finally(() => { mePromise = null; });
  }
  return mePromise;
}

export function currentMe(): Me | null {
  return me;
}

export function can(resource: string, what: "read" | "write"): boolean {
  return Boolean(me?.can?.[resource]?.[what]);
}

export interface RequestOptions {
  body?: unknown;
  text?: string;           // a raw text body (YAML)
  contentType?: string;
  raw?: boolean;           // return the Response's text instead of JSON
  query?: Record<string, string | number | boolean | null | undefined>;
}

function withQuery(path: string, query?: RequestOptions["query"]): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== null && v !== undefined && v !== "") params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}${path.includes("?") ? "&" : "?"}${qs}` : path;
}

async function send(method: string, path: string, opts: RequestOptions, token: string): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json", Authorization: `Bearer ${token}` };
  let body: BodyInit | undefined;
  if (opts.text !== undefined) {
    body = opts.text;
    headers["Content-Type"] = opts.contentType ?? "application/yaml";
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["Content-Type"] = "application/json";
  }
  return fetch(BASE + withQuery(path, opts.query), { method, headers, body, credentials: "same-origin" });
}

/** Call the REST API; throw ApiError with the server's message and field errors on 4xx/5xx. */
export async function api<T = any>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  let token = (await loadMe()).access_token;
  let res = await send(method, path, opts, token);
  if (res.status === 401) {
    token = (await loadMe(true)).access_token;
    res = await send(method, path, opts, token);
  }
  const text = await res.text();
  if (!res.ok) {
    let data: any = null;
    try { data = JSON.parse(text); } catch { data = null; }
    const message = (data && (data.message || data.msg)) || `${method} ${path}: HTTP ${res.status}`;
    const errors: FieldError[] = Array.isArray(data?.errors) ? data.errors : [];
    throw new ApiError(res.status, typeof message === "string" ? message : JSON.stringify(message), errors, data);
  }
  if (opts.raw) return text as unknown as T;
  return (text ? JSON.parse(text) : {}) as T;
}

export const get = <T = any>(path: string, query?: RequestOptions["query"]) => api<T>("GET", path, { query });
export const post = <T = any>(path: string, body?: unknown, query?: RequestOptions["query"]) =>
  api<T>("POST", path, { body: body ?? {}, query });

/** Return whether an error means "this endpoint does not exist on this server" (not a JSON 404). */
export function isMissingEndpoint(err: unknown): boolean {
  return err instanceof ApiError && (err.status === 404 || err.status === 405) && err.body === null;
}

/** Save text as a file in the browser. */
export function download(filename: string, text: string, type = "text/plain"): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
