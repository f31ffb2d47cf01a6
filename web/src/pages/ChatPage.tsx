import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { FilePreviewPane, FilesPanel } from "../components/FilesPanel";
import { Icon, Spinner } from "../components/Icon";
import { ErrorNote, SystemNote, TurnView } from "../components/Timeline";
import { TodoPanel } from "../components/TodoPanel";
import { ErrorBanner, StatusBadge, toast } from "../components/ui";
import { humanize, type HumanError } from "../errors";
import { EventStream, type ConnState } from "../eventStream";
import { cpusFromQuota, fmtBytes, fmtCost, fmtTokens, parseSize } from "../format";
import { applyMessages, initialChatState, isRunning, type ChatState, type StreamMessage } from "../reducer";
import { linkClick, navigate } from "../router";
import { keyForSession, rememberSessionKey } from "../store";
import type { FileNode, FileTree, SessionInfo } from "../types";

function ConnectionBadge({ conn, onRetry }: { conn: ConnState; onRetry: () => void }) {
  const [, tick] = useState(0);
  useEffect(() => {
    if (conn.phase !== "reconnecting") return;
    const t = setInterval(() => tick((x) => x + 1), 500);
    return () => clearInterval(t);
  }, [conn.phase]);
  const label: Record<string, string> = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting",
    failed: "Disconnected",
    ended: "Ended",
  };
  const secs = conn.retryAt ? Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000)) : 0;
  return (
    <span class={`conn conn-${conn.phase}`} data-testid="connection-status" data-state={conn.phase}>
      <span class="dot" />
      {label[conn.phase]}
      {conn.phase === "reconnecting" && secs > 0 && <span class="muted"> in {secs}s</span>}
      {conn.phase === "reconnecting" && (
        <button class="link-btn" onClick={onRetry}>
          retry now
        </button>
      )}
    </span>
  );
}

function KeyFix({ sid, onUse }: { sid: string; onUse: () => void }) {
  const [v, setV] = useState("");
  return (
    <form
      class="keyrow"
      onSubmit={(e) => {
        e.preventDefault();
        if (!v.trim()) return;
        rememberSessionKey(sid, v.trim());
        onUse();
      }}
    >
      <input
        class="input mono"
        type="password"
        placeholder="The API key this session was launched with"
        value={v}
        onInput={(e) => setV((e.target as HTMLInputElement).value)}
        data-testid="session-key-input"
      />
      <button class="btn sm primary" type="submit">
        Use this key
      </button>
    </form>
  );
}

const TERMINAL = new Set(["stopped", "failed"]);

function findNode(root: FileNode, path: string): FileNode | null {
  if (root.path === path) return root;
  for (const c of root.children ?? []) {
    const f = findNode(c, path);
    if (f) return f;
  }
  return null;
}

