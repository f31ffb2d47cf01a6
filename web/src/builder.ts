// The config builder's form model and its mapping to/from the API's config object.
import type { AgentConfig, McpServer, SubAgent } from "./types";

export const KNOWN_TOOLS = [
  "Bash",
  "Read",
  "Write",
  "Edit",
  "MultiEdit",
  "Glob",
  "Grep",
  "NotebookEdit",
  "WebFetch",
  "WebSearch",
  "TodoWrite",
  "Task",
  "BashOutput",
  "KillShell",
];

export const PERMISSION_MODES = ["default", "acceptEdits", "plan", "bypassPermissions"];

export interface AgentForm {
  name: string;
  description: string;
  prompt: string;
  tools: string; // comma separated; empty = inherit all
  model: string; // "" = inherit
}

export interface McpForm {
  name: string;
  type: "stdio" | "sse" | "http";
  command: string;
  args: string; // one per line
  env: string; // KEY=VALUE per line
  url: string;
  headers: string; // Name: value per line
}

export interface BuilderForm {
  id: string;
  name: string;
  description: string;
  version: string;
  model: string;
  permission_mode: string;
  tools: string[];
  promptMode: "custom" | "preset";
  promptText: string;
  promptAppend: string;
  cpus: string;
  memory: string;
  storage: string;
  pids: string;
  maxTurns: string;
  env: string;
  agents: AgentForm[];
  mcp: McpForm[];
  /** Permission rules, one per line (Claude Code syntax, e.g. Bash(git push:*)). */
  permAllow: string;
  permAsk: string;
  permDeny: string;
  permOtherwise: "deny" | "ask";
}

export function emptyForm(): BuilderForm {
  return {
    id: "my-agent",
    name: "My agent",
    description: "",
    version: "1.0.0",
    model: "",
    permission_mode: "acceptEdits",
    tools: ["Bash", "Read", "Write", "Edit", "Glob", "Grep", "TodoWrite"],
    promptMode: "preset",
    promptText: "",
    promptAppend: "",
    cpus: "1",
    memory: "2g",
    storage: "5g",
    pids: "256",
    maxTurns: "",
    env: "",
    permAllow: "",
    permAsk: "",
    permDeny: "",
    permOtherwise: "deny",
    agents: [],
    mcp: [],
  };
}

export function emptyAgent(): AgentForm {
  return { name: "", description: "", prompt: "", tools: "", model: "" };
}

export function emptyMcp(): McpForm {
  return { name: "", type: "stdio", command: "", args: "", env: "", url: "", headers: "" };
}

/** "A=1\nB=2" → {A:"1",B:"2"} (sep "=" or ":"). */
export function parsePairs(text: string, sep: "=" | ":"): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const i = line.indexOf(sep);
    if (i < 0) out[line] = "";
    else out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

export function formatPairs(obj: Record<string, string> | undefined | null, sep: "=" | ":"): string {
  if (!obj) return "";
  return Object.entries(obj)
    .map(([k, v]) => (sep === ":" ? `${k}: ${v}` : `${k}=${v}`))
    .join("\n");
}

const lines = (t: string) =>
  t
    .split("\n")
    .map((s) => s.trim())
    .filter(Boolean);

const list = (t: string) =>
  t
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);

function intOrNull(s: string): number | null {
  const t = s.trim();
  if (!t) return null;
  const n = Number(t);
  return Number.isFinite(n) ? Math.round(n) : NaN;
}

/** The config object the API validates, saves and launches. */
export function formToConfig(f: BuilderForm): AgentConfig {
  const cfg: AgentConfig = {
    id: f.id.trim(),
    name: f.name.trim(),
    description: f.description.trim(),
    version: f.version.trim() || "1.0.0",
    allowed_tools: [...f.tools],
    permission_mode: f.permission_mode,
  };
  if (f.promptMode === "preset") {
    cfg.system_prompt = { type: "preset", preset: "claude_code", ...(f.promptAppend.trim() ? { append: f.promptAppend } : {}) };
  } else {
    cfg.system_prompt = f.promptText;
  }
  if (f.model.trim()) cfg.model = f.model.trim();
  const rl: AgentConfig["resource_limits"] = {};
  const cpus = f.cpus.trim() ? Number(f.cpus) : null;
  if (cpus !== null) rl.cpu_quota = Number.isFinite(cpus) ? Math.round(cpus * 100000) : (NaN as any);
  if (f.memory.trim()) rl.memory_limit = f.memory.trim();
  if (f.storage.trim()) rl.storage_limit = f.storage.trim();
  const pids = intOrNull(f.pids);
  if (pids !== null) rl.pids_limit = pids;
  cfg.resource_limits = rl;
  const mt = intOrNull(f.maxTurns);
  if (mt !== null) cfg.max_turns = mt;
  const env = parsePairs(f.env, "=");
  if (Object.keys(env).length) cfg.env = env;
  const perms = { allow: lines(f.permAllow), ask: lines(f.permAsk), deny: lines(f.permDeny) };
  if (perms.allow.length || perms.ask.length || perms.deny.length || f.permOtherwise === "ask") {
    cfg.permissions = { ...perms, otherwise: f.permOtherwise };
  }
  if (f.agents.length) {
    const agents: Record<string, SubAgent> = {};
    for (const a of f.agents) {
      const sa: SubAgent = { description: a.description, prompt: a.prompt };
      const tools = list(a.tools);
      if (tools.length) sa.tools = tools;
      if (a.model.trim()) sa.model = a.model.trim();
      agents[a.name.trim()] = sa;
    }
    cfg.agents = agents;
  }
  if (f.mcp.length) {
    const servers: Record<string, McpServer> = {};
    for (const m of f.mcp) {
      if (m.type === "stdio") {
        const s: McpServer = { type: "stdio", command: m.command.trim() };
        const args = lines(m.args);
        if (args.length) s.args = args;
        const e = parsePairs(m.env, "=");
        if (Object.keys(e).length) s.env = e;
        servers[m.name.trim()] = s;
      } else {
        const s: McpServer = { type: m.type, url: m.url.trim() };
        const h = parsePairs(m.headers, ":");
        if (Object.keys(h).length) s.headers = h;
        servers[m.name.trim()] = s;
      }
    }
    cfg.mcp_servers = servers;
  }
  return cfg;
}

