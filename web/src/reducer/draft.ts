// A copy-on-write working copy of the chat state for one batch of events: handlers mutate the
// draft, and only the turns and lists they touch are copied, so untouched ones keep their
// identity (cheap re-renders).
import type { ChatState, Item, Turn } from "./state";
import { str } from "./wire";

const CANCELLED_OUTPUT = /doesn't want to proceed|was stopped while running|interrupted by user|\[Request interrupted/i;

export class Draft {
  readonly s: ChatState;
  private readonly touched = new Set<number>();
  private sessionItemsCopied = false;

  constructor(state: ChatState) {
    this.s = { ...state, turns: state.turns.slice() };
  }

  /** A key unique within the session's view (for list rendering). */
  key(prefix: string): string {
    return `${prefix}${this.s.nextKey++}`;
  }

  /** The turn at index i, copied once per batch so it can be mutated. */
  turnAt(i: number): Turn {
    const d = this.s;
    if (!this.touched.has(i)) {
      d.turns[i] = { ...d.turns[i], items: d.turns[i].items.slice() };
      this.touched.add(i);
    }
    return d.turns[i];
  }

  /** Append a turn; returns its index. */
  newTurn(id: string | null, userText: string | null): number {
    const d = this.s;
    d.turns.push({ key: this.key("t"), id, userText, started: false, items: [], completed: null });
    const i = d.turns.length - 1;
    this.touched.add(i);
    return i;
  }

  findTurnIdx(id: string): number {
    const turns = this.s.turns;
    for (let i = turns.length - 1; i >= 0; i--) if (turns[i].id === id) return i;
    return -1;
  }

  /** The turn an event belongs to; creates one when `create` (null: session-level). */
  turnFor(e: { turn_id?: unknown }, create: boolean): Turn | null {
    const turns = this.s.turns;
    const tid = str(e.turn_id);
    const last = turns.length - 1;
    if (tid) {
      const i = this.findTurnIdx(tid);
      if (i >= 0) return this.turnAt(i);
      // A turn opened by a user.message without a turn id adopts the first id seen.
      if (last >= 0 && turns[last].id === null && !turns[last].completed) {
        const t = this.turnAt(last);
        t.id = tid;
        return t;
      }
      return create ? this.turnAt(this.newTurn(tid, null)) : null;
    }
    if (last >= 0 && !turns[last].completed) return this.turnAt(last);
    return create ? this.turnAt(this.newTurn(null, null)) : null;
  }

  /** An error or note that belongs to no turn. */
  pushSessionItem(it: Item): void {
    if (!this.sessionItemsCopied) {
      this.s.sessionItems = this.s.sessionItems.slice();
      this.sessionItemsCopied = true;
    }
    this.s.sessionItems.push(it);
  }

  /** Where a tool call is: its (copied) turn and its index in that turn's items. */
  findTool(toolId: string): [Turn, number] | null {
    const turns = this.s.turns;
    for (let i = turns.length - 1; i >= 0; i--) {
      const items = turns[i].items;
      for (let j = items.length - 1; j >= 0; j--) {
        const it = items[j];
        if (it.kind === "tool" && it.id === toolId) return [this.turnAt(i), j];
      }
    }
    return null;
  }

  /** A turn ended: nothing in it streams or runs any more. */
  finalizeTurn(t: Turn, interrupted: boolean): void {
    t.items = t.items.map((it) => {
      if ((it.kind === "text" || it.kind === "thinking") && it.streaming) return { ...it, streaming: false };
      if (it.kind === "tool" && it.status === "running") return { ...it, status: interrupted ? "cancelled" : "done" };
      // A tool the user's interrupt stopped is cancelled, not failed.
      if (interrupted && it.kind === "tool" && it.status === "error" && CANCELLED_OUTPUT.test(String(it.output ?? "")))
        return { ...it, status: "cancelled" };
      return it;
    });
  }
}
