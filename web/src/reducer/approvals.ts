// Tool approvals: a request adds a pending card to its turn; its resolution (a person's answer,
// a timeout, an interrupt) updates the card in whichever turn holds it.
import type { Draft } from "./draft";
import type { Handlers } from "./handler";
import type { ApprovalItem, ApprovalState } from "./state";
import { num, str } from "./wire";

function findApproval(d: Draft, requestId: string): [ApprovalItem, (it: ApprovalItem) => void] | null {
  const turns = d.s.turns;
  for (let i = turns.length - 1; i >= 0; i--) {
    const j = turns[i].items.findIndex((it) => it.kind === "approval" && it.requestId === requestId);
    if (j >= 0) {
      const t = d.turnAt(i);
      return [t.items[j] as ApprovalItem, (it) => (t.items[j] = it)];
    }
  }
  return null;
}

function stateOf(decision: unknown, cause: unknown): ApprovalState {
  if (cause === "timeout") return "timeout";
  if (cause === "interrupted" || cause === "stopped" || cause === "cancelled") return "cancelled";
  return decision === "allow" ? "allowed" : "denied";
}

export const approvalHandlers: Handlers = {
  "approval.requested": (d, e) => {
    const requestId = str(e.request_id);
    if (!requestId || findApproval(d, requestId)) return;
    d.turnFor(e, true)!.items.push({
      kind: "approval",
      key: d.key("a"),
      sessionId: str(e.session_id) ?? "",
      requestId,
      toolUseId: str(e.tool_use_id) ?? "",
      tool: str(e.tool) ?? "tool",
      input: e.input ?? {},
      reason: str(e.reason) ?? "",
      parent: str(e.parent_tool_use_id),
      expiresAt: num(e.expires_at),
      state: "pending",
    });
  },
  "approval.resolved": (d, e) => {
    const requestId = str(e.request_id);
    if (!requestId) return;
    const found = findApproval(d, requestId);
    const resolved = {
      state: stateOf(e.decision, e.cause),
      scope: str(e.scope) ?? undefined,
      message: str(e.message) ?? undefined,
      by: str(e.by) ?? undefined,
      byName: str(e.by_name) ?? undefined,
      edited: e.updated_input != null,
    };
    if (found) {
      const [it, put] = found;
      put({ ...it, ...resolved });
      return;
    }
    // Its request is older than what this view loaded: show the outcome anyway.
    d.turnFor(e, true)!.items.push({
      kind: "approval",
      key: d.key("a"),
      sessionId: str(e.session_id) ?? "",
      requestId,
      toolUseId: str(e.tool_use_id) ?? "",
      tool: str(e.tool) ?? "tool",
      input: {},
      reason: "",
      parent: null,
      ...resolved,
    });
  },
};
