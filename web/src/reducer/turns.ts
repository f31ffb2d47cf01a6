// A turn's frame: the user's message opens it, turn.started marks the runner on it,
// turn.completed closes it and adds its usage to the session totals.
import type { Usage } from "../types";
import type { Handlers } from "./handler";
import { num, str, tsOf } from "./wire";

export const turnHandlers: Handlers = {
  "user.message": (d, e) => {
    const tid = str(e.turn_id);
    const text = str(e.text) ?? "";
    if (tid) {
      const i = d.findTurnIdx(tid);
      if (i >= 0) {
        d.turnAt(i).userText = text;
        return;
      }
    }
    d.newTurn(tid, text);
  },
  "turn.started": (d, e) => {
    const t = d.turnFor(e, true)!;
    t.started = true;
    t.startedTs = tsOf(e);
  },
  "turn.completed": (d, e) => {
    const t = d.turnFor(e, true)!;
    const usage = (e.usage ?? null) as Usage | null;
    t.completed = {
      stop_reason: str(e.stop_reason),
      subtype: str(e.subtype),
      is_error: !!e.is_error,
      interrupted: !!e.interrupted,
      duration_ms: num(e.duration_ms) ?? null,
      num_turns: num(e.num_turns) ?? null,
      usage,
      cost_usd: num(e.cost_usd) ?? null,
      result: str(e.result),
    };
    d.finalizeTurn(t, !!e.interrupted);
    const totals = d.s.totals;
    d.s.totals = {
      input:
        totals.input +
        (usage?.input_tokens ?? 0) +
        (usage?.cache_creation_input_tokens ?? 0) +
        (usage?.cache_read_input_tokens ?? 0),
      output: totals.output + (usage?.output_tokens ?? 0),
      cost: totals.cost + (num(e.cost_usd) ?? 0),
      turns: totals.turns + 1,
    };
  },
};
