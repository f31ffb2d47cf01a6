// A tool call: a header (what, summary, state, time) that opens onto a body fitted to the tool
// (command and output, file content, diff, sub-agent's nested items, todos, or JSON).
import { memo } from "preact/compat";
import { useState } from "preact/hooks";
import { fmtDuration, truncate } from "../../format";
import { languageForPath } from "../../lang";
import type { Item, ToolItem } from "../../reducer";
import { Code } from "../Code";
import { Icon, Spinner } from "../Icon";
import { Markdown } from "../Markdown";
import { DiffView, Elapsed, OutputBlock, TodoMini } from "./blocks";
import { describeTool, outputText, stripLineNumbers } from "./tools";
import { ItemList } from "./TurnView";

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

export const ToolCall = memo(function ToolCall({ item, children }: { item: ToolItem; children: Item[] }) {
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
