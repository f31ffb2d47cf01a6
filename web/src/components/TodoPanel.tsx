import { useState } from "preact/hooks";
import type { Todo } from "../types";
import { Icon } from "./Icon";
import { TodoMark } from "./timeline/blocks";

export function todoSummary(todos: Todo[]) {
  const done = todos.filter((t) => t.status === "completed").length;
  const active = todos.filter((t) => t.status === "in_progress").length;
  return { done, active, pending: todos.length - done - active, total: todos.length };
}

export function TodoPanel({ todos }: { todos: Todo[] | null }) {
  const [open, setOpen] = useState(true);
  if (!todos || todos.length === 0) return null;
  const s = todoSummary(todos);
  const current = todos.find((t) => t.status === "in_progress");
  return (
    <section class={`panel todo-panel ${open ? "open" : "closed"}`} data-testid="todo-panel" data-open={open ? "true" : "false"}>
      <button class="panel-head" onClick={() => setOpen(!open)} aria-expanded={open} data-testid="todo-toggle">
        <Icon name="list" size={14} />
        <span class="panel-title">Todos</span>
        <span class="todo-summary" data-testid="todo-summary">
          {s.done}/{s.total} done{s.active ? ` · ${s.active} in progress` : ""}
        </span>
        <Icon name={open ? "chevronDown" : "chevron"} size={13} class="muted" />
      </button>
      <div class="todo-progress" aria-hidden="true">
        <div class="todo-progress-done" style={{ width: `${(s.done / s.total) * 100}%` }} />
        <div class="todo-progress-active" style={{ width: `${(s.active / s.total) * 100}%` }} />
      </div>
      {!open && current && <div class="todo-current small">{current.active_form || current.activeForm || current.content}</div>}
      {open && (
        <ul class="todo-list">
          {todos.map((t, i) => (
            <li key={i} class={`todo todo-${t.status}`} data-testid="todo-item" data-status={t.status}>
              <TodoMark status={t.status} />
              <span>{t.status === "in_progress" ? t.active_form || t.activeForm || t.content : t.content}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
