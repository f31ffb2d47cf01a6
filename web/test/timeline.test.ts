import { describe, expect, it } from "vitest";
import { describeTool, outputText, stripLineNumbers } from "../src/components/timeline/tools";

describe("timeline tool views", () => {
  it("summarise common tools by what they act on", () => {
    expect(describeTool("Bash", { command: "ls -la" })).toMatchObject({ kind: "bash", summary: "ls -la", mono: true });
    expect(describeTool("Read", { file_path: "src/a.py" }).kind).toBe("read");
    expect(describeTool("TodoWrite", { todos: [{ content: "a", status: "completed" }, { content: "b", status: "pending" }] }).summary).toBe(
      "2 items, 1 done",
    );
    expect(describeTool("mcp__github__create_issue", { title: "x" }).kind).toBe("mcp");
  });

  it("turn any tool output into text", () => {
    expect(outputText(null)).toBe("");
    expect(outputText([{ type: "text", text: "a" }, { type: "image" }])).toBe("a\n[image]");
    expect(outputText({ stdout: "out", stderr: "err" })).toBe("out\nerr");
    expect(outputText({ n: 1 })).toBe('{\n  "n": 1\n}');
  });

  it("strip Read's line numbers only when every line has one", () => {
    expect(stripLineNumbers("     1→a\n     2→b")).toBe("a\nb");
    expect(stripLineNumbers("     1→a\nplain")).toBe("     1→a\nplain");
  });
});
