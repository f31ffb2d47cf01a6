// Folds the session's event stream into the chat view's state.
// Pure and copy-on-write: apply a batch of events, get a new state; untouched
// turns and items keep their identity (cheap re-renders).
import type { AgcEvent, Todo, Usage } from "./types";

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

export type Item = TextItem | ThinkingItem | ToolItem | ErrorItem | SystemItem;

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

/** Is a turn in progress (started or sent, not completed)? */
export function isRunning(s: ChatState): boolean {
  if (s.stopped) return false;
  const t = s.turns[s.turns.length - 1];
  return !!t && !t.completed;
}

const CANCELLED_OUTPUT = /doesn't want to proceed|was stopped while running|interrupted by user|\[Request interrupted/i;

function seqOf(id: string): number | null {
  if (!/^\d+$/.test(id)) return null;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : null;
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : v == null ? null : String(v);
}

function num(v: unknown): number | undefined {
  if (typeof v === "number" && isFinite(v)) return v;
  if (typeof v === "string" && v !== "" && isFinite(Number(v))) return Number(v);
  return undefined;
}

function tsOf(e: AgcEvent): number | undefined {
  const v = e.ts;
  if (typeof v === "number") return v > 1e12 ? v / 1000 : v;
  if (typeof v === "string") {
    const n = Number(v);
    if (isFinite(n)) return n > 1e12 ? n / 1000 : n;
    const d = Date.parse(v);
    if (!isNaN(d)) return d / 1000;
  }
  return undefined;
}

