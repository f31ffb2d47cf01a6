// Tool calls: started adds a running item, completed finds it (in any turn) and closes it.
import type { Handlers } from "./handler";
import type { ToolItem } from "./state";
import { str, tsOf } from "./wire";

export const toolHandlers: Handlers = {
  "tool.started": (d, e) => {
    const toolId = str(e.tool_use_id) ?? d.key("tool");
    const found = d.findTool(toolId);
    if (found) {
      const [t, j] = found;
      t.items[j] = { ...(t.items[j] as ToolItem), input: e.input ?? (t.items[j] as ToolItem).input };
      return;
    }
    d.turnFor(e, true)!.items.push({
      kind: "tool",
      key: d.key("u"),
      id: toolId,
      name: str(e.name) ?? "tool",
      input: e.input ?? {},
      isError: false,
      status: "running",
      parent: str(e.parent_tool_use_id),
      startedTs: tsOf(e),
    });
  },
  "tool.completed": (d, e) => {
    const toolId = str(e.tool_use_id);
    const isError = !!e.is_error;
    const found = toolId ? d.findTool(toolId) : null;
    if (found) {
      const [t, j] = found;
      const it = t.items[j] as ToolItem;
      t.items[j] = {
        ...it,
        name: it.name || str(e.name) || "tool",
        output: e.output,
        result: e.result,
        isError,
        status: isError ? "error" : "done",
        completedTs: tsOf(e),
      };
      return;
    }
    d.turnFor(e, true)!.items.push({
      kind: "tool",
      key: d.key("u"),
      id: toolId ?? d.key("tool"),
      name: str(e.name) ?? "tool",
      input: {},
      output: e.output,
      result: e.result,
      isError,
      status: isError ? "error" : "done",
      parent: str(e.parent_tool_use_id),
      completedTs: tsOf(e),
    });
  },
};
