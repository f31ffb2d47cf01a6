// The chat timeline: user messages, streaming assistant text, thinking, and tool calls.
import { memo } from "preact/compat";
import { useEffect, useState } from "preact/hooks";
import { fmtCost, fmtDuration, fmtTokens, truncate } from "../format";
import { languageForPath } from "../lang";
import type { Item, ToolItem, Turn } from "../reducer";
import type { Todo } from "../types";
import { Code } from "./Code";
import { Icon, Spinner } from "./Icon";
import { Markdown } from "./Markdown";

/** Tool output (string, content blocks, or object) as text. */
export function outputText(output: unknown): string {
  if (output == null) return "";
  if (typeof output === "string") return output;
  if (Array.isArray(output)) {
    return output
      .map((b: any) => {
        if (typeof b === "string") return b;
        if (b && typeof b === "object") {
          if (typeof b.text === "string") return b.text;
          if (b.type === "image") return "[image]";
        }
        return JSON.stringify(b);
      })
      .join("\n");
  }
  if (typeof output === "object") {
    const o = output as any;
    if (typeof o.stdout === "string" || typeof o.stderr === "string")
      return [o.stdout, o.stderr].filter((x) => typeof x === "string" && x).join("\n");
    if (typeof o.text === "string") return o.text;
    if (typeof o.content === "string") return o.content;
  }
  return JSON.stringify(output, null, 2);
}

/** Strip Read's "   12→" line-number prefixes for display. */
function stripLineNumbers(s: string): string {
  const lines = s.split("\n");
  const re = /^\s*\d+[→\t]/;
  if (lines.filter((l) => l.trim()).every((l) => re.test(l))) return lines.map((l) => l.replace(re, "")).join("\n");
  return s;
}

interface ToolView {
  icon: string;
  label: string;
  summary: string;
  mono: boolean;
  kind: "bash" | "read" | "write" | "edit" | "search" | "web" | "agent" | "todo" | "mcp" | "other";
}

export function describeTool(name: string, input: any): ToolView {
  const i = input ?? {};
  const path = i.file_path ?? i.path ?? i.notebook_path ?? "";
  switch (name) {
    case "Bash":
      return { icon: "terminal", label: "Bash", summary: String(i.command ?? ""), mono: true, kind: "bash" };
    case "BashOutput":
      return { icon: "terminal", label: "Shell output", summary: String(i.bash_id ?? i.shell_id ?? ""), mono: true, kind: "bash" };
    case "KillShell":
    case "KillBash":
      return { icon: "stop", label: "Kill shell", summary: String(i.shell_id ?? i.bash_id ?? ""), mono: true, kind: "bash" };
    case "Read":
      return { icon: "file", label: "Read", summary: String(path), mono: true, kind: "read" };
    case "Write":
      return { icon: "filePlus", label: "Write", summary: String(path), mono: true, kind: "write" };
    case "Edit":
    case "MultiEdit":
    case "NotebookEdit":
      return { icon: "fileEdit", label: name, summary: String(path), mono: true, kind: "edit" };
    case "Glob":
      return { icon: "search", label: "Glob", summary: `${i.pattern ?? ""}${i.path ? `  in ${i.path}` : ""}`, mono: true, kind: "search" };
    case "Grep":
      return {
        icon: "search",
        label: "Grep",
        summary: `${i.pattern ?? ""}${i.glob ? `  (${i.glob})` : ""}${i.path ? `  in ${i.path}` : ""}`,
        mono: true,
        kind: "search",
      };
    case "LS":
      return { icon: "folder", label: "List", summary: String(path), mono: true, kind: "search" };
    case "WebFetch":
      return { icon: "globe", label: "Fetch", summary: String(i.url ?? ""), mono: true, kind: "web" };
    case "WebSearch":
      return { icon: "globe", label: "Web search", summary: String(i.query ?? ""), mono: false, kind: "web" };
    case "Task":
    case "Agent":
      return {
        icon: "bot",
        label: i.subagent_type ? `Agent · ${i.subagent_type}` : "Agent",
        summary: String(i.description ?? ""),
        mono: false,
        kind: "agent",
      };
    case "TodoWrite": {
      const todos: Todo[] = Array.isArray(i.todos) ? i.todos : [];
      const done = todos.filter((t) => t.status === "completed").length;
      return { icon: "list", label: "Todos", summary: `${todos.length} item${todos.length === 1 ? "" : "s"}, ${done} done`, mono: false, kind: "todo" };
    }
    default:
      if (name.startsWith("mcp__")) {
        const [, server, ...rest] = name.split("__");
        return { icon: "plug", label: `${server} › ${rest.join("__")}`, summary: compactJson(i), mono: true, kind: "mcp" };
      }
      return { icon: "wrench", label: name, summary: compactJson(i), mono: true, kind: "other" };
  }
}

