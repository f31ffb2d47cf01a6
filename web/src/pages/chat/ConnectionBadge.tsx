import { useEffect, useState } from "preact/hooks";
import type { ConnState } from "../../eventStream";

const LABEL: Record<string, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting",
  failed: "Disconnected",
  ended: "Ended",
};

/** The event stream's state, with a countdown and "retry now" while reconnecting. */
export function ConnectionBadge({ conn, onRetry }: { conn: ConnState; onRetry: () => void }) {
  const [, tick] = useState(0);
  useEffect(() => {
    if (conn.phase !== "reconnecting") return;
    const t = setInterval(() => tick((x) => x + 1), 500);
    return () => clearInterval(t);
  }, [conn.phase]);
  const secs = conn.retryAt ? Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000)) : 0;
  return (
    <span class={`conn conn-${conn.phase}`} data-testid="connection-status" data-state={conn.phase}>
      <span class="dot" />
      {LABEL[conn.phase]}
      {conn.phase === "reconnecting" && secs > 0 && <span class="muted"> in {secs}s</span>}
      {conn.phase === "reconnecting" && (
        <button class="link-btn" onClick={onRetry}>
          retry now
        </button>
      )}
    </span>
  );
}
