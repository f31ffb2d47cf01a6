// The page title counts the caller's sessions that wait for a tool approval ("(2) AgCluster"),
// so a person sees from another tab that an agent is waiting for them. Polled every 5 s.
import { useEffect } from "preact/hooks";
import { api } from "../api";

const POLL_MS = 5000;

export function waitingTitle(base: string, waiting: number): string {
  return waiting > 0 ? `(${waiting}) ${base} — waiting for approval` : base;
}

export function useWaitingTitle(apiKey: string, base = "AgCluster"): void {
  useEffect(() => {
    document.title = base;
    if (!apiKey) return;
    let alive = true;
    const load = async () => {
      try {
        const { sessions } = await api.sessions(apiKey);
        if (alive) document.title = waitingTitle(base, sessions.filter((s) => s.status === "waiting").length);
      } catch {
        /* the health banner reports an API that is down; the title keeps its last count */
      }
    };
    void load();
    const t = setInterval(load, POLL_MS);
    return () => {
      alive = false;
      clearInterval(t);
    };
  }, [apiKey, base]);
}
