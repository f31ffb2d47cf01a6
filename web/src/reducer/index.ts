// Folds the session's event stream into the chat view's state.
// Pure and copy-on-write: apply a batch of events, get a new state; untouched turns and items
// keep their identity (cheap re-renders). One handler per event type, grouped by topic:
// session.ts, turns.ts, text.ts, tools.ts, notes.ts.
import type { AnyEvent, EventType } from "../events.gen";
import type { AgcEvent } from "../types";
import { approvalHandlers } from "./approvals";
import { Draft } from "./draft";
import type { Handler, Handlers } from "./handler";
import { noteHandlers } from "./notes";
import { sessionHandlers } from "./session";
import type { ChatState, StreamMessage } from "./state";
import { textHandlers } from "./text";
import { toolHandlers } from "./tools";
import { turnHandlers } from "./turns";
import { seqOf } from "./wire";

export * from "./state";

export const HANDLERS: Handlers = {
  ...sessionHandlers,
  ...turnHandlers,
  ...textHandlers,
  ...toolHandlers,
  ...noteHandlers,
  ...approvalHandlers,
};

/** Event types the view counts but does not render (a test checks every type is one or the other). */
export const NOT_RENDERED: readonly EventType[] = ["sdk.raw"];

/** Apply a batch of stream messages. Messages whose id was already applied are skipped. */
export function applyMessages(state: ChatState, msgs: StreamMessage[]): ChatState {
  if (msgs.length === 0) return state;
  const d = new Draft(state);
  const s = d.s;
  let changed = false;
  for (const m of msgs) {
    const seq = seqOf(m.id);
    if (seq !== null) {
      if (seq <= s.lastSeq) continue; // already applied: never render twice
      s.lastSeq = seq;
      s.lastId = m.id;
    } else if (m.id) {
      if (m.id === s.lastId) continue;
      s.lastId = m.id;
    }
    const e = m.event;
    if (!e || typeof e !== "object" || typeof e.type !== "string") continue;
    changed = true;
    s.eventCount++;
    const handle = HANDLERS[e.type as EventType] as Handler<EventType> | undefined;
    handle?.(d, e as unknown as AnyEvent);
  }
  if (!changed) {
    // Only duplicates: keep identity so nothing re-renders.
    if (s.lastSeq === state.lastSeq && s.lastId === state.lastId) return state;
    return { ...state, lastSeq: s.lastSeq, lastId: s.lastId };
  }
  return s;
}

/** Parse an SSE `data:` payload into an event (null when it is not one). */
export function parseEventData(data: string, sseType?: string): AgcEvent | null {
  try {
    const v = JSON.parse(data);
    if (v && typeof v === "object") {
      if (typeof v.type !== "string" && sseType) v.type = sseType;
      return v as AgcEvent;
    }
  } catch {
    /* not JSON */
  }
  return null;
}
