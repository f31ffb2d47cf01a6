// File extension → highlight.js language name.
const EXT: Record<string, string> = {
  py: "python", pyi: "python", js: "javascript", mjs: "javascript", cjs: "javascript", jsx: "javascript",
  ts: "typescript", tsx: "typescript", mts: "typescript", json: "json", jsonl: "json", yml: "yaml", yaml: "yaml",
  md: "markdown", markdown: "markdown", sh: "bash", bash: "bash", zsh: "bash", html: "xml", htm: "xml", xml: "xml",
  svg: "xml", css: "css", scss: "scss", go: "go", rs: "rust", java: "java", kt: "kotlin", c: "c", h: "c",
  cc: "cpp", cpp: "cpp", hpp: "cpp", cs: "csharp", rb: "ruby", php: "php", sql: "sql", swift: "swift",
  toml: "ini", ini: "ini", cfg: "ini", conf: "ini", diff: "diff", patch: "diff", txt: "plaintext", log: "plaintext",
};

export function languageForPath(path: string, hint?: string | null): string | null {
  if (hint) return hint.toLowerCase();
  const name = path.split("/").pop() ?? "";
  const lower = name.toLowerCase();
  if (lower === "dockerfile") return "dockerfile";
  if (lower === "makefile") return "makefile";
  const dot = lower.lastIndexOf(".");
  if (dot < 0) return null;
  return EXT[lower.slice(dot + 1)] ?? null;
}
