import { useState } from "preact/hooks";
import { Icon } from "../../components/Icon";
import { StatusBadge } from "../../components/ui";
import type { ConnState } from "../../eventStream";
import { cpusFromQuota, fmtBytes, fmtCost, fmtLaunch, fmtTokens } from "../../format";
import { linkClick } from "../../router";
import type { SessionInfo } from "../../types";
import { ConnectionBadge } from "./ConnectionBadge";
import type { ChatSummary } from "./logic";

export function ChatHeader({
  sid,
  summary,
  info,
  running,
  conn,
  onReconnect,
  canEnd,
  onEnd,
  sideOpen,
  onToggleSide,
}: {
  sid: string;
  summary: ChatSummary;
  info: SessionInfo | null;
  running: boolean;
  conn: ConnState;
  onReconnect: () => void;
  /** Offer "End" (the session is neither over nor unreachable). */
  canEnd: boolean;
  /** Stop the session; resolves true when it worked (the confirmation then closes). */
  onEnd: () => Promise<boolean>;
  sideOpen: boolean;
  onToggleSide: () => void;
}) {
  const [endConfirm, setEndConfirm] = useState(false);
  const { status } = summary;
  const res = info?.resources;
  return (
    <div class="chat-header">
      <a href="/sessions" onClick={linkClick} class="icon-btn" title="All sessions">
        <Icon name="arrowLeft" />
      </a>
      <div class="chat-title">
        <div class="chat-name">{summary.title}</div>
        <div class="chat-sub mono" title={sid}>
          {sid}
        </div>
      </div>
      {(status || running) && <StatusBadge status={running && status !== "busy" ? "busy" : status} testid="session-status" />}
      <ConnectionBadge conn={conn} onRetry={onReconnect} />
      <span class="spacer" />
      <div class="chat-stats">
        <span title="Tokens in / out">
          {fmtTokens(summary.tokensIn)} in · {fmtTokens(summary.tokensOut)} out
        </span>
        <span title="Cost so far" data-testid="session-cost">
          {fmtCost(summary.cost)}
        </span>
        {info?.launch_ms != null && (
          <span
            data-testid="session-launch"
            title={info.warm ? "Launch time: a warm-pool sandbox was bound" : "Launch time: a new container was started"}
          >
            <Icon name="clock" size={12} /> {fmtLaunch(info.launch_ms, info.warm)}
          </span>
        )}
        {res && (
          <span
            class="res"
            title={`CPU ${res.cpu_percent?.toFixed(1) ?? "?"}% of ${cpusFromQuota(info?.limits?.cpu_quota)}; memory ${fmtBytes(res.memory_bytes)} of ${fmtBytes(summary.memLimit)}`}
          >
            <Icon name="cpu" size={12} /> {res.cpu_percent != null ? `${res.cpu_percent.toFixed(0)}%` : "—"} · {fmtBytes(res.memory_bytes)}
          </span>
        )}
      </div>
      {canEnd &&
        (endConfirm ? (
          <span class="confirm-inline">
            <button class="btn danger sm" onClick={async () => (await onEnd()) && setEndConfirm(false)} data-testid="confirm-end-session">
              End session
            </button>
            <button class="btn ghost sm" onClick={() => setEndConfirm(false)}>
              Cancel
            </button>
          </span>
        ) : (
          <button class="btn ghost sm" onClick={() => setEndConfirm(true)} title="Stop this session and remove its container" data-testid="end-session">
            <Icon name="x" size={13} /> End
          </button>
        ))}
      <button class="icon-btn" onClick={onToggleSide} title={sideOpen ? "Hide side panel" : "Show files and todos"} data-testid="toggle-side">
        <Icon name="folder" />
      </button>
    </div>
  );
}