function compactJson(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s === "{}" ? "" : truncate(s, 160);
  } catch {
    return "";
  }
}

function OutputBlock({ text, lang, error, label = "Output" }: { text: string; lang?: string | null; error?: boolean; label?: string }) {
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

function DiffView({ oldS, newS }: { oldS: string; newS: string }) {
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

function TodoMini({ todos }: { todos: Todo[] }) {
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

function ToolBody({ item, children }: { item: ToolItem; children: Item[] }) {
  const i = item.input ?? {};
  const out = outputText(item.output);
  const view = describeTool(item.name, i);
  switch (view.kind) {
    case "bash":
      return (
        <>
          {i.description && <div class="tool-desc muted small">{i.description}</div>}
          {item.name === "Bash" && <Code code={`$ ${i.command ?? ""}`} lang="bash" class="bash-cmd" />}
          {item.status === "cancelled" ? (
            <div class="tool-empty muted small">Stopped by the interrupt.</div>
          ) : (
            item.status !== "running" && <OutputBlock text={out} error={item.isError} />
          )}
        </>
      );
    case "read": {
      const lang = languageForPath(String(i.file_path ?? ""));
      return item.status === "running" ? null : <OutputBlock text={item.isError ? out : stripLineNumbers(out)} lang={item.isError ? null : lang} error={item.isError} label="Content" />;
    }
    case "write": {
      const lang = languageForPath(String(i.file_path ?? ""));
      return (
        <>
          {typeof i.content === "string" && <OutputBlock text={i.content} lang={lang} label="Content" />}
          {item.isError && <OutputBlock text={out} error />}
        </>
      );
    }
    case "edit": {
      const edits: { old_string?: string; new_string?: string }[] = Array.isArray(i.edits) ? i.edits : [i];
      return (
        <>
          {edits.map((e, k) =>
            typeof e.old_string === "string" || typeof e.new_string === "string" ? (
              <DiffView key={k} oldS={e.old_string ?? ""} newS={e.new_string ?? ""} />
            ) : null,
          )}
          {i.new_source && <OutputBlock text={String(i.new_source)} label="New source" />}
          {item.isError && <OutputBlock text={out} error />}
        </>
      );
    }
    case "agent":
      return (
        <>
          {i.prompt && (
            <details class="agent-prompt">
              <summary class="small muted">Prompt</summary>
              <pre class="prompt">{String(i.prompt)}</pre>
            </details>
          )}
          {children.length > 0 && (
            <div class="subagent-items" data-testid="subagent-items">
              <ItemList items={children} all={children} />
            </div>
          )}
          {item.status !== "running" &&
            (item.isError ? (
              <OutputBlock text={out} error />
            ) : (
              out && (
                <div class="agent-result">
                  <div class="section-label">Result</div>
                  <Markdown text={out} />
                </div>
              )
            ))}
        </>
      );
    case "todo":
      return <TodoMini todos={Array.isArray(i.todos) ? i.todos : []} />;
    default:
      return (
        <>
          <div class="section-label">Input</div>
          <Code code={JSON.stringify(i, null, 2)} lang="json" />
          {item.status !== "running" && <OutputBlock text={out} error={item.isError} />}
        </>
      );
  }
}

function Elapsed({ since }: { since?: number }) {
  const [, set] = useState(0);
  useEffect(() => {
    const t = setInterval(() => set((x) => x + 1), 1000);
    return () => clearInterval(t);
  }, []);
  if (!since) return null;
  return <span class="elapsed">{fmtDuration(Math.max(0, Date.now() - since * 1000))}</span>;
}

const ToolCall = memo(function ToolCall({ item, children }: { item: ToolItem; children: Item[] }) {
  const view = describeTool(item.name, item.input);
  const failed = item.status === "error";
  const defaultOpen = failed || view.kind === "bash" || view.kind === "agent";
  const [open, setOpen] = useState<boolean | null>(null);
  const isOpen = open ?? defaultOpen;
  const dur = item.startedTs && item.completedTs ? (item.completedTs - item.startedTs) * 1000 : null;
  return (
    <div
      class={`timeline-item tool tool-${view.kind} status-${item.status} ${failed ? "is-error" : ""}`}
      data-testid="timeline-item"
      data-kind="tool"
      data-tool={item.name}
      data-status={item.status}
      data-tool-id={item.id}
    >
      <button class="tool-head" onClick={() => setOpen(!isOpen)} aria-expanded={isOpen}>
        <span class="tool-icon">
          <Icon name={view.icon} size={14} />
        </span>
        <span class="tool-label">{view.label}</span>
        <span class={`tool-summary ${view.mono ? "mono" : ""}`} title={view.summary}>
          {truncate(view.summary.split("\n")[0], 200)}
        </span>
        <span class="tool-state">
          {item.status === "running" ? (
            <>
              <Elapsed since={item.startedTs} /> <Spinner size={12} />
            </>
          ) : item.status === "error" ? (
            <span class="err-text" title="The tool reported an error">
              <Icon name="alert" size={13} /> error
            </span>
          ) : item.status === "cancelled" ? (
            <span class="muted">cancelled</span>
          ) : (
            <>
              {dur != null && <span class="elapsed">{fmtDuration(dur)}</span>}
              <Icon name="check" size={13} class="ok-text" />
            </>
          )}
          <Icon name={isOpen ? "chevronDown" : "chevron"} size={13} class="muted" />
        </span>
      </button>
      {isOpen && (
        <div class="tool-body">
          <ToolBody item={item} children={children} />
        </div>
      )}
    </div>
  );
});

function Thinking({ text, streaming }: { text: string; streaming: boolean }) {
  const words = text.trim() ? text.trim().split(/\s+/).length : 0;
  return (
    <details class="timeline-item thinking" data-testid="timeline-item" data-kind="thinking">
      <summary>
        <Icon name="brain" size={13} /> {streaming ? "Thinking…" : "Thought"} <span class="muted small">{words} words</span>
      </summary>
      <div class="thinking-body">{text}</div>
    </details>
  );
}

const SHOWN_SYSTEM = new Set(["init", "compact_boundary"]);

export function SystemNote({ subtype, data }: { subtype: string; data: any }) {
  let summary = subtype;
  if (subtype === "init" && data && typeof data === "object") {
    const tools = Array.isArray(data.tools) ? data.tools.length : null;
    summary = `Session initialised${data.model ? ` · ${data.model}` : ""}${tools != null ? ` · ${tools} tools` : ""}`;
  }
  return (
    <details class="timeline-item system" data-testid="timeline-item" data-kind="system">
      <summary>
        <Icon name="cpu" size={12} /> {summary}
      </summary>
      <Code code={JSON.stringify(data, null, 2) ?? ""} lang="json" />
    </details>
  );
}

export function ErrorNote({ code, message, detail, fatal }: { code: string; message: string; detail?: string; fatal: boolean }) {
  return (
    <div class="timeline-item error-item" data-testid="timeline-item" data-kind="error" role="alert">
      <Icon name="alert" size={15} />
      <div>
        <div class="error-title">
          {fatal ? "Fatal error" : "Error"}: {message} <code class="muted">{code}</code>
        </div>
        {detail && <div class="small error-detail">{detail}</div>}
      </div>
    </div>
  );
}

function ItemView({ it, all }: { it: Item; all: Item[] }) {
  switch (it.kind) {
    case "text":
      return (
        <div class={`timeline-item assistant-text ${it.streaming ? "streaming" : ""}`} data-testid="timeline-item" data-kind="text">
          <Markdown text={it.text} />
          {it.streaming && <span class="caret" aria-hidden="true" />}
        </div>
      );
    case "thinking":
      return <Thinking text={it.text} streaming={it.streaming} />;
    case "tool":
      return <ToolCall item={it} children={all.filter((c) => c.kind !== "error" && c.kind !== "system" && (c as any).parent === it.id)} />;
    case "error":
      return <ErrorNote code={it.code} message={it.message} detail={it.detail} fatal={it.fatal} />;
    case "system":
      // Only notes a person cares about; the SDK's frequent "status" pings stay out of the way.
      return SHOWN_SYSTEM.has(it.subtype) ? <SystemNote subtype={it.subtype} data={it.data} /> : null;
  }
}

/** Renders the items whose parent is not another tool in `all` (children render nested). */
function ItemList({ items, all }: { items: Item[]; all: Item[] }) {
  return (
    <>
      {items.map((it) => (
        <ItemView key={it.key} it={it} all={all} />
      ))}
    </>
  );
}

function TurnFooter({ turn, live }: { turn: Turn; live: boolean }) {
  const c = turn.completed;
  if (!c) {
    if (!live) return null;
    return (
      <div class="turn-footer running" data-testid="turn-footer" data-state="running">
        <Spinner size={12} /> Working… <Elapsed since={turn.startedTs} />
      </div>
    );
  }
  const u = c.usage ?? {};
  const input = (u.input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0);
  const state = c.interrupted ? "interrupted" : c.is_error ? "error" : "done";
  return (
    <div class={`turn-footer ${state}`} data-testid="turn-footer" data-state={state}>
      {state === "interrupted" ? (
        <span class="warn-text">
          <Icon name="stop" size={11} /> Interrupted
        </span>
      ) : state === "error" ? (
        <span class="err-text">
          <Icon name="alert" size={12} /> {c.subtype ?? "error"}
        </span>
      ) : (
        <Icon name="check" size={12} class="ok-text" />
      )}
      <span title="Duration">
        <Icon name="clock" size={11} /> {fmtDuration(c.duration_ms)}
      </span>
      <span title={`Input ${input} tokens (cache read ${u.cache_read_input_tokens ?? 0}, cache write ${u.cache_creation_input_tokens ?? 0}); output ${u.output_tokens ?? 0}`}>
        {fmtTokens(input)} in · {fmtTokens(u.output_tokens)} out
      </span>
      <span title="Cost">{fmtCost(c.cost_usd)}</span>
      {c.num_turns != null && <span title="Model round trips">{c.num_turns} steps</span>}
      {c.stop_reason && c.stop_reason !== "end_turn" && !c.interrupted && <span class="muted">{c.stop_reason}</span>}
    </div>
  );
}

export const TurnView = memo(function TurnView({ turn, live }: { turn: Turn; live: boolean }) {
  const toolIds = new Set(turn.items.filter((i) => i.kind === "tool").map((i) => (i as ToolItem).id));
  const top = turn.items.filter((i) => {
    const p = (i as any).parent as string | null | undefined;
    return !p || !toolIds.has(p);
  });
  return (
    <div class="turn" data-testid="turn" data-turn-id={turn.id ?? ""}>
      {turn.userText != null && (
        <div class="user-msg" data-testid="user-message">
          <div class="user-bubble">{turn.userText}</div>
        </div>
      )}
      <div class="assistant">
        <ItemList items={top} all={turn.items} />
        <TurnFooter turn={turn} live={live} />
      </div>
    </div>
  );
});
