// Sending a message, the optimistic "Sending…" turn, interrupting (Stop / Esc), and their errors.
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { humanize, type HumanError } from "../../errors";
import { useFalling } from "../../hooks/useFalling";
import type { ChatState } from "../../reducer";
import { sendFailureIsBenign } from "./logic";

/** A message sent whose turn the stream does not show yet (`turns`: the count when sent). */
export interface Pending {
  text: string;
  turns: number;
}

export interface TurnControl {
  input: string;
  setInput: (v: string) => void;
  pending: Pending | null;
  stopping: boolean;
  sendErr: HumanError | null;
  setSendErr: (e: HumanError | null) => void;
  send: () => Promise<void>;
  interrupt: () => Promise<void>;
}

export function useTurnControl({
  sid,
  apiKey,
  chat,
  stateRef,
  running,
  stopped,
  onSend,
}: {
  sid: string;
  apiKey: string;
  chat: ChatState;
  stateRef: { readonly current: ChatState };
  running: boolean;
  stopped: boolean;
  /** Called as a message goes out (e.g. follow the timeline's bottom again). */
  onSend: () => void;
}): TurnControl {
  const [input, setInput] = useState("");
  const [pending, setPending] = useState<Pending | null>(null);
  const [stopping, setStopping] = useState(false);
  const [sendErr, setSendErr] = useState<HumanError | null>(null);

  // Clear the optimistic user message once the stream shows the turn.
  useEffect(() => {
    if (pending && chat.turns.length > pending.turns) setPending(null);
  }, [chat.turns.length, pending]);

  useFalling(running, () => setStopping(false));

  const send = async () => {
    const text = input.trim();
    if (!text || running || stopped || pending) return;
    setSendErr(null);
    const baseTurns = stateRef.current.turns.length;
    setPending({ text, turns: baseTurns });
    setInput("");
    onSend();
    try {
      // The reply body is not needed: the events stream shows everything.
      await api.chat(apiKey, sid, text);
    } catch (e) {
      const h = humanize(e, "chat");
      if (sendFailureIsBenign(h, baseTurns, stateRef.current.turns.length)) return;
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

  // Esc interrupts the running turn (like the Stop button), unless a dialog is open.
  useEffect(() => {
    if (!running) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape" && !e.defaultPrevented && !document.querySelector(".modal")) void interrupt();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [running]);

  return { input, setInput, pending, stopping, sendErr, setSendErr, send, interrupt };
}
