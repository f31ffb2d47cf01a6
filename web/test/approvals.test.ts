import { describe, expect, it } from "vitest";
import { applyMessages, initialChatState, pendingApprovals, sessionGrants, type ApprovalItem, type StreamMessage, type ToolItem } from "../src/reducer";
import { configToForm, emptyForm, formToConfig } from "../src/builder";
import { waitingTitle } from "../src/hooks/useWaitingTitle";

let seq = 0;
const ev = (type: string, extra: Record<string, unknown> = {}): StreamMessage => ({
  id: String(++seq),
  event: { type, session_id: "conv-1", ts: 1000 + seq, ...extra },
});

const requested = (rid: string, extra: Record<string, unknown> = {}) =>
  ev("approval.requested", {
    turn_id: "a",
    request_id: rid,
    tool_use_id: `tu-${rid}`,
    tool: "Bash",
    input: { command: "git push" },
    reason: "an ask rule matches",
    expires_at: 2000,
    ...extra,
  });

describe("approval cards", () => {
  it("a request becomes a pending card in its turn, after its tool call", () => {
    const s = applyMessages(initialChatState(), [
      ev("user.message", { turn_id: "a", text: "push" }),
      ev("tool.started", { turn_id: "a", tool_use_id: "tu-r1", name: "Bash", input: { command: "git push" } }),
      requested("r1"),
    ]);
    const [tool, card] = s.turns[0].items as [ToolItem, ApprovalItem];
    expect(tool.kind).toBe("tool");
    expect(card).toMatchObject({ kind: "approval", requestId: "r1", tool: "Bash", state: "pending", sessionId: "conv-1", parent: null, expiresAt: 2000 });
    expect(card.input).toEqual({ command: "git push" });
    expect(pendingApprovals(s).map((a) => a.requestId)).toEqual(["r1"]);
  });

  it("resolutions say who decided what, and nothing is pending after them", () => {
    const s = applyMessages(initialChatState(), [
      requested("r1"),
      requested("r2"),
      requested("r3"),
      requested("r4"),
      ev("approval.resolved", { turn_id: "a", request_id: "r1", decision: "allow", scope: "session", by: "key:abc", by_name: "alice", cause: "answer" }),
      ev("approval.resolved", { turn_id: "a", request_id: "r2", decision: "deny", message: "not today", by: "key:abc", cause: "answer" }),
      ev("approval.resolved", { turn_id: "a", request_id: "r3", decision: "deny", cause: "timeout" }),
      ev("approval.resolved", { turn_id: "a", request_id: "r4", decision: "deny", cause: "interrupted" }),
    ]);
    const cards = s.turns[0].items as ApprovalItem[];
    expect(cards.map((c) => c.state)).toEqual(["allowed", "denied", "timeout", "cancelled"]);
    expect(cards[0]).toMatchObject({ scope: "session", byName: "alice", by: "key:abc", edited: false });
    expect(cards[1].message).toBe("not today");
    expect(pendingApprovals(s)).toEqual([]);
    // Only the session-scoped allow is a grant (a denial, a timeout, an interruption are not).
    expect(sessionGrants(s)).toEqual(["Bash"]);
  });

  it("a sub-agent's request nests under its Task call; a replayed request is not doubled", () => {
    const s = applyMessages(initialChatState(), [
      ev("tool.started", { turn_id: "a", tool_use_id: "task-1", name: "Agent" }),
      requested("r9", { parent_tool_use_id: "task-1" }),
      requested("r9", { parent_tool_use_id: "task-1" }),
      ev("approval.resolved", { turn_id: "a", request_id: "r9", decision: "allow", updated_input: { command: "ls" } }),
    ]);
    const cards = s.turns[0].items.filter((i) => i.kind === "approval") as ApprovalItem[];
    expect(cards).toHaveLength(1);
    expect(cards[0]).toMatchObject({ parent: "task-1", state: "allowed", edited: true });
  });

  it("the title counts waiting sessions", () => {
    expect(waitingTitle("AgCluster", 0)).toBe("AgCluster");
    expect(waitingTitle("AgCluster", 2)).toBe("(2) AgCluster — waiting for approval");
  });
});


describe("the builder edits permission rules", () => {
  it("one rule per line round-trips, and no rules means no permissions block", () => {
    expect(formToConfig(emptyForm()).permissions).toBeUndefined();
    const f = { ...emptyForm(), permAsk: "Bash(git push:*)\n\n Edit(//workspace/secrets/**) ", permDeny: "Bash(rm:*)" };
    const cfg = formToConfig(f);
    expect(cfg.permissions).toEqual({ allow: [], ask: ["Bash(git push:*)", "Edit(//workspace/secrets/**)"], deny: ["Bash(rm:*)"], otherwise: "deny" });
    const back = configToForm(cfg);
    expect(back.permAsk).toBe("Bash(git push:*)\nEdit(//workspace/secrets/**)");
    expect(formToConfig({ ...emptyForm(), permOtherwise: "ask" }).permissions).toEqual({ allow: [], ask: [], deny: [], otherwise: "ask" });
  });
});
