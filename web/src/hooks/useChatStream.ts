// The session's event stream folded into chat state: the single source of truth for the
// conversation. Restarts when the session, the key or `generation` changes.
import { useEffect, useRef, useState } from "preact/hooks";
import { EventStream, type ConnState } from "../eventStream";
import { applyMessages, initialChatState, type ChatState, type StreamMessage } from "../reducer";

export interface ChatStream {
  chat: ChatState;
  /** The latest state, readable from callbacks without re-rendering. */
  stateRef: { readonly current: ChatState };
  conn: ConnState;
  /** Skip the backoff wait and reconnect at once. */
  reconnectNow: () => void;
}

export function useChatStream(sid: string, apiKey: string, generation: number, isFinished: () => boolean): ChatStream {
  const stateRef = useRef<ChatState>(initialChatState());
  const [chat, setChat] = useState<ChatState>(stateRef.current);
  const [conn, setConn] = useState<ConnState>({ phase: "connecting", attempt: 0 });
  const streamRef = useRef<EventStream | null>(null);
  const finished = useRef(isFinished);
  finished.current = isFinished;

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
      isFinished: () => !!stateRef.current.stopped || finished.current(),
    });
    streamRef.current = es;
    es.start();
    return () => es.stop();
  }, [sid, apiKey, generation]);

  return { chat, stateRef, conn, reconnectNow: () => streamRef.current?.reconnectNow() };
}
