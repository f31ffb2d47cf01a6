import { describe, expect, it } from "vitest";
import { applyMessages, initialChatState, isRunning, type ChatState, type StreamMessage, type TextItem, type ToolItem } from "../src/reducer";

let seq = 0;
const ev = (type: string, extra: Record<string, unknown> = {}): StreamMessage => ({
  id: String(++seq),
  event: { type, session_id: "conv-1", ts: 1000 + seq, ...extra },
});

function turnEvents(tid: string): StreamMessage[] {
  return [
    ev("user.message", { turn_id: tid, text: "make a file" }),
    ev("turn.started", { turn_id: tid }),
    ev("text.delta", { turn_id: tid, text: "I'll ", index: 0 }),
    ev("text.delta", { turn_id: tid, text: "write it.", index: 0 }),
    ev("message", { turn_id: tid, text: "I'll write it." }),
    ev("tool.started", { turn_id: tid, tool_use_id: "t1", name: "TodoWrite", input: { todos: [] } }),
    ev("todo.updated", { turn_id: tid, todos: [{ content: "a", status: "in_progress", active_form: "doing a" }] }),
    ev("tool.completed", { turn_id: tid, tool_use_id: "t1", name: "TodoWrite", output: "ok" }),
    ev("tool.started", { turn_id: tid, tool_use_id: "t2", name: "Bash", input: { command: "ls" } }),
    ev("tool.completed", { turn_id: tid, tool_use_id: "t2", output: "x.txt", is_error: false }),
    ev("turn.completed", {
      turn_id: tid,
      duration_ms: 1200,
      usage: { input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 90 },
      cost_usd: 0.01,
      interrupted: false,
    }),
  ];
}

