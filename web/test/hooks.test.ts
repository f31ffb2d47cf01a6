// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { useFileTree } from "../src/components/files/useFileTree";
import { useChatStream } from "../src/hooks/useChatStream";
import { useValidation } from "../src/pages/builder/useValidation";
import { useTurnControl } from "../src/pages/chat/useTurnControl";
import { applyMessages, initialChatState, type ChatState } from "../src/reducer";
import type { AgentConfig } from "../src/types";
import { json, renderHook, settle, stubFetch } from "./support/hooks";

beforeEach(() => vi.useFakeTimers());
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
  document.body.innerHTML = "";
});

const cfg = (id: string): AgentConfig => ({ id, name: id });

describe("useValidation", () => {
  it("checks only the latest config, after the debounce", async () => {
    const calls = stubFetch(() => json(200, { valid: true, config: {} }));
    const r = await renderHook(({ c }) => useValidation(c), { c: cfg("a") });
    expect(r.result.current[0].state).toBe("checking");
    await r.rerender({ c: cfg("ab") });
    await r.rerender({ c: cfg("abc") });
    await settle(449);
    expect(calls).toHaveLength(0);
    await settle(1);
    expect(calls.map((c) => [c.method, c.path, (c.body as AgentConfig).id])).toEqual([["POST", "/api/configs/validate", "abc"]]);
    expect(r.result.current[0].state).toBe("valid");
    r.unmount();
  });

  it("turns a 422 into field errors, and keeps them while the next check runs", async () => {
    stubFetch(() => json(422, { error: "validation", detail: "invalid", errors: [{ field: "id", message: "bad id" }] }));
    const r = await renderHook(({ c }) => useValidation(c), { c: cfg("Bad Id") });
    await settle(450);
    expect(r.result.current[0]).toEqual({ state: "invalid", errors: [{ field: "id", message: "bad id" }], detail: "invalid" });
    await r.rerender({ c: cfg("Bad Id 2") });
    expect(r.result.current[0].state).toBe("invalid");
    r.unmount();
  });

  it("says it cannot validate when the API is down, not that the config is bad", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    const r = await renderHook(({ c }) => useValidation(c), { c: cfg("a") });
    await settle(450);
    const v = r.result.current[0];
    expect(v.state).toBe("error");
    expect(v.state === "error" && v.error.status).toBe(0);
    r.unmount();
  });

  it("aborts the check of a config that changed meanwhile", async () => {
    let release: (r: Response) => void = () => undefined;
    const calls = stubFetch((_m, _p, body) =>
      (body as AgentConfig).id === "slow" ? new Promise<Response>((ok) => (release = ok)) : json(200, { valid: true, config: {} }),
    );
    const r = await renderHook(({ c }) => useValidation(c), { c: cfg("slow") });
    await settle(450);
    await r.rerender({ c: cfg("fast") });
    expect(calls[0].signal?.aborted).toBe(true);
    await settle(450);
    release(json(422, { errors: [{ field: "id", message: "late" }] }));
    await settle();
    expect(r.result.current[0].state).toBe("valid");
    r.unmount();
  });
});

