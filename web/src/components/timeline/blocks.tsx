// Small pieces of tool bodies and footers: long output, diffs, todo lists, a running clock.
import { useEffect, useState } from "preact/hooks";
import { fmtDuration } from "../../format";
import type { Todo } from "../../types";
import { Code } from "../Code";
import { Icon } from "../Icon";

export function OutputBlock({ text, lang, error, label = "Output" }: { text: string; lang?: string | null; error?: boolean; label?: string }) {
  const [full, setFull] = useState(false);
  const lines = text.split("\n");
  const LIMIT = 40;
  const long = lines.length > LIMIT;
  const shown = long && !full ? lines.slice(0, LIMIT).join("\n") : text;
  if (!text.trim()) return <div class="tool-empty muted small">{label}: (empty)</div>;
  return (
    <div class={`tool-output ${error ? "is-error" : ""}`} data-testid="tool-output">
      {lang ? <Code code={shown} lang={lang} /> : <pre>{shown}</pre>}
      {long && (
        <button class="link-btn small" onClick={() => setFull(!full)}>
          {full ? "Show less" : `Show all ${lines.length} lines`}
        </button>
      )}
    </div>
  );
}

export function DiffView({ oldS, newS }: { oldS: string; newS: string }) {
  return (
    <div class="diff">
      {oldS.split("\n").map((l, i) => (
        <div class="diff-del" key={`d${i}`}>
          <span class="diff-sign">-</span>
          {l}
        </div>
      ))}
      {newS.split("\n").map((l, i) => (
        <div class="diff-add" key={`a${i}`}>
          <span class="diff-sign">+</span>
          {l}
        </div>
      ))}
    </div>
  );
}

export function TodoMini({ todos }: { todos: Todo[] }) {
  return (
    <ul class="todo-mini">
      {todos.map((t, i) => (
        <li key={i} class={`todo-${t.status}`}>
          <TodoMark status={t.status} />
          <span>{t.content}</span>
        </li>
      ))}
    </ul>
  );
}

export function TodoMark({ status }: { status: string }) {
  if (status === "completed")
    return (
      <span class="todo-mark done">
        <Icon name="check" size={11} />
      </span>
    );
  if (status === "in_progress") return <span class="todo-mark active" />;
  return <span class="todo-mark" />;
}

export function Elapsed({ since }: { since?: number }) {
  const [, set] = useState(0);
  useEffect(() => {
    const t = setInterval(() => set((x) => x + 1), 1000);
    return () => clearInterval(t);
  }, []);
  if (!since) return null;
  return <span class="elapsed">{fmtDuration(Math.max(0, Date.now() - since * 1000))}</span>;
}
