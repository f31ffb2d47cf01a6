// @vitest-environment happy-dom
// What the dashboard says when the perimeter answers: limits (429), full workers (503),
// config writes without the operator token (401); and that it sends the token it was given.
import { afterEach, describe, expect, it, vi } from "vitest";
import { api, errorFromResponse } from "../src/api";
import { humanize } from "../src/errors";
import { getOperatorToken, setOperatorToken } from "../src/store";

function answer(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

afterEach(() => {
  vi.unstubAllGlobals();
  setOperatorToken("");
});

describe("perimeter errors", () => {
  it("says which limit a 429 hit and when to retry", async () => {
    const err = await errorFromResponse(
      answer(429, { error: "too_many_requests", detail: "this API key already has 5 live sessions", limit: "max_sessions_per_key" }, { "Retry-After": "7" }),
    );
    expect(err.retryAfter).toBe(7);
    const h = humanize(err, "launch");
    expect(h.title).toBe("Too many sessions");
    expect(h.hint).toContain("7 s");
    expect(h.detail).toContain("5 live sessions");
    const rate = humanize(await errorFromResponse(answer(429, { error: "x", detail: "d", limit: "launch_rate" })), "launch");
    expect(rate.title).toBe("Too many launches");
  });

  it("tells full workers apart from no worker at all", async () => {
    const full = humanize(await errorFromResponse(answer(503, { error: "unavailable", detail: "every worker is full", reason: "no_capacity" }, { "Retry-After": "5" })), "launch");
    expect(full.title).toBe("Every worker is full");
    expect(full.hint).toContain("5 s");
    const none = humanize(await errorFromResponse(answer(503, { error: "unavailable", detail: "no worker is running" })), "launch");
    expect(none.title).toBe("No worker is running");
  });

  it("asks for the operator token when a config write is refused", async () => {
    const h = humanize(await errorFromResponse(answer(401, { error: "unauthorized", detail: "this route needs the operator token" })), "save");
    expect(h.title).toBe("Operator token needed");
  });

  it("sends the operator token (this tab only) with config writes", async () => {
    const calls: RequestInit[] = [];
    vi.stubGlobal("fetch", async (_url: string, init: RequestInit) => {
      calls.push(init);
      return answer(201, { id: "mine" });
    });
    setOperatorToken("op-secret");
    expect(getOperatorToken()).toBe("op-secret");
    expect(localStorage.getItem("agc.operatorToken")).toBeNull();
    await api.saveCustom({ id: "mine" }, getOperatorToken());
    expect((calls[0].headers as Record<string, string>).Authorization).toBe("Bearer op-secret");
  });
});
