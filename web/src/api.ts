// Thin client for the public AgCluster REST API (same origin).
import type {
  AgentConfig,
  ConfigSummary,
  FilePreview,
  FileTree,
  LaunchResponse,
  SessionInfo,
} from "./types";

export interface FieldError {
  field: string;
  message: string;
}

/** An HTTP error from the API, or a network failure (status 0). */
export class ApiError extends Error {
  status: number;
  code: string;
  detail: string;
  errors: FieldError[];
  body: any;
  /** Seconds the server asked us to wait (`Retry-After` of a 429 or 503), when it said. */
  retryAfter: number | null;
  constructor(status: number, code: string, detail: string, errors: FieldError[] = [], body: any = null, retryAfter: number | null = null) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.errors = errors;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}

function detailOf(body: any): string {
  if (!body) return "";
  if (typeof body === "string") return body;
  const d = body.detail ?? body.message ?? body.error;
  if (typeof d === "string") return d;
  if (d != null) return JSON.stringify(d);
  return "";
}

function errorsOf(body: any): FieldError[] {
  const errs = body && Array.isArray(body.errors) ? body.errors : [];
  return errs
    .filter((e: any) => e && typeof e === "object")
    .map((e: any) => ({ field: String(e.field ?? e.key ?? ""), message: String(e.message ?? "") }));
}

export async function errorFromResponse(res: Response): Promise<ApiError> {
  let body: any = null;
  const text = await res.text().catch(() => "");
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  const code = body && typeof body === "object" && typeof body.error === "string" ? body.error : "";
  const retry = Number(res.headers.get("Retry-After"));
  return new ApiError(res.status, code, detailOf(body), errorsOf(body), body, Number.isFinite(retry) && retry > 0 ? retry : null);
}

export function authHeaders(key: string | null | undefined): Record<string, string> {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

interface ReqOpts {
  method?: string;
  key?: string | null;
  json?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export async function rawRequest(path: string, opts: ReqOpts = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders(opts.key), ...opts.headers };
  let body: BodyInit | undefined;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  }
  let res: Response;
  try {
    res = await fetch(path, { method: opts.method ?? "GET", headers, body, signal: opts.signal });
  } catch (e) {
    if ((e as Error)?.name === "AbortError") throw e;
    throw new ApiError(0, "network", String((e as Error)?.message ?? e));
  }
  if (!res.ok) throw await errorFromResponse(res);
  return res;
}

