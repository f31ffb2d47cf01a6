// Session-wide events: readiness, lifecycle status, the end, and the todo list.
import type { Todo } from "../types";
import type { Handlers } from "./handler";
import { str } from "./wire";

export const sessionHandlers: Handlers = {
  "session.ready": (d, e) => {
    const s = d.s;
    s.ready = true;
    s.configId = str(e.config_id) || s.configId;
    s.model = str(e.model) || s.model;
    if (!s.status || s.status === "starting") s.status = "running";
  },
  "session.status": (d, e) => {
    d.s.status = str(e.status) ?? d.s.status;
    d.s.statusDetail = str(e.detail);
  },
  "session.stopped": (d, e) => {
    d.s.stopped = { reason: str(e.reason) };
    d.s.status = "stopped";
    for (let i = 0; i < d.s.turns.length; i++) {
      if (!d.s.turns[i].completed) d.finalizeTurn(d.turnAt(i), true);
    }
  },
  "todo.updated": (d, e) => {
    d.s.todos = Array.isArray(e.todos) ? (e.todos as unknown as Todo[]) : [];
  },
};