export function configToForm(c: AgentConfig): BuilderForm {
  const f = emptyForm();
  f.id = c.id ?? "";
  f.name = c.name ?? "";
  f.description = c.description ?? "";
  f.version = c.version ?? "1.0.0";
  f.model = c.model ?? "";
  f.permission_mode = c.permission_mode ?? "default";
  f.tools = [...(c.allowed_tools ?? [])];
  const sp = c.system_prompt;
  if (sp && typeof sp === "object") {
    f.promptMode = "preset";
    f.promptAppend = sp.append ?? "";
    f.promptText = "";
  } else {
    f.promptMode = "custom";
    f.promptText = sp ?? "";
    f.promptAppend = "";
  }
  const rl = c.resource_limits ?? {};
  f.cpus = rl.cpu_quota ? String(rl.cpu_quota / 100000) : "";
  f.memory = rl.memory_limit ?? "";
  f.storage = rl.storage_limit ?? "";
  f.pids = rl.pids_limit != null ? String(rl.pids_limit) : "";
  f.maxTurns = c.max_turns != null ? String(c.max_turns) : "";
  f.env = formatPairs(c.env, "=");
  f.permAllow = (c.permissions?.allow ?? []).join("\n");
  f.permAsk = (c.permissions?.ask ?? []).join("\n");
  f.permDeny = (c.permissions?.deny ?? []).join("\n");
  f.permOtherwise = c.permissions?.otherwise === "ask" ? "ask" : "deny";
  f.agents = Object.entries(c.agents ?? {}).map(([name, a]) => ({
    name,
    description: a.description ?? "",
    prompt: a.prompt ?? "",
    tools: (a.tools ?? []).join(", "),
    model: a.model ?? "",
  }));
  f.mcp = Object.entries(c.mcp_servers ?? {}).map(([name, s]) => {
    const m = emptyMcp();
    m.name = name;
    m.type = (s.type as McpForm["type"]) ?? "stdio";
    if (s.type === "stdio" || !("url" in s)) {
      const st = s as Extract<McpServer, { type: "stdio" }>;
      m.command = st.command ?? "";
      m.args = (st.args ?? []).join("\n");
      m.env = formatPairs(st.env, "=");
    } else {
      m.url = s.url ?? "";
      m.headers = formatPairs(s.headers, ":");
    }
    return m;
  });
  return f;
}

/**
 * Credentials an inline config will ask for before launch: MCP env values or
 * headers that are empty or a `${NAME}` placeholder.
 */
export function declaredCredentials(cfg: AgentConfig): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, s] of Object.entries(cfg.mcp_servers ?? {})) {
    const names = new Set<string>();
    const scan = (obj: Record<string, string> | undefined, keyIsName: boolean) => {
      for (const [k, v] of Object.entries(obj ?? {})) {
        const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(String(v ?? "").trim());
        if (m) names.add(m[1]);
        else if (keyIsName && String(v ?? "").trim() === "") names.add(k);
        else for (const mm of String(v ?? "").matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) names.add(mm[1]);
      }
    };
    if ("env" in s) scan(s.env, true);
    if ("headers" in s) scan(s.headers, false);
    if (names.size) out[name] = [...names];
  }
  return out;
}

/** Does an API error field path point at this form field? ("resource_limits.memory_limit" → "memory"). */
export function fieldMatches(errField: string, ...prefixes: string[]): boolean {
  const f = errField.replace(/\[(\d+)\]/g, ".$1").replace(/^body\./, "");
  return prefixes.some((p) => f === p || f.startsWith(p + "."));
}
