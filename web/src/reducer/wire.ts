// Lenient readers for event fields. The generated types (../events.gen.ts) say what the schema
// promises; these keep the view working when an older or newer producer sends something else.

export function str(v: unknown): string | null {
  return typeof v === "string" ? v : v == null ? null : String(v);
}

export function num(v: unknown): number | undefined {
  if (typeof v === "number" && isFinite(v)) return v;
  if (typeof v === "string" && v !== "" && isFinite(Number(v))) return Number(v);
  return undefined;
}

/** An event's time in seconds (it may come as seconds, milliseconds or an ISO string). */
export function tsOf(e: { ts?: unknown }): number | undefined {
  const v = e.ts;
  if (typeof v === "number") return v > 1e12 ? v / 1000 : v;
  if (typeof v === "string") {
    const n = Number(v);
    if (isFinite(n)) return n > 1e12 ? n / 1000 : n;
    const d = Date.parse(v);
    if (!isNaN(d)) return d / 1000;
  }
  return undefined;
}

/** The stream sequence in an SSE id, or null when the id is not one. */
export function seqOf(id: string): number | null {
  if (!/^\d+$/.test(id)) return null;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : null;
}
