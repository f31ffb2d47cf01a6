// Assistant text and thinking: deltas stream into an item, the complete block replaces them.
import type { Handlers } from "./handler";
import type { TextItem, ThinkingItem } from "./state";
import { num, str } from "./wire";

export const textHandlers: Handlers = {
  "text.delta": (d, e) => {
    const t = d.turnFor(e, true)!;
    const parent = str(e.parent_tool_use_id);
    const idx = num(e.index) ?? null;
    const text = str(e.text) ?? "";
    let j = -1;
    for (let k = t.items.length - 1; k >= 0; k--) {
      const it = t.items[k];
      if (it.kind === "text" && it.streaming && it.parent === parent && it.index === idx) {
        j = k;
        break;
      }
    }
    if (j >= 0) {
      const it = t.items[j] as TextItem;
      t.items[j] = { ...it, text: it.text + text };
    } else {
      t.items.push({ kind: "text", key: d.key("x"), text, streaming: true, index: idx, parent });
    }
  },
  message: (d, e) => {
    const t = d.turnFor(e, true)!;
    const parent = str(e.parent_tool_use_id);
    const text = str(e.text) ?? "";
    const model = str(e.model) ?? undefined;
    // The complete block replaces the deltas of the oldest block still streaming.
    const j = t.items.findIndex((it) => it.kind === "text" && it.streaming && it.parent === parent);
    if (j >= 0) {
      t.items[j] = { ...(t.items[j] as TextItem), text, streaming: false, model };
    } else {
      t.items.push({ kind: "text", key: d.key("x"), text, streaming: false, index: null, parent, model });
    }
  },
  "thinking.delta": (d, e) => {
    const t = d.turnFor(e, true)!;
    const parent = str(e.parent_tool_use_id);
    const text = str(e.text) ?? "";
    let j = -1;
    for (let k = t.items.length - 1; k >= 0; k--) {
      const it = t.items[k];
      if (it.kind === "thinking" && it.streaming && it.parent === parent) {
        j = k;
        break;
      }
    }
    if (j >= 0) {
      const it = t.items[j] as ThinkingItem;
      t.items[j] = { ...it, text: it.text + text };
    } else {
      t.items.push({ kind: "thinking", key: d.key("h"), text, streaming: true, parent });
    }
  },
  // The model request was cut and is sent again (e.g. its worker died): what it streamed so far
  // is dropped, because the retry streams it anew from the start.
  "stream.retry": (d, e) => {
    const t = d.turnFor(e, true)!;
    const parent = str(e.parent_tool_use_id);
    for (let k = t.items.length - 1; k >= 0; k--) {
      const it = t.items[k];
      if ((it.kind === "text" || it.kind === "thinking") && it.streaming && it.parent === parent) {
        t.items.splice(k, 1);
      }
    }
  },
  thinking: (d, e) => {
    const t = d.turnFor(e, true)!;
    const parent = str(e.parent_tool_use_id);
    const text = str(e.text) ?? "";
    const j = t.items.findIndex((it) => it.kind === "thinking" && it.streaming && it.parent === parent);
    if (j >= 0) t.items[j] = { ...(t.items[j] as ThinkingItem), text, streaming: false };
    else t.items.push({ kind: "thinking", key: d.key("h"), text, streaming: false, parent });
  },
};