export function ChatPage({ sid }: { sid: string }) {
  const [streamGen, setStreamGen] = useState(0);
  const apiKey = keyForSession(sid) + "" /* re-read each render */;
  const stateRef = useRef<ChatState>(initialChatState());
  const [chat, setChat] = useState<ChatState>(stateRef.current);
  const [conn, setConn] = useState<ConnState>({ phase: "connecting", attempt: 0 });
  const [info, setInfo] = useState<SessionInfo | null>(null);
  const [infoErr, setInfoErr] = useState<HumanError | null>(null);
  const [sendErr, setSendErr] = useState<HumanError | null>(null);
  const [input, setInput] = useState("");
  const [pending, setPending] = useState<{ text: string; turns: number } | null>(null);
  const [stopping, setStopping] = useState(false);
  const [endConfirm, setEndConfirm] = useState(false);
  const [openPath, setOpenPath] = useState<string | null>(null);
  const [fileVersion, setFileVersion] = useState("");
  const [filesTick, setFilesTick] = useState(0);
  const [sideOpen, setSideOpen] = useState(() => window.innerWidth > 760);
  const streamRef = useRef<EventStream | null>(null);
  const infoStatus = useRef<string | null>(null);
  const scrollRef = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const inputRef = useRef<HTMLTextAreaElement>(null);

  // The events stream is the single source of truth for the conversation.
  useEffect(() => {
    if (!apiKey) {
      setConn({ phase: "failed", attempt: 0, error: undefined });
      return;
    }
    stateRef.current = initialChatState();
    setChat(stateRef.current);
    const es = new EventStream({
      sid,
      key: apiKey,
      lastId: () => stateRef.current.lastId,
      onBatch: (batch: StreamMessage[]) => {
        const next = applyMessages(stateRef.current, batch);
        if (next !== stateRef.current) {
          stateRef.current = next;
          setChat(next);
        }
      },
      onState: setConn,
      isFinished: () => !!stateRef.current.stopped || TERMINAL.has(infoStatus.current ?? ""),
    });
    streamRef.current = es;
    es.start();
    return () => es.stop();
  }, [sid, apiKey, streamGen]);

  // Session metadata (config name, limits, resources) — polled.
  useEffect(() => {
    if (!apiKey) return;
    let alive = true;
    const load = async () => {
      try {
        const s = await api.session(apiKey, sid);
        if (alive) {
          infoStatus.current = s.status;
          setInfo(s);
          setInfoErr(null);
        }
      } catch (e) {
        if (alive) setInfoErr(humanize(e, "session"));
      }
    };
    void load();
    const t = setInterval(load, 5000);
    return () => {
      alive = false;
      clearInterval(t);
    };
  }, [sid, apiKey, streamGen]);

  const running = isRunning(chat);
  const stopped = !!chat.stopped || info?.status === "stopped" || info?.status === "failed";

  // Clear the optimistic user message once the stream shows the turn.
  useEffect(() => {
    if (pending && chat.turns.length > pending.turns) setPending(null);
  }, [chat.turns.length, pending]);

  // Turn finished: stop "stopping", refresh the files once.
  const wasRunning = useRef(false);
  useEffect(() => {
    if (wasRunning.current && !running) {
      setStopping(false);
      setFilesTick((x) => x + 1);
    }
    wasRunning.current = running;
  }, [running]);

  // Stick to the bottom while new content streams in, unless the user scrolled up.
  const onScroll = () => {
    const el = scrollRef.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  };
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [chat, pending]);

  const send = async () => {
    const text = input.trim();
    if (!text || running || stopped || pending) return;
    setSendErr(null);
    const baseTurns = stateRef.current.turns.length;
    setPending({ text, turns: baseTurns });
    setInput("");
    stick.current = true;
    try {
      // The reply body is not needed: the events stream shows everything.
      await api.chat(apiKey, sid, text);
    } catch (e) {
      const h = humanize(e, "chat");
      // A dropped POST after the turn started is not an error the user must act on.
      // So is a JSON reply that timed out while the turn goes on (the stream shows it).
      if ((h.status === 0 || h.status === 504) && stateRef.current.turns.length > baseTurns) return;
      setSendErr(h);
      setPending(null);
      setInput((cur) => cur || text);
    }
  };

  const interrupt = async () => {
    setStopping(true);
    try {
      await api.interrupt(apiKey, sid);
    } catch (e) {
      setStopping(false);
      setSendErr(humanize(e, "interrupt"));
    }
  };

  // Esc interrupts the running turn (like the Stop button).
  useEffect(() => {
    if (!running) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape" && !e.defaultPrevented && !document.querySelector(".modal")) void interrupt();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [running]);

  const endSession = async () => {
    try {
      await api.stopSession(apiKey, sid);
      toast("Session stopped");
      setEndConfirm(false);
    } catch (e) {
      setSendErr(humanize(e, "session"));
    }
  };

  const onTree = (t: FileTree) => {
    if (!openPath) return;
    const n = findNode(t.root, openPath);
    if (n) setFileVersion(`${n.modified ?? ""}:${n.size ?? ""}`);
  };

  const status = chat.status ?? info?.status ?? null;
  const cfgName = info?.config_name || info?.config_id || chat.configId || "Session";
  const totalsIn = Math.max(chat.totals.input, info?.usage?.input_tokens ?? 0);
  const totalsOut = Math.max(chat.totals.output, info?.usage?.output_tokens ?? 0);
  const cost = Math.max(chat.totals.cost, info?.cost_usd ?? 0);
  const res = info?.resources;
  const memLimit = res?.memory_limit_bytes ?? parseSize(info?.limits?.memory_limit ?? null);

  const connError: HumanError | null =
    conn.phase === "failed"
      ? conn.error
        ? humanize(conn.error, "events")
        : { title: "No API key for this session", hint: "Enter the Anthropic API key this session was launched with.", status: 401 }
      : conn.phase === "reconnecting" && conn.attempt >= 2
        ? {
            title: "Connection lost",
            hint: "Reconnecting automatically; the conversation resumes exactly where it left off. If this goes on, check that the AgCluster API is running and your network is up.",
            detail: conn.error?.detail || undefined,
            status: 0,
          }
        : null;

  const needsKey = conn.phase === "failed" && (!conn.error || conn.error.status === 401 || conn.error.status === 403);
  // Wrong key, no key or unknown session: nothing here can work until that is fixed.
  const unavailable = conn.phase === "failed";

  return (
    <div class={`chat-layout ${sideOpen && !unavailable ? "side-open" : "side-closed"} ${openPath ? "previewing" : ""}`}>
      <div class="chat-main">
        <div class="chat-header">
          <a href="/sessions" onClick={linkClick} class="icon-btn" title="All sessions">
            <Icon name="arrowLeft" />
          </a>
          <div class="chat-title">
            <div class="chat-name">{cfgName}</div>
            <div class="chat-sub mono" title={sid}>
              {sid}
            </div>
          </div>
          {(status || running) && <StatusBadge status={running && status !== "busy" ? "busy" : status} testid="session-status" />}
          <ConnectionBadge conn={conn} onRetry={() => streamRef.current?.reconnectNow()} />
          <span class="spacer" />
          <div class="chat-stats">
            <span title="Tokens in / out">
              {fmtTokens(totalsIn)} in · {fmtTokens(totalsOut)} out
            </span>
            <span title="Cost so far" data-testid="session-cost">
              {fmtCost(cost)}
            </span>
            {res && (
              <span class="res" title={`CPU ${res.cpu_percent?.toFixed(1) ?? "?"}% of ${cpusFromQuota(info?.limits?.cpu_quota)}; memory ${fmtBytes(res.memory_bytes)} of ${fmtBytes(memLimit)}`}>
                <Icon name="cpu" size={12} /> {res.cpu_percent != null ? `${res.cpu_percent.toFixed(0)}%` : "—"} · {fmtBytes(res.memory_bytes)}
              </span>
            )}
          </div>
          {!stopped &&
            !unavailable &&
            (endConfirm ? (
              <span class="confirm-inline">
                <button class="btn danger sm" onClick={endSession} data-testid="confirm-end-session">
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
          <button class="icon-btn" onClick={() => setSideOpen(!sideOpen)} title={sideOpen ? "Hide side panel" : "Show files and todos"} data-testid="toggle-side">
            <Icon name="folder" />
          </button>
        </div>

        <div class="chat-scroll" ref={scrollRef} onScroll={onScroll} data-testid="timeline">
          <div class="chat-inner">
            {connError && (
              <ErrorBanner error={connError} testid="connection-error">
                {needsKey && <KeyFix sid={sid} onUse={() => setStreamGen((g) => g + 1)} />}
                {conn.phase === "reconnecting" && (
                  <button class="btn sm" onClick={() => streamRef.current?.reconnectNow()}>
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
                    <button class="btn sm ghost" onClick={() => setStreamGen((g) => g + 1)}>
                      Try again
                    </button>
                  </span>
                )}
              </ErrorBanner>
            )}
            {infoErr && !connError && infoErr.status !== 0 && <ErrorBanner error={infoErr} onDismiss={() => setInfoErr(null)} />}
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
                    <div class="empty-title">{stopped ? "This session has ended" : `${cfgName} is ready`}</div>
                    <div class="muted small">
                      {stopped ? "Launch a new session to keep working." : "Ask it to do something. Tool calls, todos and files show up live."}
                    </div>
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
          </div>
        </div>

        <div class="composer-wrap">
          <ErrorBanner error={sendErr} onDismiss={() => setSendErr(null)} testid="send-error" />
          <form
            class={`composer ${running ? "busy" : ""}`}
            onSubmit={(e) => {
              e.preventDefault();
              void send();
            }}
          >
            <textarea
              ref={inputRef}
              class="composer-input"
              rows={1}
              placeholder={stopped ? "This session has ended." : running ? "The agent is working… (Stop to interrupt)" : "Message the agent…  (Enter to send, Shift+Enter for a new line)"}
              value={input}
              disabled={stopped || unavailable}
              data-testid="chat-input"
              onInput={(e) => {
                const el = e.target as HTMLTextAreaElement;
                setInput(el.value);
                el.style.height = "auto";
                el.style.height = `${Math.min(240, el.scrollHeight)}px`;
              }}
              onKeyDown={(e) => {
                if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
                  e.preventDefault();
                  void send();
                }
              }}
            />
            {running || pending ? (
              <button
                type="button"
                class="btn danger composer-btn"
                onClick={interrupt}
                disabled={stopping || !running}
                data-testid="stop-button"
                title="Interrupt the running turn (Esc); the session stays"
              >
                {stopping ? <Spinner size={13} /> : <Icon name="stop" size={13} />} {stopping ? "Stopping…" : "Stop"}
              </button>
            ) : (
              <button type="submit" class="btn primary composer-btn" disabled={!input.trim() || stopped || unavailable} data-testid="send-button">
                <Icon name="send" size={13} /> Send
              </button>
            )}
          </form>
        </div>
      </div>

      {openPath && (
        <FilePreviewPane sid={sid} apiKey={apiKey} path={openPath} version={fileVersion} onClose={() => setOpenPath(null)} />
      )}

      {sideOpen && !unavailable && (
        <aside class="chat-side">
          <TodoPanel todos={chat.todos} />
          {stopped && (
            <section class="panel">
              <div class="panel-head static">
                <Icon name="folder" size={14} />
                <span class="panel-title">Workspace</span>
              </div>
              <div class="empty small">The session has ended: its container and workspace were removed.</div>
            </section>
          )}
          {apiKey && !unavailable && !stopped && (
            <FilesPanel
              sid={sid}
              apiKey={apiKey}
              live={running}
              refreshSignal={filesTick}
              openPath={openPath}
              onOpen={(p) => {
                setFileVersion("");
                setOpenPath(p);
              }}
              onTree={onTree}
            />
          )}
        </aside>
      )}
    </div>
  );
}

export function goToChat(sid: string) {
  navigate(`/chat/${encodeURIComponent(sid)}`);
}
