// Shapes of the public AgCluster REST/SSE API (README.md "Using it"; events: broker/events.py).
// Event shapes come from the schema: ./events.gen.ts (generated from broker/events.py).
import type { SessionStatus as SessionStatusEvent, Usage as EventUsage } from "./events.gen";

export interface ResourceLimits {
  cpu_quota?: number; // 100000 = 1 CPU
  memory_limit?: string; // "4g"
  storage_limit?: string; // "10g"
  pids_limit?: number;
}

export interface ConfigSummary {
  id: string;
  name: string;
  description?: string;
  version?: string;
  allowed_tools: string[];
  permission_mode?: string;
  model?: string | null;
  has_mcp_servers?: boolean;
  has_sub_agents?: boolean;
  mcp_servers?: string[];
  sub_agents?: string[];
  resource_limits?: ResourceLimits;
  mcp_credentials?: Record<string, string[]>;
  source?: "preset" | "custom";
  egress?: EgressPolicy;
}

// Where the agent's tools may connect (enforced outside the container by the egress proxy).
export interface EgressPolicy {
  policy: "none" | "model" | "allowlist" | "open";
  domains: string[];
}

export type SystemPrompt =
  | string
  | { type: "preset"; preset: "claude_code" | string; append?: string | null };

export type McpServer =
  | { type: "stdio"; command: string; args?: string[]; env?: Record<string, string> }
  | { type: "sse" | "http"; url: string; headers?: Record<string, string> };

export interface SubAgent {
  description: string;
  prompt: string;
  tools?: string[] | null;
  model?: string | null;
}

export interface AgentConfig {
  id: string;
  name: string;
  description?: string;
  version?: string;
  allowed_tools?: string[];
  system_prompt?: SystemPrompt | null;
  permission_mode?: string;
  mcp_servers?: Record<string, McpServer>;
  agents?: Record<string, SubAgent>;
  resource_limits?: ResourceLimits;
  max_turns?: number | null;
  model?: string | null;
  env?: Record<string, string>;
  setting_sources?: string[] | null;
  permissions?: Permissions;
  source?: "preset" | "custom";
}

/** Claude Code permission rules: which calls run, which a person approves, which are refused. */
export interface Permissions {
  allow?: string[];
  ask?: string[];
  deny?: string[];
  otherwise?: "deny" | "ask";
}

/** A session's lifecycle status, as the schema spells it. */
export type SessionStatus = SessionStatusEvent["status"];

export interface SessionInfo {
  session_id: string;
  agent_id?: string;
  config_id?: string;
  config_name?: string;
  status: SessionStatus | string;
  created_at?: number;
  last_active?: number;
  owner_worker?: string;
  turns?: number;
  usage?: { input_tokens?: number; output_tokens?: number };
  cost_usd?: number;
  limits?: ResourceLimits;
  error?: string | null;
  resources?: { cpu_percent?: number; memory_bytes?: number; memory_limit_bytes?: number } | null;
  /** Milliseconds from the worker taking the launch to the runner being ready. */
  launch_ms?: number | null;
  /** True when a warm-pool slot served the launch, false for a new container. */
  warm?: boolean | null;
}

export interface LaunchResponse {
  session_id: string;
  agent_id: string;
  config_id?: string;
  status: string;
  /** From the launch request to the runner being ready, and whether a warm slot served it. */
  launch_ms?: number;
  warm?: boolean;
}

export interface FileNode {
  name: string;
  type: "file" | "directory";
  path: string;
  size?: number;
  modified?: number | string;
  children?: FileNode[];
}

export interface FileTree {
  session_id: string;
  root: FileNode;
  total_files?: number;
  total_directories?: number;
  total_size?: number;
}

export type FilePreview =
  | {
      type: "text";
      path: string;
      content: string;
      language?: string | null;
      size?: number;
      lines?: number;
      truncated?: boolean;
    }
  | { type: "binary"; path: string; size?: number; mime?: string; download_url?: string }
  | { type: "image"; path: string; url: string; mime: string; size: number };

export interface Todo {
  content: string;
  status: "pending" | "in_progress" | "completed" | string;
  active_form?: string;
  activeForm?: string;
}

/** Token usage of a turn (as `turn.completed` carries it). */
export type Usage = EventUsage;

/** One platform event (the `data:` of an SSE message). */
export interface AgcEvent {
  type: string;
  session_id?: string;
  turn_id?: string | null;
  ts?: number | string;
  [k: string]: unknown;
}
