import { afterEach, describe, expect, it, vi } from "vitest";
import { EventStream, type ConnState } from "../src/eventStream";
import { applyMessages, initialChatState, type ChatState } from "../src/reducer";

function sse(events: [number, Record<string, unknown>][]): string {
  return events.map(([id, e]) => `id: ${id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join("");
}

function streamOf(text: string, chunk = 7): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let i = 0;
  return new ReadableStream({
    pull(ctrl) {
      if (i >= bytes.length) return ctrl.close();
      ctrl.enqueue(bytes.slice(i, i + chunk));
      i += chunk;
    },
  });
}

const E = (type: string, extra: Record<string, unknown> = {}) => ({ type, session_id: "s", ...extra });

afterEach(() => vi.unstubAllGlobals());

describe("EventStream", () => {
  it("reconnects with Last-Event-ID and never doubles an event", async () => {
    const all: [number, Record<string, unknown>][] = [
      [1, E("user.message", { turn_id: "t", text: "hi" })],
      [2, E("turn.started", { turn_id: "t" })],
      [3, E("text.delta", { turn_id: "t", text: "Hel", index: 0 })],
      [4, E("text.delta", { turn_id: "t", text: "lo", index: 0 })],
      [5, E("message", { turn_id: "t", text: "Hello" })],
      [6, E("turn.completed", { turn_id: "t" })],
      [7, E("session.stopped", { reason: "deleted" })],
    ];
    const seen: (string | null)[] = [];
    const fetchMock = vi.fn(async (_url: string, init: RequestInit) => {
      const h = init.headers as Record<string, string>;
      expect(h.Authorization).toBe("Bearer k");
      const last = h["Last-Event-ID"] ?? null;
      seen.push(last);
      if (seen.length === 1) return new Response(streamOf(sse(all.slice(0, 3))), { status: 200 }); // drops after 3
      if (seen.length === 2) throw new TypeError("network down");
      // The server replays from an older point than asked (overlap): the reducer must drop it.
      return new Response(streamOf(sse(all.slice(1))), { status: 200 });
    });
    vi.stubGlobal("fetch", fetchMock);

    let state: ChatState = initialChatState();
    const phases: ConnState["phase"][] = [];
    await new Promise<void>((resolve) => {
      const es = new EventStream({
        sid: "s",
        key: "k",
        lastId: () => state.lastId,
        onBatch: (b) => (state = applyMessages(state, b)),
        onState: (c) => {
          phases.push(c.phase);
          if (c.phase === "reconnecting") es.reconnectNow();
          if (c.phase === "ended") resolve();
        },
        isFinished: () => !!state.stopped,
      });
      es.start();
    });
    expect(seen).toEqual([null, "3", "3"]);
    expect(phases).toContain("reconnecting");
    expect(phases[phases.length - 1]).toBe("ended");
    expect(state.turns).toHaveLength(1);
    expect(state.turns[0].items).toHaveLength(1);
    expect((state.turns[0].items[0] as any).text).toBe("Hello");
    expect(state.lastId).toBe("7");
    expect(state.eventCount).toBe(7);
  });

  it("gives up on a wrong key (403) with the error", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(JSON.stringify({ error: "forbidden", detail: "wrong key" }), { status: 403 })),
    );
    const st = await new Promise<ConnState>((resolve) => {
      new EventStream({
        sid: "s",
        key: "bad",
        lastId: () => "",
        onBatch: () => undefined,
        onState: (c) => c.phase === "failed" && resolve(c),
      }).start();
    });
    expect(st.error?.status).toBe(403);
    expect(st.error?.detail).toBe("wrong key");
  });
});