/** Apply a batch of stream messages. Messages whose id was already applied are skipped. */
export function applyMessages(state: ChatState, msgs: StreamMessage[]): ChatState {
  if (msgs.length === 0) return state;
  const d: ChatState = { ...state, turns: state.turns.slice() };
  const touched = new Set<number>();
  let sessionItemsCopied = false;
  let changed = false;

  const key = (p: string) => `${p}${d.nextKey++}`;

  const turnAt = (i: number): Turn => {
    if (!touched.has(i)) {
      d.turns[i] = { ...d.turns[i], items: d.turns[i].items.slice() };
      touched.add(i);
    }
    return d.turns[i];
  };

  const newTurn = (id: string | null, userText: string | null): number => {
    d.turns.push({ key: key("t"), id, userText, started: false, items: [], completed: null });
    const i = d.turns.length - 1;
    touched.add(i);
    return i;
  };

  const findTurnIdx = (id: string): number => {
    for (let i = d.turns.length - 1; i >= 0; i--) if (d.turns[i].id === id) return i;
    return -1;
  };

  /** The turn an event belongs to; creates one when needed (null: session-level). */
  const turnFor = (e: AgcEvent, create: boolean): Turn | null => {
    const tid = str(e.turn_id);
    if (tid) {
      const i = findTurnIdx(tid);
      if (i >= 0) return turnAt(i);
      // A turn opened by a user.message without a turn id adopts the first id seen.
      const last = d.turns.length - 1;
      if (last >= 0 && d.turns[last].id === null && !d.turns[last].completed) {
        const t = turnAt(last);
        t.id = tid;
        return t;
      }
      return create ? turnAt(newTurn(tid, null)) : null;
    }
    const last = d.turns.length - 1;
    if (last >= 0 && !d.turns[last].completed) return turnAt(last);
    return create ? turnAt(newTurn(null, null)) : null;
  };

  const pushSessionItem = (it: Item) => {
    if (!sessionItemsCopied) {
      d.sessionItems = d.sessionItems.slice();
      sessionItemsCopied = true;
    }
    d.sessionItems.push(it);
  };

  const findTool = (toolId: string): [Turn, number] | null => {
    for (let i = d.turns.length - 1; i >= 0; i--) {
      const items = d.turns[i].items;
      for (let j = items.length - 1; j >= 0; j--) {
        const it = items[j];
        if (it.kind === "tool" && it.id === toolId) return [turnAt(i), j];
      }
    }
    return null;
  };

  const finalizeTurn = (t: Turn, interrupted: boolean) => {
    t.items = t.items.map((it) => {
      if ((it.kind === "text" || it.kind === "thinking") && it.streaming) return { ...it, streaming: false };
      if (it.kind === "tool" && it.status === "running") return { ...it, status: interrupted ? "cancelled" : "done" };
      // A tool the user's interrupt stopped is cancelled, not failed.
      if (interrupted && it.kind === "tool" && it.status === "error" && CANCELLED_OUTPUT.test(String(it.output ?? "")))
        return { ...it, status: "cancelled" };
      return it;
    });
  };

  for (const m of msgs) {
    const seq = seqOf(m.id);
    if (seq !== null) {
      if (seq <= d.lastSeq) continue; // already applied: never render twice
      d.lastSeq = seq;
      d.lastId = m.id;
    } else if (m.id) {
      if (m.id === d.lastId) continue;
      d.lastId = m.id;
    }
    const e = m.event;
    if (!e || typeof e !== "object" || typeof e.type !== "string") continue;
    changed = true;
    d.eventCount++;
    const parent = str(e.parent_tool_use_id);

    switch (e.type) {
      case "session.ready":
        d.ready = true;
        d.configId = str(e.config_id) || d.configId;
        d.model = str(e.model) || d.model;
        if (!d.status || d.status === "starting") d.status = "running";
        break;
      case "session.status":
        d.status = str(e.status) ?? d.status;
        d.statusDetail = str(e.detail);
        break;
      case "session.stopped":
        d.stopped = { reason: str(e.reason) };
        d.status = "stopped";
        for (let i = 0; i < d.turns.length; i++) {
          if (!d.turns[i].completed) {
            const t = turnAt(i);
            finalizeTurn(t, true);
          }
        }
        break;
      case "user.message": {
        const tid = str(e.turn_id);
        const text = str(e.text) ?? "";
        if (tid) {
          const i = findTurnIdx(tid);
          if (i >= 0) {
            const t = turnAt(i);
            t.userText = text;
            break;
          }
        }
        newTurn(tid, text);
        break;
      }
      case "turn.started": {
        const t = turnFor(e, true)!;
        t.started = true;
        t.startedTs = tsOf(e);
        break;
      }
      case "text.delta": {
        const t = turnFor(e, true)!;
        const idx = num(e.index) ?? null;
        const text = str(e.text) ?? "";
        let j = -1;
        for (let k = t.items.length - 1; k >= 0; k--) {
          const it = t.items[k];
          if (it.kind === "text" && it.streaming && it.parent === parent && it.index === idx) {
            j = k;
            break;
          }
        }
        if (j >= 0) {
          const it = t.items[j] as TextItem;
          t.items[j] = { ...it, text: it.text + text };
        } else {
          t.items.push({ kind: "text", key: key("x"), text, streaming: true, index: idx, parent });
        }
        break;
      }
      case "message": {
        const t = turnFor(e, true)!;
        const text = str(e.text) ?? "";
        const model = str(e.model) ?? undefined;
        // The complete block replaces the deltas of the oldest block still streaming.
        const j = t.items.findIndex((it) => it.kind === "text" && it.streaming && it.parent === parent);
        if (j >= 0) {
          t.items[j] = { ...(t.items[j] as TextItem), text, streaming: false, model };
        } else {
          t.items.push({ kind: "text", key: key("x"), text, streaming: false, index: null, parent, model });
        }
        break;
      }
      case "thinking.delta": {
        const t = turnFor(e, true)!;
        const text = str(e.text) ?? "";
        let j = -1;
        for (let k = t.items.length - 1; k >= 0; k--) {
          const it = t.items[k];
          if (it.kind === "thinking" && it.streaming && it.parent === parent) {
            j = k;
            break;
          }
        }
        if (j >= 0) {
          const it = t.items[j] as ThinkingItem;
          t.items[j] = { ...it, text: it.text + text };
        } else {
          t.items.push({ kind: "thinking", key: key("h"), text, streaming: true, parent });
        }
        break;
      }
      case "thinking": {
        const t = turnFor(e, true)!;
        const text = str(e.text) ?? "";
        const j = t.items.findIndex((it) => it.kind === "thinking" && it.streaming && it.parent === parent);
        if (j >= 0) t.items[j] = { ...(t.items[j] as ThinkingItem), text, streaming: false };
        else t.items.push({ kind: "thinking", key: key("h"), text, streaming: false, parent });
        break;
      }
      case "tool.started": {
        const toolId = str(e.tool_use_id) ?? key("tool");
        const found = findTool(toolId);
        if (found) {
          const [t, j] = found;
          t.items[j] = { ...(t.items[j] as ToolItem), input: e.input ?? (t.items[j] as ToolItem).input };
          break;
        }
        const t = turnFor(e, true)!;
        t.items.push({
          kind: "tool",
          key: key("u"),
          id: toolId,
          name: str(e.name) ?? "tool",
          input: e.input ?? {},
          isError: false,
          status: "running",
          parent,
          startedTs: tsOf(e),
        });
        break;
      }
      case "tool.completed": {
        const toolId = str(e.tool_use_id);
        const isError = !!e.is_error;
        const found = toolId ? findTool(toolId) : null;
        if (found) {
          const [t, j] = found;
          const it = t.items[j] as ToolItem;
          t.items[j] = {
            ...it,
            name: it.name || str(e.name) || "tool",
            output: e.output,
            result: e.result,
            isError,
            status: isError ? "error" : "done",
            completedTs: tsOf(e),
          };
        } else {
          const t = turnFor(e, true)!;
          t.items.push({
            kind: "tool",
            key: key("u"),
            id: toolId ?? key("tool"),
            name: str(e.name) ?? "tool",
            input: {},
            output: e.output,
            result: e.result,
            isError,
            status: isError ? "error" : "done",
            parent,
            completedTs: tsOf(e),
          });
        }
        break;
      }
      case "todo.updated":
        d.todos = Array.isArray(e.todos) ? (e.todos as Todo[]) : [];
        break;
      case "turn.completed": {
        const t = turnFor(e, true)!;
        const usage = (e.usage as Usage) ?? null;
        t.completed = {
          stop_reason: str(e.stop_reason),
          subtype: str(e.subtype),
          is_error: !!e.is_error,
          interrupted: !!e.interrupted,
          duration_ms: num(e.duration_ms) ?? null,
          num_turns: num(e.num_turns) ?? null,
          usage,
          cost_usd: num(e.cost_usd) ?? null,
          result: str(e.result),
        };
        finalizeTurn(t, !!e.interrupted);
        d.totals = {
          input:
            d.totals.input +
            (usage?.input_tokens ?? 0) +
            (usage?.cache_creation_input_tokens ?? 0) +
            (usage?.cache_read_input_tokens ?? 0),
          output: d.totals.output + (usage?.output_tokens ?? 0),
          cost: d.totals.cost + (num(e.cost_usd) ?? 0),
          turns: d.totals.turns + 1,
        };
        break;
      }
      case "error": {
        const it: ErrorItem = {
          kind: "error",
          key: key("e"),
          code: str(e.code) ?? "error",
          message: str(e.message) ?? "error",
          detail: str(e.detail) ?? undefined,
          fatal: !!e.fatal,
        };
        const t = turnFor(e, false);
        if (t) t.items.push(it);
        else pushSessionItem(it);
        break;
      }
      case "system": {
        const subtype = str(e.subtype) ?? "system";
        // The SDK repeats "init" at every query: one note at the top is enough.
        if (subtype === "init") {
          if (!d.sessionItems.some((x) => x.kind === "system" && x.subtype === "init"))
            pushSessionItem({ kind: "system", key: key("s"), subtype, data: e.data });
          break;
        }
        const it: SystemItem = { kind: "system", key: key("s"), subtype, data: e.data };
        const t = turnFor(e, false);
        if (t) t.items.push(it);
        else pushSessionItem(it);
        break;
      }
      default:
        // sdk.raw and future types: counted, not rendered.
        break;
    }
  }
  if (!changed) {
    // Only duplicates: keep identity so nothing re-renders.
    if (d.lastSeq === state.lastSeq && d.lastId === state.lastId) return state;
    return { ...state, lastSeq: d.lastSeq, lastId: d.lastId };
  }
  return d;
}

/** Parse an SSE `data:` payload into an event (null when it is not one). */
export function parseEventData(data: string, sseType?: string): AgcEvent | null {
  try {
    const v = JSON.parse(data);
    if (v && typeof v === "object") {
      if (typeof v.type !== "string" && sseType) v.type = sseType;
      return v as AgcEvent;
    }
  } catch {
    /* not JSON */
  }
  return null;
}
