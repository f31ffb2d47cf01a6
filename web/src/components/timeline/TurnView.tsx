// One turn of the chat: the user's message, the assistant's items (tool calls nest their
// sub-agent's items), and a footer with duration, tokens and cost.
import { memo } from "preact/compat";
import { fmtCost, fmtDuration, fmtTokens } from "../../format";
import type { Item, ToolItem, Turn } from "../../reducer";
import { Icon, Spinner } from "../Icon";
import { Markdown } from "../Markdown";
import { ApprovalCard } from "./ApprovalCard";
import { Elapsed } from "./blocks";
import { ErrorNote, SHOWN_SYSTEM, SystemNote, Thinking } from "./Notes";
import { ToolCall } from "./ToolCall";

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
    case "approval":
      return <ApprovalCard it={it} />;
  }
}

/** Renders the items whose parent is not another tool in `all` (children render nested). */
export function ItemList({ items, all }: { items: Item[]; all: Item[] }) {
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