export async function request<T>(path: string, opts: ReqOpts = {}): Promise<T> {
  const res = await rawRequest(path, opts);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Encode a workspace path segment by segment (keeps the slashes). */
export function encodePath(path: string): string {
  return path
    .split("/")
    .filter((s) => s !== "")
    .map(encodeURIComponent)
    .join("/");
}

export interface Health {
  status: "ok" | "degraded" | string;
  nats?: { ok: boolean };
  redis?: { ok: boolean };
  workers?: { alive: number };
}

/** A person's answer to a pending tool approval (POST /api/agents/{sid}/approvals/{id}). */
export interface ApprovalAnswer {
  decision: "allow" | "deny";
  message?: string;
  updated_input?: Record<string, unknown>;
  scope?: "once" | "session";
  name?: string;
}

export const api = {
  async health(): Promise<Health> {
    // 503 still carries the health body.
    let res: Response;
    try {
      res = await fetch("/health", { headers: { Accept: "application/json" } });
    } catch (e) {
      throw new ApiError(0, "network", String((e as Error)?.message ?? e));
    }
    const body = await res.json().catch(() => null);
    if (body && typeof body === "object" && "status" in body) return body as Health;
    throw new ApiError(res.status, "health", `health check answered HTTP ${res.status}`);
  },
  configs: () => request<{ configs: ConfigSummary[]; total: number }>("/api/configs/"),
  config: (id: string) => request<AgentConfig>(`/api/configs/${encodeURIComponent(id)}`),
  validate: (config: unknown, signal?: AbortSignal) =>
    request<{ valid: boolean; config: AgentConfig }>("/api/configs/validate", { method: "POST", json: config, signal }),
  // Config writes need the operator token (sent as the Bearer credential of these routes).
  saveCustom: (config: unknown, operatorToken: string) =>
    request<AgentConfig>("/api/configs/custom", { method: "POST", json: config, key: operatorToken }),
  deleteCustom: (id: string, operatorToken: string) =>
    request<void>(`/api/configs/custom/${encodeURIComponent(id)}`, { method: "DELETE", key: operatorToken }),
  launch: (body: {
    api_key: string;
    config_id?: string;
    config?: unknown;
    mcp_env?: Record<string, Record<string, string>>;
  }) => request<LaunchResponse>("/api/agents/launch", { method: "POST", json: body }),
  sessions: (key: string) => request<{ sessions: SessionInfo[]; total: number }>("/api/agents/sessions", { key }),
  session: (key: string, sid: string) =>
    request<SessionInfo>(`/api/agents/sessions/${encodeURIComponent(sid)}`, { key }),
  stopSession: (key: string, sid: string) =>
    request<unknown>(`/api/agents/sessions/${encodeURIComponent(sid)}`, { method: "DELETE", key }),
  chat: (key: string, sid: string, message: string, signal?: AbortSignal) =>
    request<any>(`/api/agents/${encodeURIComponent(sid)}/chat`, {
      method: "POST",
      key,
      json: { message },
      signal,
    }),
  approvals: (key: string, sid: string) =>
    request<{ approvals: any[]; total: number }>(`/api/agents/${encodeURIComponent(sid)}/approvals`, { key }),
  answerApproval: (key: string, sid: string, requestId: string, answer: ApprovalAnswer) =>
    request<{ status: "applied" | "queued"; decided_by: string }>(
      `/api/agents/${encodeURIComponent(sid)}/approvals/${encodeURIComponent(requestId)}`,
      { method: "POST", key, json: answer },
    ),
  interrupt: (key: string, sid: string) =>
    request<unknown>(`/api/agents/${encodeURIComponent(sid)}/interrupt`, { method: "POST", key }),
  files: (key: string, sid: string, signal?: AbortSignal) =>
    request<FileTree>(`/api/files/${encodeURIComponent(sid)}`, { key, signal }),
  async preview(key: string, sid: string, path: string): Promise<FilePreview> {
    const res = await rawRequest(`/api/files/${encodeURIComponent(sid)}/${encodePath(path)}`, {
      key,
      headers: { Accept: "application/json, image/*;q=0.9, */*;q=0.5" },
    });
    const ct = (res.headers.get("Content-Type") || "").toLowerCase();
    if (ct.startsWith("image/")) {
      const blob = await res.blob();
      return { type: "image", path, url: URL.createObjectURL(blob), mime: ct.split(";")[0], size: blob.size };
    }
    if (ct.includes("json")) return (await res.json()) as FilePreview;
    // Unknown content type: treat as text.
    const content = await res.text();
    return { type: "text", path, content, size: content.length };
  },
  async downloadFile(key: string, sid: string, path: string): Promise<Blob> {
    const res = await rawRequest(`/api/files/${encodeURIComponent(sid)}/${encodePath(path)}?raw=true`, {
      key,
      headers: { Accept: "*/*" },
    });
    return res.blob();
  },
  async downloadZip(key: string, sid: string, dir?: string): Promise<Blob> {
    const q = dir ? `?path=${encodeURIComponent(dir)}` : "";
    const res = await rawRequest(`/api/files/${encodeURIComponent(sid)}/download${q}`, {
      method: "POST",
      key,
      headers: { Accept: "application/zip, */*" },
    });
    return res.blob();
  },
};

/** Save a blob as a download in the browser. */
export function saveBlob(blob: Blob, filename: string) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.rel = "noopener";
  a.style.display = "none";
  document.body.appendChild(a);
  a.click();
  setTimeout(() => {
    URL.revokeObjectURL(url);
    a.remove();
  }, 30_000);
}

export interface UploadProgress {
  loaded: number;
  total: number;
}

/**
 * Upload one file with XMLHttpRequest (for progress events).
 * Resolves with the response body; rejects with ApiError (409 carries `body.existing`).
 */
export function uploadFile(
  key: string,
  sid: string,
  file: File,
  targetPath: string,
  overwrite: boolean,
  onProgress: (p: UploadProgress) => void,
): { promise: Promise<any>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<any>((resolve, reject) => {
    const form = new FormData();
    form.append("files", file, file.name);
    form.append("target_path", targetPath);
    form.append("overwrite", overwrite ? "true" : "false");
    xhr.open("POST", `/api/files/${encodeURIComponent(sid)}/upload`);
    xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (ev) => {
      onProgress({ loaded: ev.loaded, total: ev.lengthComputable ? ev.total : file.size });
    };
    xhr.onload = () => {
      let body: any = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = xhr.responseText;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress({ loaded: file.size, total: file.size });
        resolve(body);
      } else {
        const code = body && typeof body === "object" && typeof body.error === "string" ? body.error : "";
        reject(new ApiError(xhr.status, code, detailOf(body), errorsOf(body), body));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "the upload connection failed"));
    xhr.onabort = () => reject(new ApiError(0, "aborted", "upload cancelled"));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}
