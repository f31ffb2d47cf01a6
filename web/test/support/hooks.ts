// Render a hook in a real Preact tree (inside happy-dom) and read what it returns.
import { h, render } from "preact";
import { act } from "preact/test-utils";
import { vi } from "vitest";

export interface Rendered<P, R> {
  result: { current: R };
  rerender: (props: P) => Promise<void>;
  unmount: () => void;
}

export async function renderHook<P extends object, R>(hook: (props: P) => R, props: P): Promise<Rendered<P, R>> {
  const result = { current: undefined as unknown as R };
  function Probe(p: P) {
    result.current = hook(p);
    return null;
  }
  const root = document.createElement("div");
  document.body.appendChild(root);
  await act(() => render(h(Probe, props), root));
  return {
    result,
    rerender: async (p: P) => {
      await act(() => render(h(Probe, p), root));
    },
    unmount: () => {
      render(null, root);
      root.remove();
    },
  };
}

/** Let pending promises and effects run (and advance fake timers by `ms`). */
export async function settle(ms = 0): Promise<void> {
  await act(async () => {
    if (ms) await vi.advanceTimersByTimeAsync(ms);
    for (let i = 0; i < 5; i++) await Promise.resolve();
  });
}

/** A JSON response, as the API sends. */
export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

/** Replace fetch; records every call's method, path and JSON body. */
export function stubFetch(answer: (method: string, path: string, body: unknown) => Response | Promise<Response>) {
  const calls: { method: string; path: string; body: unknown; signal?: AbortSignal | null }[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const path = typeof input === "string" ? input : input instanceof URL ? input.pathname : input.url;
    const method = init?.method ?? "GET";
    const body = typeof init?.body === "string" ? JSON.parse(init.body) : undefined;
    calls.push({ method, path, body, signal: init?.signal });
    if (init?.signal?.aborted) throw new DOMException("aborted", "AbortError");
    return answer(method, path, body);
  });
  vi.stubGlobal("fetch", fn);
  return calls;
}