describe("applyMessages", () => {
  it("folds a turn into user text, merged text, tools and a footer", () => {
    const s = applyMessages(initialChatState(), turnEvents("turn-a"));
    expect(s.turns).toHaveLength(1);
    const t = s.turns[0];
    expect(t.id).toBe("turn-a");
    expect(t.userText).toBe("make a file");
    expect(t.items.map((i) => i.kind)).toEqual(["text", "tool", "tool"]);
    const text = t.items[0] as TextItem;
    expect(text.text).toBe("I'll write it.");
    expect(text.streaming).toBe(false);
    const bash = t.items[2] as ToolItem;
    expect(bash.status).toBe("done");
    expect(bash.output).toBe("x.txt");
    expect(t.completed?.duration_ms).toBe(1200);
    expect(s.todos?.[0].status).toBe("in_progress");
    expect(s.totals).toEqual({ input: 100, output: 5, cost: 0.01, turns: 1 });
    expect(isRunning(s)).toBe(false);
  });

  it("never applies an event twice (replay after reconnect)", () => {
    const evs = turnEvents("turn-b");
    const once = applyMessages(initialChatState(), evs);
    // A reconnect replays an overlapping window: nothing changes.
    const again = applyMessages(once, evs.slice(3));
    expect(again).toBe(once);
    // Split delivery gives the same result as one batch.
    let split: ChatState = initialChatState();
    for (const m of evs) split = applyMessages(split, [m, m]);
    expect(split.turns[0].items).toEqual(once.turns[0].items.map((i) => ({ ...i, key: expect.any(String) })));
    expect(split.lastId).toBe(evs[evs.length - 1].id);
  });

  it("shows a running turn with a streaming text and a running tool", () => {
    const s = applyMessages(initialChatState(), [
      ev("user.message", { turn_id: "t", text: "go" }),
      ev("turn.started", { turn_id: "t" }),
      ev("text.delta", { turn_id: "t", text: "work", index: 0 }),
      ev("tool.started", { turn_id: "t", tool_use_id: "b", name: "Bash", input: { command: "sleep" } }),
    ]);
    expect(isRunning(s)).toBe(true);
    expect((s.turns[0].items[0] as TextItem).streaming).toBe(true);
    expect((s.turns[0].items[1] as ToolItem).status).toBe("running");
    const done = applyMessages(s, [ev("turn.completed", { turn_id: "t", interrupted: true })]);
    expect(isRunning(done)).toBe(false);
    expect((done.turns[0].items[0] as TextItem).streaming).toBe(false);
    expect((done.turns[0].items[1] as ToolItem).status).toBe("cancelled");
    expect(done.turns[0].completed?.interrupted).toBe(true);
  });

  it("keeps untouched turns identical (cheap re-render)", () => {
    const a = applyMessages(initialChatState(), turnEvents("t1"));
    const b = applyMessages(a, [ev("user.message", { turn_id: "t2", text: "next" })]);
    expect(b.turns[0]).toBe(a.turns[0]);
    expect(b.turns).toHaveLength(2);
  });

  it("replaces the deltas of several text blocks in order", () => {
    const s = applyMessages(initialChatState(), [
      ev("text.delta", { turn_id: "t", text: "A", index: 0 }),
      ev("text.delta", { turn_id: "t", text: "B", index: 2 }),
      ev("text.delta", { turn_id: "t", text: "a", index: 0 }),
      ev("message", { turn_id: "t", text: "Aa!" }),
      ev("message", { turn_id: "t", text: "B!" }),
    ]);
    const texts = s.turns[0].items.map((i) => (i as TextItem).text);
    expect(texts).toEqual(["Aa!", "B!"]);
  });

  it("drops what a cut model stream showed when it is retried (stream.retry)", () => {
    const s = applyMessages(initialChatState(), [
      ev("thinking.delta", { turn_id: "t", text: "hm" }),
      ev("text.delta", { turn_id: "t", text: "w00 w01 ", index: 0 }),
      ev("text.delta", { turn_id: "t", text: "sub", index: 0, parent_tool_use_id: "toolu_1" }),
      ev("stream.retry", { turn_id: "t" }),
      ev("text.delta", { turn_id: "t", text: "w00 w01 w02", index: 0 }),
    ]);
    const items = s.turns[0].items as TextItem[];
    // The lead's partial text and thinking are gone; the sub-agent's stream is its own.
    expect(items.map((i) => [i.text, i.parent ?? null])).toEqual([
      ["sub", "toolu_1"],
      ["w00 w01 w02", null],
    ]);
  });

  it("adds a complete message without deltas, and thinking", () => {
    const s = applyMessages(initialChatState(), [
      ev("thinking.delta", { turn_id: "t", text: "hmm " }),
      ev("thinking", { turn_id: "t", text: "hmm, ok" }),
      ev("message", { turn_id: "t", text: "Hello" }),
    ]);
    expect(s.turns[0].items.map((i) => i.kind)).toEqual(["thinking", "text"]);
    expect((s.turns[0].items[0] as any).text).toBe("hmm, ok");
  });

  it("nests sub-agent events under their Task call", () => {
    const s = applyMessages(initialChatState(), [
      ev("tool.started", { turn_id: "t", tool_use_id: "task", name: "Task", input: { subagent_type: "r" } }),
      ev("tool.started", { turn_id: "t", tool_use_id: "r1", name: "Read", input: {}, parent_tool_use_id: "task" }),
      ev("message", { turn_id: "t", text: "sub says", parent_tool_use_id: "task" }),
      ev("tool.completed", { turn_id: "t", tool_use_id: "r1", output: "..." }),
      ev("tool.completed", { turn_id: "t", tool_use_id: "task", output: "done" }),
    ]);
    const items = s.turns[0].items;
    expect(items.filter((i) => (i as any).parent === "task")).toHaveLength(2);
    expect((items[0] as ToolItem).status).toBe("done");
  });

  it("marks tool errors and keeps session-level errors apart", () => {
    const s = applyMessages(initialChatState(), [
      ev("error", { code: "runner_crashed", message: "boom", fatal: true, turn_id: "" }),
      ev("tool.started", { turn_id: "t", tool_use_id: "x", name: "Bash", input: {} }),
      ev("tool.completed", { turn_id: "t", tool_use_id: "x", output: "no such file", is_error: true }),
      ev("error", { turn_id: "t", code: "api_error", message: "overloaded" }),
    ]);
    expect(s.sessionItems).toHaveLength(1);
    expect((s.turns[0].items[0] as ToolItem).status).toBe("error");
    expect(s.turns[0].items[1].kind).toBe("error");
  });

  it("tracks status, ready and stop", () => {
    let s = applyMessages(initialChatState(), [ev("session.status", { status: "starting" }), ev("session.ready", {})]);
    expect(s.status).toBe("running");
    expect(s.ready).toBe(true);
    s = applyMessages(s, [ev("user.message", { turn_id: "t", text: "x" }), ev("session.stopped", { reason: "idle timeout" })]);
    expect(s.stopped).toEqual({ reason: "idle timeout" });
    expect(s.status).toBe("stopped");
    expect(isRunning(s)).toBe(false);
  });

  it("attaches a user message without a turn id to the next turn id", () => {
    const s = applyMessages(initialChatState(), [
      ev("user.message", { text: "hi" }),
      ev("turn.started", { turn_id: "tx" }),
      ev("message", { turn_id: "tx", text: "hello" }),
    ]);
    expect(s.turns).toHaveLength(1);
    expect(s.turns[0].id).toBe("tx");
  });
});

describe("noise and interrupts", () => {
  it("keeps one init note and marks interrupt-rejected tools cancelled", () => {
    const s = applyMessages(initialChatState(), [
      ev("system", { subtype: "init", data: { model: "m" }, turn_id: "t" }),
      ev("tool.started", { turn_id: "t", tool_use_id: "b", name: "Bash", input: {} }),
      ev("tool.completed", { turn_id: "t", tool_use_id: "b", is_error: true, output: "The user doesn't want to proceed with this tool use." }),
      ev("turn.completed", { turn_id: "t", interrupted: true }),
      ev("system", { subtype: "init", data: { model: "m" }, turn_id: "t2" }),
    ]);
    expect(s.sessionItems.filter((i) => i.kind === "system")).toHaveLength(1);
    expect((s.turns[0].items[0] as ToolItem).status).toBe("cancelled");
  });
});
