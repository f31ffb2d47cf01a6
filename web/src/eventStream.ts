// Follows GET /api/agents/{sid}/events with fetch() (EventSource cannot send
// Authorization), parses SSE, and reconnects with backoff and Last-Event-ID:
// the reducer drops anything already applied, so nothing is lost or doubled.
import { ApiError, errorFromResponse } from "./api";
import { parseEventData, type StreamMessage } from "./reducer";
import { SSEParser } from "./sse";

export type ConnPhase = "connecting" | "live" | "reconnecting" | "failed" | "ended";

export interface ConnState {
  phase: ConnPhase;
  attempt: number;
  /** When the next attempt starts (ms since epoch), while reconnecting. */
  retryAt?: number;
  error?: ApiError;
}

export interface EventStreamOptions {
  sid: string;
  key: string;
  /** The last id applied, sent as Last-Event-ID when (re)connecting. */
  lastId: () => string;
  onBatch: (msgs: StreamMessage[]) => void;
  onState: (s: ConnState) => void;
  /** True once the session has stopped: a closed stream is then the end. */
  isFinished?: () => boolean;
}

/** Delay before reconnect attempt `attempt` (1-based): 0.5 s doubling to 10 s, ±15 % jitter. */
export function backoffMs(attempt: number): number {
  const base = Math.min(500 * 2 ** Math.max(0, attempt - 1), 10_000);
  return Math.round(base * (0.85 + Math.random() * 0.3));
}

export class EventStream {
  private opts: EventStreamOptions;
  private abort: AbortController | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;
  private attempt = 0;

  constructor(opts: EventStreamOptions) {
    this.opts = opts;
  }

  start() {
    void this.loop();
    if (typeof window !== "undefined") window.addEventListener("online", this.onOnline);
  }

  stop() {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    if (typeof window !== "undefined") window.removeEventListener("online", this.onOnline);
  }

  /** Skip the backoff wait and reconnect at once. */
  reconnectNow() {
    this.attempt = 0;
    this.wake?.();
  }

  private onOnline = () => this.reconnectNow();

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }

  private async loop() {
    const { sid, key } = this.opts;
    while (!this.stopped) {
      this.opts.onState({ phase: this.attempt ? "reconnecting" : "connecting", attempt: this.attempt });
      const ctrl = new AbortController();
      this.abort = ctrl;
      let lastError: ApiError | undefined;
      try {
        const headers: Record<string, string> = {
          Accept: "text/event-stream",
          Authorization: `Bearer ${key}`,
          "Cache-Control": "no-cache",
        };
        const last = this.opts.lastId();
        if (last) headers["Last-Event-ID"] = last;
        const res = await fetch(`/api/agents/${encodeURIComponent(sid)}/events`, {
          headers,
          signal: ctrl.signal,
          cache: "no-store",
        });
        if (!res.ok) {
          const err = await errorFromResponse(res);
          if (err.status === 401 || err.status === 403 || err.status === 404) {
            this.opts.onState({ phase: "failed", attempt: this.attempt, error: err });
            return;
          }
          throw err;
        }
        if (!res.body) throw new ApiError(0, "network", "the browser gave no response stream");
        this.attempt = 0;
        this.opts.onState({ phase: "live", attempt: 0 });
        const parser = new SSEParser(last);
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const msgs = parser.feed(decoder.decode(value, { stream: true }));
          if (msgs.length) {
            const batch: StreamMessage[] = [];
            for (const m of msgs) {
              const ev = parseEventData(m.data, m.event);
              if (ev) batch.push({ id: m.hasId ? m.id : "", event: ev });
            }
            if (batch.length) this.opts.onBatch(batch);
          }
        }
        if (this.stopped) return;
        if (this.opts.isFinished?.()) {
          this.opts.onState({ phase: "ended", attempt: 0 });
          return;
        }
        // The server closed a live stream: reconnect promptly.
        lastError = new ApiError(0, "network", "the event stream was closed by the server");
      } catch (e) {
        if (this.stopped || (e as Error)?.name === "AbortError") return;
        lastError = e instanceof ApiError ? e : new ApiError(0, "network", String((e as Error)?.message ?? e));
      }
      this.attempt++;
      const wait = backoffMs(this.attempt);
      this.opts.onState({ phase: "reconnecting", attempt: this.attempt, retryAt: Date.now() + wait, error: lastError });
      await this.sleep(wait);
    }
  }
}
