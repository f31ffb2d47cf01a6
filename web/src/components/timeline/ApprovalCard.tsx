// A tool call waiting for a person: the tool and its input, why it asks, and the answers
// (Allow, Allow for this session, Deny with a comment, edit the input then allow). Once
// resolved it shows who decided what.
import { useState } from "preact/hooks";
import { api, type ApprovalAnswer } from "../../api";
import { humanize } from "../../errors";
import type { ApprovalItem } from "../../reducer";
import { keyForSession } from "../../store";
import { Code } from "../Code";
import { Icon, Spinner } from "../Icon";

const OUTCOME: Record<Exclude<ApprovalItem["state"], "pending">, string> = {
  allowed: "Allowed",
  denied: "Denied",
  timeout: "Denied: nobody answered in time",
  cancelled: "Cancelled with the turn",
};

function pretty(v: unknown): string {
  try {
    return JSON.stringify(v ?? {}, null, 2);
  } catch {
    return String(v);
  }
}

function Decided({ it }: { it: ApprovalItem }) {
  const who = it.byName ? `${it.byName}${it.by ? ` (${it.by})` : ""}` : it.by;
  const text = it.state === "pending" ? "" : OUTCOME[it.state];
  return (
    <div class="approval-outcome" data-testid="approval-outcome">
      <Icon name={it.state === "allowed" ? "check" : "stop"} size={12} class={it.state === "allowed" ? "ok-text" : "err-text"} />
      {text}
      {who && (it.state === "allowed" || it.state === "denied") ? ` by ${who}` : ""}
      {it.state === "allowed" && it.scope === "session" ? " for the rest of the session" : ""}
      {it.edited ? " (input edited)" : ""}
      {it.state === "denied" && it.message ? <span class="muted">: {it.message}</span> : null}
    </div>
  );
}

export function ApprovalCard({ it }: { it: ApprovalItem }) {
  const [mode, setMode] = useState<"ask" | "deny" | "edit">("ask");
  const [comment, setComment] = useState("");
  const [edited, setEdited] = useState(() => pretty(it.input));
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  const pending = it.state === "pending";

  const send = async (answer: ApprovalAnswer) => {
    setBusy(true);
    setErr(null);
    try {
      await api.answerApproval(keyForSession(it.sessionId), it.sessionId, it.requestId, answer);
    } catch (e) {
      const h = humanize(e, "session");
      setErr(h.detail ? `${h.title}: ${h.detail}` : h.title);
    } finally {
      setBusy(false);
    }
  };
  const allowEdited = () => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(edited);
    } catch (e) {
      setErr(`The input is not valid JSON: ${(e as Error).message}`);
      return;
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      setErr("The input must be a JSON object");
      return;
    }
    void send({ decision: "allow", updated_input: parsed as Record<string, unknown> });
  };

  return (
    <div
      class={`timeline-item approval-card approval-${it.state}`}
      data-testid="approval-card"
      data-kind="approval"
      data-state={it.state}
      data-request-id={it.requestId}
      role={pending ? "alertdialog" : undefined}
      aria-label={pending ? `${it.tool} needs your approval` : undefined}
    >
      <div class="approval-head">
        <Icon name="alert" size={13} class="warn-text" />
        <span class="strong">{pending ? "Approval needed:" : "Approval:"}</span> <code class="tool-name">{it.tool}</code>
        {it.reason && <span class="muted small"> — {it.reason}</span>}
      </div>
      {mode === "edit" && pending ? (
        <textarea
          class="approval-edit mono"
          data-testid="approval-edit-input"
          rows={Math.min(14, edited.split("\n").length + 1)}
          value={edited}
          onInput={(e) => setEdited((e.target as HTMLTextAreaElement).value)}
          spellcheck={false}
        />
      ) : (
        <Code code={pretty(it.input)} lang="json" testid="approval-input" />
      )}
      {pending ? (
        <>
          {mode === "deny" && (
            <textarea
              class="approval-comment"
              data-testid="approval-comment"
              placeholder="Why not? The agent reads this."
              rows={2}
              value={comment}
              onInput={(e) => setComment((e.target as HTMLTextAreaElement).value)}
            />
          )}
          <div class="approval-actions">
            {mode === "ask" && (
              <>
                <button class="btn primary" data-testid="approval-allow" disabled={busy} onClick={() => send({ decision: "allow" })}>
                  Allow
                </button>
                <button class="btn" data-testid="approval-allow-session" disabled={busy} onClick={() => send({ decision: "allow", scope: "session" })} title={`Allow ${it.tool} without asking for the rest of this session`}>
                  Allow for this session
                </button>
                <button class="btn" data-testid="approval-edit" disabled={busy} onClick={() => setMode("edit")}>
                  Edit input…
                </button>
                <button class="btn danger" data-testid="approval-deny" disabled={busy} onClick={() => setMode("deny")}>
                  Deny…
                </button>
              </>
            )}
            {mode === "deny" && (
              <>
                <button class="btn danger" data-testid="approval-deny-confirm" disabled={busy} onClick={() => send({ decision: "deny", message: comment.trim() || undefined })}>
                  Deny
                </button>
                <button class="btn" disabled={busy} onClick={() => setMode("ask")}>
                  Back
                </button>
              </>
            )}
            {mode === "edit" && (
              <>
                <button class="btn primary" data-testid="approval-allow-edited" disabled={busy} onClick={allowEdited}>
                  Allow with this input
                </button>
                <button class="btn" disabled={busy} onClick={() => setMode("ask")}>
                  Back
                </button>
              </>
            )}
            {busy && <Spinner size={12} />}
          </div>
          {err && (
            <div class="err-text small" role="alert" data-testid="approval-error">
              {err}
            </div>
          )}
        </>
      ) : (
        <Decided it={it} />
      )}
    </div>
  );
}
