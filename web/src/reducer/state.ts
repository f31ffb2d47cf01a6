// The chat view's state: what the session's event stream folds into (see ./index.ts).
import type { AgcEvent, Todo, Usage } from "../types";

export interface TextItem {
  kind: "text";
  key: string;
  text: string;
  streaming: boolean;
  index: number | null;
  parent: string | null;
  model?: string;
}

export interface ThinkingItem {
  kind: "thinking";
  key: string;
  text: string;
  streaming: boolean;
  parent: string | null;
}

export type ToolStatus = "running" | "done" | "error" | "cancelled";

export interface ToolItem {
  kind: "tool";
  key: string;
  id: string;
  name: string;
  input: any;
  output?: any;
  result?: any;
  isError: boolean;
  status: ToolStatus;
  parent: string | null;
  startedTs?: number;
  completedTs?: number;
}

export interface ErrorItem {
  kind: "error";
  key: string;
  code: string;
  message: string;
  detail?: string;
  fatal: boolean;
}

export interface SystemItem {
  kind: "system";
  key: string;
  subtype: string;
  data: any;
}

export type ApprovalState = "pending" | "allowed" | "denied" | "timeout" | "cancelled";

/** A tool call waiting for (or decided by) a person: approval.requested, then approval.resolved. */
export interface ApprovalItem {
  kind: "approval";
  key: string;
  sessionId: string;
  requestId: string;
  toolUseId: string;
  tool: string;
  input: any;
  reason: string;
  parent: string | null;
  expiresAt?: number;
  state: ApprovalState;
  scope?: string;
  message?: string;
  by?: string;
  byName?: string;
  edited?: boolean;
}

export type Item = TextItem | ThinkingItem | ToolItem | ErrorItem | SystemItem | ApprovalItem;

export interface TurnCompleted {
  stop_reason?: string | null;
  subtype?: string | null;
  is_error?: boolean;
  interrupted?: boolean;
  duration_ms?: number | null;
  num_turns?: number | null;
  usage?: Usage | null;
  cost_usd?: number | null;
  result?: string | null;
}

export interface Turn {
  key: string;
  id: string | null;
  userText: string | null;
  startedTs?: number;
  started: boolean;
  items: Item[];
  completed: TurnCompleted | null;
}

export interface ChatState {
  /** Highest stream sequence applied (the SSE id); "" before any. */
  lastId: string;
  lastSeq: number;
  turns: Turn[];
  todos: Todo[] | null;
  status: string | null;
  statusDetail: string | null;
  ready: boolean;
  /** From session.ready: the config the session runs. */
  configId: string | null;
  model: string | null;
  stopped: { reason: string | null } | null;
  /** Errors and system notes that belong to no turn. */
  sessionItems: Item[];
  totals: { input: number; output: number; cost: number; turns: number };
  eventCount: number;
  nextKey: number;
}

export interface StreamMessage {
  /** The SSE id (stream sequence), "" when the message had none. */
  id: string;
  event: AgcEvent;
}

export function initialChatState(): ChatState {
  return {
    lastId: "",
    lastSeq: -1,
    turns: [],
    todos: null,
    status: null,
    statusDetail: null,
    ready: false,
    configId: null,
    model: null,
    stopped: null,
    sessionItems: [],
    totals: { input: 0, output: 0, cost: 0, turns: 0 },
    eventCount: 0,
    nextKey: 0,
  };
}

/** The approval requests still waiting for an answer, oldest first. */
export function pendingApprovals(s: ChatState): ApprovalItem[] {
  const out: ApprovalItem[] = [];
  for (const t of s.turns) for (const it of t.items) if (it.kind === "approval" && it.state === "pending") out.push(it);
  return out;
}

/** The tools a person allowed for the rest of the session ("allow for this session"), sorted:
 * the runner does not ask about them again, even after a restart. */
export function sessionGrants(s: ChatState): string[] {
  const tools = new Set<string>();
  for (const t of s.turns)
    for (const it of t.items) if (it.kind === "approval" && it.state === "allowed" && it.scope === "session") tools.add(it.tool);
  return [...tools].sort();
}

/** Is a turn in progress (started or sent, not completed)? */
export function isRunning(s: ChatState): boolean {
  if (s.stopped) return false;
  const t = s.turns[s.turns.length - 1];
  return !!t && !t.completed;
}
