// /chat/<session_id>: the conversation (from the session's event stream), the composer,
// todos and the workspace's files. The pieces live in ./chat/ and ../hooks/.
import { useState } from "preact/hooks";
import { api } from "../api";
import { FilePreviewPane } from "../components/files/FilePreviewPane";
import { toast } from "../components/ui";
import { humanize } from "../errors";
import { useChatStream } from "../hooks/useChatStream";
import { useFalling } from "../hooks/useFalling";
import { useSessionInfo } from "../hooks/useSessionInfo";
import { useStickToBottom } from "../hooks/useStickToBottom";
import { isRunning, sessionGrants } from "../reducer";
import { navigate } from "../router";
import { keyForSession } from "../store";
import type { FileTree } from "../types";
import { ChatBanners } from "./chat/ChatBanners";
import { ChatHeader } from "./chat/ChatHeader";
import { ChatSide } from "./chat/ChatSide";
import { ChatTimeline } from "./chat/ChatTimeline";
import { Composer } from "./chat/Composer";
import { chatSummary, connectionProblem, findNode, TERMINAL } from "./chat/logic";
import { useTurnControl } from "./chat/useTurnControl";

export function ChatPage({ sid }: { sid: string }) {
  // Bumped to start over (a new key was entered, or "Try again").
  const [generation, setGeneration] = useState(0);
  const apiKey = keyForSession(sid) + "" /* re-read each render */;
  const session = useSessionInfo(sid, apiKey, generation);
  const { info } = session;
  const { chat, stateRef, conn, reconnectNow } = useChatStream(sid, apiKey, generation, () => TERMINAL.has(session.statusRef.current ?? ""));
  const [openPath, setOpenPath] = useState<string | null>(null);
  const [fileVersion, setFileVersion] = useState("");
  const [filesTick, setFilesTick] = useState(0);
  const [sideOpen, setSideOpen] = useState(() => window.innerWidth > 760);

  const running = isRunning(chat);
  const stopped = !!chat.stopped || info?.status === "stopped" || info?.status === "failed";
  const ctl = useTurnControl({ sid, apiKey, chat, stateRef, running, stopped, onSend: () => scroll.follow() });
  const scroll = useStickToBottom<HTMLDivElement>([chat, ctl.pending]);

  // A turn finished: refresh the files once.
  useFalling(running, () => setFilesTick((x) => x + 1));

  const endSession = async (): Promise<boolean> => {
    try {
      await api.stopSession(apiKey, sid);
      toast("Session stopped");
      return true;
    } catch (e) {
      ctl.setSendErr(humanize(e, "session"));
      return false;
    }
  };

  // The open file's version follows the tree, so its preview reloads when the file changes.
  const onTree = (t: FileTree) => {
    if (!openPath) return;
    const n = findNode(t.root, openPath);
    if (n) setFileVersion(`${n.modified ?? ""}:${n.size ?? ""}`);
  };

  const summary = chatSummary(chat, info);
  const problem = connectionProblem(conn);
  const { unavailable } = problem;
  const restart = () => setGeneration((g) => g + 1);

  return (
    <div class={`chat-layout ${sideOpen && !unavailable ? "side-open" : "side-closed"} ${openPath ? "previewing" : ""}`}>
      <div class="chat-main">
        <ChatHeader
          sid={sid}
          summary={summary}
          info={info}
          running={running}
          conn={conn}
          onReconnect={reconnectNow}
          canEnd={!stopped && !unavailable}
          onEnd={endSession}
          sideOpen={sideOpen}
          onToggleSide={() => setSideOpen(!sideOpen)}
        />
        <div class="chat-scroll" ref={scroll.ref} onScroll={scroll.onScroll} data-testid="timeline">
          <div class="chat-inner">
            <ChatBanners
              sid={sid}
              conn={conn}
              problem={problem}
              chat={chat}
              info={info}
              infoErr={session.error}
              onDismissInfoErr={session.clearError}
              onReconnect={reconnectNow}
              onRestart={restart}
            />
            <ChatTimeline
              chat={chat}
              pending={ctl.pending}
              running={running}
              stopped={stopped}
              unavailable={unavailable}
              conn={conn}
              status={summary.status}
              title={summary.title}
            />
          </div>
        </div>
        <Composer ctl={ctl} running={running} stopped={stopped} unavailable={unavailable} />
      </div>

      {openPath && <FilePreviewPane sid={sid} apiKey={apiKey} path={openPath} version={fileVersion} onClose={() => setOpenPath(null)} />}

      {sideOpen && !unavailable && (
        <ChatSide
          sid={sid}
          apiKey={apiKey}
          todos={chat.todos}
          grants={sessionGrants(chat)}
          stopped={stopped}
          running={running}
          filesTick={filesTick}
          openPath={openPath}
          onOpen={(p) => {
            setFileVersion("");
            setOpenPath(p);
          }}
          onTree={onTree}
        />
      )}
    </div>
  );
}

export function goToChat(sid: string) {
  navigate(`/chat/${encodeURIComponent(sid)}`);
}
