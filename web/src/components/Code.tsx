// Syntax-highlighted code; highlight.js is loaded on first use (own chunk).
import { useEffect, useState } from "preact/hooks";

type HL = typeof import("../highlighter");
let hl: HL | null = null;
let loading: Promise<HL> | null = null;
function loadHL(): Promise<HL> {
  if (hl) return Promise.resolve(hl);
  loading ??= import("../highlighter").then((m) => (hl = m));
  return loading;
}

export function Code({
  code,
  lang,
  lineNumbers = false,
  class: cls,
  testid,
}: {
  code: string;
  lang?: string | null;
  lineNumbers?: boolean;
  class?: string;
  testid?: string;
}) {
  const [, setReady] = useState(!!hl);
  useEffect(() => {
    if (!hl && lang) loadHL().then(() => setReady(true));
  }, [lang]);
  const html = hl && lang ? hl.highlight(code, lang) : null;
  const lines = lineNumbers ? code.split("\n").length - (code.endsWith("\n") ? 1 : 0) : 0;
  return (
    <div class={`code ${lineNumbers ? "with-lines" : ""} ${cls ?? ""}`} data-testid={testid} data-lang={lang ?? ""}>
      {lineNumbers && (
        <pre class="gutter" aria-hidden="true">
          {Array.from({ length: Math.max(1, lines) }, (_, i) => i + 1).join("\n")}
        </pre>
      )}
      {html !== null ? (
        <pre class="hljs">
          <code dangerouslySetInnerHTML={{ __html: html }} />
        </pre>
      ) : (
        <pre class="hljs">
          <code>{code}</code>
        </pre>
      )}
    </div>
  );
}
