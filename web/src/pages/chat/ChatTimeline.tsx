import { Icon, Spinner } from "../../components/Icon";
import { ErrorNote, SystemNote } from "../../components/timeline/Notes";
import { TurnView } from "../../components/timeline/TurnView";
import type { ConnState } from "../../eventStream";
import type { ChatState } from "../../reducer";
import { linkClick } from "../../router";
import type { Pending } from "./useTurnControl";

/** The conversation: session notes, an empty state, the turns, the message being sent, the end. */
export function ChatTimeline({
  chat,
  pending,
  running,
  stopped,
  unavailable,
  conn,
  status,
  title,
}: {
  chat: ChatState;
  pending: Pending | null;
  running: boolean;
  stopped: boolean;
  unavailable: boolean;
  conn: ConnState;
  status: string | null;
  title: string;
}) {
  return (
    <>
      {chat.sessionItems.map((it) =>
        it.kind === "error" ? (
          <ErrorNote key={it.key} code={it.code} message={it.message} detail={it.detail} fatal={it.fatal} />
        ) : it.kind === "system" && it.subtype === "init" ? (
          <SystemNote key={it.key} subtype={it.subtype} data={it.data} />
        ) : null,
      )}
      {chat.turns.length === 0 && !pending && !unavailable && (
        <div class="chat-empty">
          {conn.phase === "connecting" || (conn.phase === "live" && !chat.ready && chat.eventCount === 0 && status === "starting") ? (
            <>
              <Spinner size={20} />
              <div>{status === "starting" ? "Starting the agent's container…" : "Loading the conversation…"}</div>
            </>
          ) : (
            <>
              <div class="chat-empty-logo">
                <Icon name="bot" size={28} />
              </div>
              <div class="empty-title">{stopped ? "This session has ended" : `${title} is ready`}</div>
              <div class="muted small">{stopped ? "Launch a new session to keep working." : "Ask it to do something. Tool calls, todos and files show up live."}</div>
            </>
          )}
        </div>
      )}
      {chat.turns.map((t, i) => (
        <TurnView key={t.key} turn={t} live={i === chat.turns.length - 1 && running} />
      ))}
      {pending && (
        <div class="turn pending">
          <div class="user-msg" data-testid="user-message" data-pending="true">
            <div class="user-bubble">{pending.text}</div>
          </div>
          <div class="assistant">
            <div class="turn-footer running">
              <Spinner size={12} /> Sending…
            </div>
          </div>
        </div>
      )}
      {chat.stopped && (
        <div class="session-ended" data-testid="session-ended">
          <Icon name="stop" size={13} /> Session stopped{chat.stopped.reason ? ` (${chat.stopped.reason})` : ""}.{" "}
          <a href="/" onClick={linkClick}>
            Launch a new one
          </a>
        </div>
      )}
    </>
  );
}
