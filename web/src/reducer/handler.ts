// The shape of a per-event-type handler: it folds one event into the batch's draft.
import type { EventOf, EventType } from "../events.gen";
import type { Draft } from "./draft";

export type Handler<T extends EventType> = (d: Draft, e: EventOf<T>) => void;

/** Handlers by event type; a type without one (sdk.raw, newer types) is counted, not rendered. */
export type Handlers = { [T in EventType]?: Handler<T> };
