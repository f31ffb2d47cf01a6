// How a tool call reads in the timeline: its icon, label and one-line summary, and its output as text.
import { truncate } from "../../format";
import type { Todo } from "../../types";

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
export function stripLineNumbers(s: string): string {
  const lines = s.split("\n");
  const re = /^\s*\d+[→\t]/;
  if (lines.filter((l) => l.trim()).every((l) => re.test(l))) return lines.map((l) => l.replace(re, "")).join("\n");
  return s;
}

export interface ToolView {
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

export function compactJson(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s === "{}" ? "" : truncate(s, 160);
  } catch {
    return "";
  }
}
