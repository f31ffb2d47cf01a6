// Thinking blocks, SDK system notes and errors in the timeline.
import { Code } from "../Code";
import { Icon } from "../Icon";

export function Thinking({ text, streaming }: { text: string; streaming: boolean }) {
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

export const SHOWN_SYSTEM = new Set(["init", "compact_boundary"]);

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
