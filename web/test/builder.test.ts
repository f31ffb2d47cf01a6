import { describe, expect, it } from "vitest";
import { configToForm, declaredCredentials, emptyForm, fieldMatches, formToConfig, parsePairs } from "../src/builder";
import { parseBlocks } from "../src/components/Markdown";
import { fmtBytes, fmtDuration, parseSize } from "../src/format";
import type { AgentConfig } from "../src/types";

describe("builder form <-> config", () => {
  it("round-trips a full config", () => {
    const cfg: AgentConfig = {
      id: "x",
      name: "X",
      description: "d",
      version: "2.0.0",
      allowed_tools: ["Bash", "mcp__gh__list"],
      system_prompt: { type: "preset", preset: "claude_code", append: "be brief" },
      permission_mode: "acceptEdits",
      resource_limits: { cpu_quota: 150000, memory_limit: "2g", storage_limit: "5g", pids_limit: 100 },
      max_turns: 7,
      model: "sonnet",
      env: { A: "1" },
      agents: { rev: { description: "reviews", prompt: "review", tools: ["Read"], model: "haiku" } },
      mcp_servers: {
        gh: { type: "stdio", command: "gh-mcp", args: ["--x"], env: { GITHUB_TOKEN: "${GITHUB_TOKEN}" } },
        web: { type: "http", url: "https://e.x", headers: { Authorization: "Bearer ${TOKEN}" } },
      },
    };
    expect(formToConfig(configToForm(cfg))).toEqual(cfg);
  });

  it("makes a plain string prompt and omits empty optional fields", () => {
    const f = { ...emptyForm(), promptMode: "custom" as const, promptText: "hi", model: "", maxTurns: "" };
    const c = formToConfig(f);
    expect(c.system_prompt).toBe("hi");
    expect("model" in c).toBe(false);
    expect("max_turns" in c).toBe(false);
    expect(c.resource_limits?.cpu_quota).toBe(100000);
  });

  it("finds credentials to ask for", () => {
    const c = formToConfig(configToForm({
      id: "a",
      name: "a",
      mcp_servers: {
        s: { type: "stdio", command: "c", env: { TOKEN: "${TOKEN}", EMPTY: "", FIXED: "v" } },
        h: { type: "sse", url: "u", headers: { Authorization: "Bearer ${API}" } },
      },
    }));
    expect(declaredCredentials(c)).toEqual({ s: ["TOKEN", "EMPTY"], h: ["API"] });
  });

  it("parses KEY=value lines and matches error fields", () => {
    expect(parsePairs("A=1\n# c\nB = x=y\n", "=")).toEqual({ A: "1", B: "x=y" });
    expect(fieldMatches("resource_limits.memory_limit", "resource_limits")).toBe(true);
    expect(fieldMatches("agents[0].prompt", "agents.0")).toBe(true);
    expect(fieldMatches("name", "id")).toBe(false);
  });
});

describe("helpers", () => {
  it("formats", () => {
    expect(parseSize("4g")).toBe(4 * 1024 ** 3);
    expect(parseSize("512m")).toBe(512 * 1024 ** 2);
    expect(parseSize("bogus")).toBeNull();
    expect(fmtBytes(1536)).toBe("1.5 KB");
    expect(fmtDuration(1500)).toBe("1.5 s");
    expect(fmtDuration(125000)).toBe("2m 5s");
  });

  it("splits markdown into blocks, including an unclosed fence while streaming", () => {
    const b = parseBlocks("# T\n\ntext\nmore\n\n- a\n- b\n\n```py\nx = 1");
    expect(b.map((x) => x.t)).toEqual(["h", "p", "ul", "code"]);
    expect((b[3] as any).text).toBe("x = 1");
  });
});
