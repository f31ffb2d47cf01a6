import { describe, expect, it } from "vitest";
import { SSEParser } from "../src/sse";

const feedAll = (p: SSEParser, chunks: string[]) => chunks.flatMap((c) => p.feed(c));

describe("SSEParser", () => {
  it("parses id, event and data", () => {
    const p = new SSEParser();
    const m = p.feed('id: 7\nevent: text.delta\ndata: {"a":1}\n\n');
    expect(m).toEqual([{ id: "7", hasId: true, event: "text.delta", data: '{"a":1}' }]);
    expect(p.lastEventId).toBe("7");
  });

  it("handles any chunking, including split CRLF", () => {
    const text = "id: 1\r\nevent: a\r\ndata: x\r\n\r\nid: 2\r\ndata: y\r\n\r\n";
    for (let size = 1; size <= text.length; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
      const msgs = feedAll(new SSEParser(), chunks);
      expect(msgs.map((m) => [m.id, m.event, m.data])).toEqual([
        ["1", "a", "x"],
        ["2", "message", "y"],
      ]);
    }
  });

  it("accepts lone CR line endings", () => {
    const msgs = new SSEParser().feed("data: a\rdata: b\r\r");
    expect(msgs).toHaveLength(1);
    expect(msgs[0].data).toBe("a\nb");
  });

  it("joins multi-line data and strips one leading space only", () => {
    const msgs = new SSEParser().feed("data:  two spaces\ndata:none\n\n");
    expect(msgs[0].data).toBe(" two spaces\nnone");
  });

  it("ignores comments (keep-alives) and blocks without data", () => {
    const p = new SSEParser();
    expect(p.feed(": keep-alive\n\n")).toEqual([]);
    expect(p.feed("id: 5\n\n")).toEqual([]);
    // the id sticks for the next message, which has none of its own
    const m = p.feed("data: x\n\n");
    expect(m[0].id).toBe("5");
    expect(m[0].hasId).toBe(false);
  });

  it("keeps an unterminated message until its blank line arrives", () => {
    const p = new SSEParser();
    expect(p.feed("id: 9\ndata: par")).toEqual([]);
    expect(p.feed("tial\n")).toEqual([]);
    expect(p.feed("\n")[0].data).toBe("partial");
  });

  it("reads retry and ignores ids containing NUL", () => {
    const p = new SSEParser("3");
    p.feed("retry: 1500\nid: a\u0000b\ndata: x\n\n");
    expect(p.retryMs).toBe(1500);
    expect(p.lastEventId).toBe("3");
  });

  it("handles a field with no colon", () => {
    const msgs = new SSEParser().feed("data\n\n");
    expect(msgs[0].data).toBe("");
  });
});
