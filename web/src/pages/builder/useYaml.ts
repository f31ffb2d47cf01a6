// The YAML preview of a value; the yaml module is loaded on first use (kept out of the main chunk).
import { useEffect, useState } from "preact/hooks";

type YamlMod = typeof import("yaml");
let yamlMod: YamlMod | null = null;

export function useYaml(obj: unknown): string {
  const [, set] = useState(0);
  useEffect(() => {
    if (!yamlMod) import("yaml").then((m) => ((yamlMod = m), set((x) => x + 1)));
  }, []);
  if (!yamlMod) return "# loading…";
  try {
    return yamlMod.stringify(obj, { lineWidth: 100, blockQuote: "literal" });
  } catch (e) {
    return `# cannot render YAML: ${String(e)}`;
  }
}
