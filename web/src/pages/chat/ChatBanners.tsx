import { ErrorBanner } from "../../components/ui";
import type { HumanError } from "../../errors";
import type { ConnState } from "../../eventStream";
import type { ChatState } from "../../reducer";
import { linkClick } from "../../router";
import type { SessionInfo } from "../../types";
import { KeyFix } from "./KeyFix";
import type { ConnectionProblem } from "./logic";

/** What is wrong above the timeline: the connection, the session's metadata, a failed session. */
export function ChatBanners({
  sid,
  conn,
  problem,
  chat,
  info,
  infoErr,
  onDismissInfoErr,
  onReconnect,
  onRestart,
}: {
  sid: string;
  conn: ConnState;
  problem: ConnectionProblem;
  chat: ChatState;
  info: SessionInfo | null;
  infoErr: HumanError | null;
  onDismissInfoErr: () => void;
  onReconnect: () => void;
  /** Start over (new key, or try again): a new stream and a new metadata poll. */
  onRestart: () => void;
}) {
  const { error: connError, needsKey } = problem;
  return (
    <>
      {connError && (
        <ErrorBanner error={connError} testid="connection-error">
          {needsKey && <KeyFix sid={sid} onUse={onRestart} />}
          {conn.phase === "reconnecting" && (
            <button class="btn sm" onClick={onReconnect}>
              Reconnect now
            </button>
          )}
          {conn.phase === "failed" && !needsKey && (
            <span class="row-gap">
              <a class="btn sm" href="/sessions" onClick={linkClick}>
                Open Sessions
              </a>
              <a class="btn sm" href="/" onClick={linkClick}>
                Launch a new session
              </a>
              <button class="btn sm ghost" onClick={onRestart}>
                Try again
              </button>
            </span>
          )}
        </ErrorBanner>
      )}
      {infoErr && !connError && infoErr.status !== 0 && <ErrorBanner error={infoErr} onDismiss={onDismissInfoErr} />}
      {(info?.status === "failed" || chat.status === "failed") && (
        <ErrorBanner
          testid="session-failed"
          error={{
            title: "This session failed",
            hint: "Its container stopped unexpectedly. Launch a new session; the worker logs say more.",
            detail: info?.error || chat.statusDetail || undefined,
            status: 500,
          }}
        />
      )}
    </>
  );
}
