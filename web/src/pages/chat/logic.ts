// The chat page's decisions that do not need a DOM (unit-tested in web/test/chat.test.ts).
import { humanize, type HumanError } from "../../errors";
import type { ConnState } from "../../eventStream";
import { parseSize } from "../../format";
import type { ChatState } from "../../reducer";
import type { FileNode, SessionInfo } from "../../types";

export const TERMINAL = new Set(["stopped", "failed"]);

export interface ConnectionProblem {
  /** What to show above the timeline (null: nothing wrong worth saying). */
  error: HumanError | null;
  /** The key is missing or refused: offer to enter the session's key. */
  needsKey: boolean;
  /** Wrong key, no key or unknown session: nothing here can work until that is fixed. */
  unavailable: boolean;
}

export function connectionProblem(conn: ConnState): ConnectionProblem {
  const error: HumanError | null =
    conn.phase === "failed"
      ? conn.error
        ? humanize(conn.error, "events")
        : { title: "No API key for this session", hint: "Enter the Anthropic API key this session was launched with.", status: 401 }
      : conn.phase === "reconnecting" && conn.attempt >= 2
        ? {
            title: "Connection lost",
            hint: "Reconnecting automatically; the conversation resumes exactly where it left off. If this goes on, check that the AgCluster API is running and your network is up.",
            detail: conn.error?.detail || undefined,
            status: 0,
          }
        : null;
  const needsKey = conn.phase === "failed" && (!conn.error || conn.error.status === 401 || conn.error.status === 403);
  return { error, needsKey, unavailable: conn.phase === "failed" };
}

/**
 * A failed chat POST the user need not act on: the connection dropped, or the JSON reply timed
 * out, after the stream already shows the turn (it goes on there).
 */
export function sendFailureIsBenign(h: HumanError, turnsBefore: number, turnsNow: number): boolean {
  return (h.status === 0 || h.status === 504) && turnsNow > turnsBefore;
}

export interface ChatSummary {
  status: string | null;
  title: string;
  tokensIn: number;
  tokensOut: number;
  cost: number;
  memLimit: number | null;
}

/** Header figures: the stream's totals, or the polled session's when those are ahead. */
export function chatSummary(chat: ChatState, info: SessionInfo | null): ChatSummary {
  const res = info?.resources;
  return {
    status: chat.status ?? info?.status ?? null,
    title: info?.config_name || info?.config_id || chat.configId || "Session",
    tokensIn: Math.max(chat.totals.input, info?.usage?.input_tokens ?? 0),
    tokensOut: Math.max(chat.totals.output, info?.usage?.output_tokens ?? 0),
    cost: Math.max(chat.totals.cost, info?.cost_usd ?? 0),
    memLimit: res?.memory_limit_bytes ?? parseSize(info?.limits?.memory_limit ?? null),
  };
}

export function findNode(root: FileNode, path: string): FileNode | null {
  if (root.path === path) return root;
  for (const c of root.children ?? []) {
    const f = findNode(c, path);
    if (f) return f;
  }
  return null;
}
