import { describe, expect, it } from "vitest";
import { EVENT_TYPES } from "../src/events.gen";
import { Draft } from "../src/reducer/draft";
import { applyMessages, HANDLERS, initialChatState, NOT_RENDERED, type StreamMessage, type TextItem, type ToolItem } from "../src/reducer";
import { num, seqOf, str, tsOf } from "../src/reducer/wire";

let seq = 0;
const ev = (type: string, extra: Record<string, unknown> = {}): StreamMessage => ({
  id: String(++seq),
  event: { type, session_id: "conv-1", ts: 1000 + seq, ...extra },
});

describe("handlers", () => {
  it("cover every event type of the schema, or list it as not rendered", () => {
    const missing = EVENT_TYPES.filter((t) => !HANDLERS[t] && !NOT_RENDERED.includes(t));
    expect(missing).toEqual([]);
    expect(NOT_RENDERED.filter((t) => HANDLERS[t])).toEqual([]);
  });

  it("never mutate the state they were given", () => {
    const s1 = applyMessages(initialChatState(), [
      ev("user.message", { turn_id: "a", text: "hi" }),
      ev("text.delta", { turn_id: "a", text: "x" }),
    ]);
    const frozen = JSON.stringify(s1);
    const s2 = applyMessages(s1, [ev("text.delta", { turn_id: "a", text: "y" }), ev("session.stopped", { reason: "gone" })]);
    expect(JSON.stringify(s1)).toBe(frozen);
    expect((s2.turns[0].items[0] as TextItem).text).toBe("xy");
    expect(s2.turns[0]).not.toBe(s1.turns[0]);
  });

  it("close a tool that started in an earlier turn", () => {
    const s = applyMessages(initialChatState(), [
      ev("tool.started", { turn_id: "a", tool_use_id: "bg", name: "Bash", input: { command: "sleep 9" } }),
      ev("turn.completed", { turn_id: "a" }),
      ev("user.message", { turn_id: "b", text: "next" }),
      ev("tool.completed", { turn_id: "b", tool_use_id: "bg", output: "done", is_error: true }),
    ]);
    expect(s.turns).toHaveLength(2);
    const tool = s.turns[0].items[0] as ToolItem;
    expect(tool.status).toBe("error");
    expect(tool.output).toBe("done");
    expect(s.turns[1].items).toEqual([]);
  });

  it("finish every open turn when the session stops", () => {
    const s = applyMessages(initialChatState(), [
      ev("text.delta", { turn_id: "a", text: "half" }),
      ev("tool.started", { turn_id: "a", tool_use_id: "t1", name: "Bash" }),
      ev("session.stopped", { reason: "idle timeout" }),
    ]);
    expect(s.stopped).toEqual({ reason: "idle timeout" });
    expect(s.status).toBe("stopped");
    const [text, tool] = s.turns[0].items as [TextItem, ToolItem];
    expect(text.streaming).toBe(false);
    expect(tool.status).toBe("cancelled");
  });

  it("put an error for no open turn at session level, and into its turn otherwise", () => {
    const s = applyMessages(initialChatState(), [
      ev("error", { turn_id: "gone", code: "launch_failed", message: "no image", fatal: true }),
      ev("user.message", { turn_id: "a", text: "hi" }),
      ev("error", { code: "sdk", message: "oops" }),
    ]);
    expect(s.sessionItems.map((i) => i.kind === "error" && i.code)).toEqual(["launch_failed"]);
    expect(s.turns[0].items.map((i) => i.kind === "error" && i.message)).toEqual(["oops"]);
  });

  it("show an egress refusal as a non-fatal error in its turn", () => {
    const s = applyMessages(initialChatState(), [
      ev("user.message", { turn_id: "a", text: "fetch it" }),
      ev("egress.denied", { turn_id: "a", host: "evil.example", port: 443, reason: "not in the allow list", policy: "allowlist" }),
    ]);
    expect(s.turns[0].items).toEqual([
      expect.objectContaining({
        kind: "error",
        code: "egress_denied",
        message: "network access to evil.example:443 was blocked",
        detail: "not in the allow list; egress policy: allowlist",
        fatal: false,
      }),
    ]);
  });

  it("count unknown and not-rendered event types without rendering them", () => {
    const s = applyMessages(initialChatState(), [ev("sdk.raw", { kind: "x" }), ev("from.the.future", { turn_id: "a" })]);
    expect(s.eventCount).toBe(2);
    expect(s.turns).toEqual([]);
    expect(s.sessionItems).toEqual([]);
  });
});

describe("Draft", () => {
  it("copies a turn once per batch and keeps keys unique", () => {
    const base = applyMessages(initialChatState(), [ev("user.message", { turn_id: "a", text: "hi" })]);
    const d = new Draft(base);
    const t1 = d.turnAt(0);
    expect(t1).not.toBe(base.turns[0]);
    expect(d.turnAt(0)).toBe(t1);
    expect(d.key("x")).not.toBe(d.key("x"));
  });

  it("lets a turn without an id adopt the first turn id seen", () => {
    const d = new Draft(initialChatState());
    d.newTurn(null, "hello");
    const t = d.turnFor({ turn_id: "t-9" }, true)!;
    expect(t.id).toBe("t-9");
    expect(d.s.turns).toHaveLength(1);
    expect(d.turnFor({ turn_id: "other" }, false)).toBeNull();
  });
});

describe("wire readers", () => {
  it("read times in seconds, milliseconds or ISO", () => {
    expect(tsOf({ ts: 1700000000 })).toBe(1700000000);
    expect(tsOf({ ts: 1700000000500 })).toBe(1700000000.5);
    expect(tsOf({ ts: "2023-11-14T22:13:20Z" })).toBe(1700000000);
    expect(tsOf({ ts: "soon" })).toBeUndefined();
  });

  it("coerce numbers, strings and sequence ids leniently", () => {
    expect(num("12")).toBe(12);
    expect(num("")).toBeUndefined();
    expect(num(Infinity)).toBeUndefined();
    expect(str(5)).toBe("5");
    expect(str(undefined)).toBeNull();
    expect(seqOf("42")).toBe(42);
    expect(seqOf("1-0")).toBeNull();
    expect(seqOf("99999999999999999999")).toBeNull();
  });
});
