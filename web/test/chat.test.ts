import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api";
import { applyMessages, initialChatState } from "../src/reducer";
import { chatSummary, connectionProblem, findNode, sendFailureIsBenign } from "../src/pages/chat/logic";
import type { FileNode, SessionInfo } from "../src/types";

describe("connectionProblem", () => {
  it("asks for the key when there is none or it is refused", () => {
    const none = connectionProblem({ phase: "failed", attempt: 0 });
    expect(none).toMatchObject({ needsKey: true, unavailable: true });
    expect(none.error?.status).toBe(401);
    const refused = connectionProblem({ phase: "failed", attempt: 1, error: new ApiError(403, "forbidden", "wrong key") });
    expect(refused.needsKey).toBe(true);
  });

  it("does not ask for a key when the session is unknown", () => {
    const p = connectionProblem({ phase: "failed", attempt: 1, error: new ApiError(404, "not_found", "no such session") });
    expect(p).toMatchObject({ needsKey: false, unavailable: true });
    expect(p.error?.status).toBe(404);
  });

  it("says nothing on the first reconnect, and that the link is lost from the second", () => {
    expect(connectionProblem({ phase: "reconnecting", attempt: 1 }).error).toBeNull();
    const p = connectionProblem({ phase: "reconnecting", attempt: 2 });
    expect(p.error?.title).toBe("Connection lost");
    expect(p.unavailable).toBe(false);
    expect(connectionProblem({ phase: "live", attempt: 0 })).toEqual({ error: null, needsKey: false, unavailable: false });
  });
});

describe("sendFailureIsBenign", () => {
  const h = (status: number) => ({ title: "x", hint: "", status });
  it("ignores a dropped or timed-out POST once the stream shows the turn", () => {
    expect(sendFailureIsBenign(h(0), 1, 2)).toBe(true);
    expect(sendFailureIsBenign(h(504), 1, 2)).toBe(true);
  });
  it("reports it when the turn never showed, or the API refused", () => {
    expect(sendFailureIsBenign(h(0), 1, 1)).toBe(false);
    expect(sendFailureIsBenign(h(409), 1, 2)).toBe(false);
  });
});

describe("chatSummary", () => {
  it("prefers the figures that are ahead, and the config's name", () => {
    const chat = applyMessages(initialChatState(), [
      { id: "1", event: { type: "session.ready", config_id: "cfg-a" } },
      { id: "2", event: { type: "turn.completed", turn_id: "t", usage: { input_tokens: 10, output_tokens: 50 }, cost_usd: 0.5 } },
    ]);
    expect(chatSummary(chat, null)).toMatchObject({ title: "cfg-a", status: "running", tokensIn: 10, tokensOut: 50, cost: 0.5 });
    const info: SessionInfo = {
      session_id: "s",
      status: "idle",
      config_name: "Code assistant",
      usage: { input_tokens: 99, output_tokens: 1 },
      cost_usd: 0.1,
      limits: { memory_limit: "1g" },
    };
    expect(chatSummary(chat, info)).toMatchObject({ title: "Code assistant", status: "running", tokensIn: 99, tokensOut: 50, cost: 0.5, memLimit: 1024 ** 3 });
    expect(chatSummary(initialChatState(), info).status).toBe("idle");
  });
});

describe("findNode", () => {
  it("finds a nested path", () => {
    const root: FileNode = {
      name: "",
      path: "",
      type: "directory",
      children: [{ name: "src", path: "src", type: "directory", children: [{ name: "a.py", path: "src/a.py", type: "file", size: 3 }] }],
    };
    expect(findNode(root, "src/a.py")?.size).toBe(3);
    expect(findNode(root, "src/b.py")).toBeNull();
  });
});
