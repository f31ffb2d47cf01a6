// Errors and SDK system messages: in their turn when they have one, else at session level.
import type { Handlers } from "./handler";
import type { ErrorItem, SystemItem } from "./state";
import { str } from "./wire";

export const noteHandlers: Handlers = {
  error: (d, e) => {
    const it: ErrorItem = {
      kind: "error",
      key: d.key("e"),
      code: str(e.code) ?? "error",
      message: str(e.message) ?? "error",
      detail: str(e.detail) ?? undefined,
      fatal: !!e.fatal,
    };
    const t = d.turnFor(e, false);
    if (t) t.items.push(it);
    else d.pushSessionItem(it);
  },
  system: (d, e) => {
    const subtype = str(e.subtype) ?? "system";
    // The SDK repeats "init" at every query: one note at the top is enough.
    if (subtype === "init") {
      if (!d.s.sessionItems.some((x) => x.kind === "system" && x.subtype === "init"))
        d.pushSessionItem({ kind: "system", key: d.key("s"), subtype, data: e.data });
      return;
    }
    const it: SystemItem = { kind: "system", key: d.key("s"), subtype, data: e.data };
    const t = d.turnFor(e, false);
    if (t) t.items.push(it);
    else d.pushSessionItem(it);
  },
};
