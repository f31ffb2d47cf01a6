// Session metadata (config name, limits, resources, status), polled every 5 s.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { humanize, type HumanError } from "../errors";
import type { SessionInfo } from "../types";

const POLL_MS = 5000;

export function useSessionInfo(sid: string, apiKey: string, generation: number) {
  const [info, setInfo] = useState<SessionInfo | null>(null);
  const [error, setError] = useState<HumanError | null>(null);
  /** The last polled status, readable from callbacks. */
  const statusRef = useRef<string | null>(null);

  useEffect(() => {
    if (!apiKey) return;
    let alive = true;
    const load = async () => {
      try {
        const s = await api.session(apiKey, sid);
        if (alive) {
          statusRef.current = s.status;
          setInfo(s);
          setError(null);
        }
      } catch (e) {
        if (alive) setError(humanize(e, "session"));
      }
    };
    void load();
    const t = setInterval(load, POLL_MS);
    return () => {
      alive = false;
      clearInterval(t);
    };
  }, [sid, apiKey, generation]);

  return { info, error, clearError: () => setError(null), statusRef };
}
