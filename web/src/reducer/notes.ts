// Errors, refusals and SDK system messages: in their turn when they have one, else at session level.
import type { Handlers } from "./handler";
import type { ErrorItem, SystemItem } from "./state";
import { num, str } from "./wire";

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
  // The sandbox's egress proxy refused a destination: the tool saw a proxy error; say why.
  "egress.denied": (d, e) => {
    const port = num(e.port);
    const policy = str(e.policy);
    const it: ErrorItem = {
      kind: "error",
      key: d.key("e"),
      code: "egress_denied",
      message: `network access to ${str(e.host) ?? "?"}${port !== undefined ? `:${port}` : ""} was blocked`,
      detail: [str(e.reason), policy ? `egress policy: ${policy}` : null].filter(Boolean).join("; ") || undefined,
      fatal: false,
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