describe("useTurnControl", () => {
  const SID = "conv-1";
  const setup = async (chat: ChatState, answer: (path: string) => Response | Promise<Response>) => {
    const calls = stubFetch((_m, path) => answer(path));
    const stateRef = { current: chat };
    const onSend = vi.fn();
    const props = { sid: SID, apiKey: "k", chat, stateRef, running: false, stopped: false, onSend };
    const r = await renderHook((p: typeof props) => useTurnControl(p), props);
    return { r, calls, stateRef, onSend, props };
  };

  it("shows the message as pending until the stream has its turn", async () => {
    const { r, calls, stateRef, onSend, props } = await setup(initialChatState(), () => json(200, { status: "ok" }));
    await r.rerender({ ...props });
    r.result.current.setInput("  hello  ");
    await settle();
    await r.result.current.send();
    await settle();
    expect(calls.map((c) => [c.method, c.path, c.body])).toEqual([["POST", `/api/agents/${SID}/chat`, expect.objectContaining({ message: "hello" })]]);
    expect(onSend).toHaveBeenCalledOnce();
    expect(r.result.current.pending).toEqual({ text: "hello", turns: 0 });
    expect(r.result.current.input).toBe("");
    const chat = applyMessages(initialChatState(), [{ id: "1", event: { type: "user.message", turn_id: "t", text: "hello" } }]);
    stateRef.current = chat;
    await r.rerender({ ...props, chat, running: true });
    expect(r.result.current.pending).toBeNull();
    r.unmount();
  });

  it("gives the text back with the error when the API refuses it", async () => {
    const { r } = await setup(initialChatState(), () => json(409, { error: "busy", detail: "a turn is running" }));
    r.result.current.setInput("again");
    await settle();
    await r.result.current.send();
    await settle();
    expect(r.result.current.sendErr?.status).toBe(409);
    expect(r.result.current.pending).toBeNull();
    expect(r.result.current.input).toBe("again");
    r.unmount();
  });

  it("ignores a dropped POST once the stream shows the turn", async () => {
    const holder: { ref?: { current: ChatState } } = {};
    const { r, stateRef } = await setup(initialChatState(), () => {
      // The turn reaches the stream before the POST's connection drops.
      holder.ref!.current = applyMessages(initialChatState(), [{ id: "1", event: { type: "user.message", turn_id: "t", text: "x" } }]);
      return Promise.reject(new TypeError("network changed"));
    });
    holder.ref = stateRef;
    r.result.current.setInput("x");
    await settle();
    await r.result.current.send();
    await settle();
    expect(r.result.current.sendErr).toBeNull();
    r.unmount();
  });

  it("interrupts on Esc while a turn runs, and not when a dialog is open", async () => {
    const { r, calls, props } = await setup(initialChatState(), () => json(200, {}));
    await r.rerender({ ...props, running: true });
    const modal = document.createElement("div");
    modal.className = "modal";
    document.body.appendChild(modal);
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }));
    await settle();
    expect(calls).toHaveLength(0);
    modal.remove();
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }));
    await settle();
    expect(calls.map((c) => [c.method, c.path])).toEqual([["POST", `/api/agents/${SID}/interrupt`]]);
    expect(r.result.current.stopping).toBe(true);
    await r.rerender({ ...props, running: false });
    expect(r.result.current.stopping).toBe(false);
    r.unmount();
  });
});

describe("useFileTree", () => {
  const tree = (size: number, extra: object[] = []) => ({
    session_id: "conv-1",
    root: {
      name: "",
      path: "",
      type: "directory",
      children: [{ name: "src", path: "src", type: "directory", children: [{ name: "a.py", path: "src/a.py", type: "file", size, modified: 1 }, ...extra] }],
    },
  });

  it("marks changed files fresh for a while and opens their folders", async () => {
    let answer = tree(1);
    const calls = stubFetch(() => json(200, answer));
    const seen: string[] = [];
    const props = { live: false, tick: 0 };
    const r = await renderHook(
      (p: typeof props) => useFileTree("conv-1", "k", p.live, p.tick, (t) => seen.push(String(t.root.children?.length))),
      props,
    );
    await settle();
    expect(calls.map((c) => c.path)).toEqual(["/api/files/conv-1"]);
    expect(r.result.current.fresh.size).toBe(0); // the first load marks nothing
    expect([...r.result.current.expanded]).toEqual([""]);
    answer = tree(2, [{ name: "b.py", path: "src/b.py", type: "file", size: 1, modified: 1 }]);
    await r.rerender({ ...props, tick: 1 });
    await settle();
    expect([...r.result.current.fresh].sort()).toEqual(["src/a.py", "src/b.py"]);
    expect(r.result.current.expanded.has("src")).toBe(true);
    expect(seen).toEqual(["1", "1"]);
    await settle(4000);
    expect(r.result.current.fresh.size).toBe(0);
    r.unmount();
  });

  it("polls every 2 s while live, and stops when not", async () => {
    const calls = stubFetch(() => json(200, tree(1)));
    const props = { live: true };
    const r = await renderHook((p: typeof props) => useFileTree("conv-1", "k", p.live, 0), props);
    await settle(4000);
    expect(calls.length).toBe(3);
    await r.rerender({ live: false });
    await settle(6000);
    expect(calls.length).toBe(3);
    r.unmount();
  });
});

describe("useChatStream", () => {
  it("fails at once without a key (nothing to connect with)", async () => {
    const calls = stubFetch(() => json(200, {}));
    const r = await renderHook(() => useChatStream("conv-1", "", 0, () => false), {});
    await settle();
    expect(r.result.current.conn.phase).toBe("failed");
    expect(calls).toHaveLength(0);
    r.unmount();
  });
});
