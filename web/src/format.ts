// Small display helpers.

export function fmtDuration(ms: number | null | undefined): string {
  if (ms == null || !isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  const r = Math.round(s % 60);
  if (m < 60) return `${m}m ${r}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function fmtTokens(n: number | null | undefined): string {
  if (n == null || !isFinite(n)) return "0";
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(2)}M`;
}

export function fmtCost(usd: number | null | undefined): string {
  if (usd == null || !isFinite(usd)) return "$0.00";
  if (usd === 0) return "$0.00";
  if (usd < 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(2)}`;
}

export function fmtBytes(n: number | null | undefined): string {
  if (n == null || !isFinite(n)) return "—";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** "4g" / "512m" / "1073741824" → bytes. */
export function parseSize(s: string | number | null | undefined): number | null {
  if (s == null) return null;
  if (typeof s === "number") return s;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(s);
  if (!m) return null;
  const mult: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Math.round(parseFloat(m[1]) * mult[m[2].toLowerCase()]);
}

export function cpusFromQuota(q: number | null | undefined): string {
  if (!q) return "—";
  const c = q / 100000;
  return `${Number.isInteger(c) ? c : c.toFixed(2)} CPU`;
}

/** Seconds since epoch → "3m ago". */
export function fmtAgo(unixSeconds: number | null | undefined, now = Date.now() / 1000): string {
  if (!unixSeconds) return "—";
  const d = Math.max(0, now - unixSeconds);
  if (d < 5) return "just now";
  if (d < 60) return `${Math.floor(d)}s ago`;
  if (d < 3600) return `${Math.floor(d / 60)}m ago`;
  if (d < 86400) return `${Math.floor(d / 3600)}h ${Math.floor((d % 3600) / 60)}m ago`;
  return `${Math.floor(d / 86400)}d ago`;
}

/** Seconds since epoch → "12m" (age). */
export function fmtAge(unixSeconds: number | null | undefined, now = Date.now() / 1000): string {
  if (!unixSeconds) return "—";
  return fmtDuration(Math.max(0, now - unixSeconds) * 1000).replace(/ s$/, "s");
}

export function truncate(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

export function basename(p: string): string {
  const parts = p.split("/").filter(Boolean);
  return parts[parts.length - 1] ?? p;
}

/** How a session was launched: "84 ms · warm" (a pool slot) or "1.6 s · cold". */
export function fmtLaunch(ms: number | null | undefined, warm: boolean | null | undefined): string {
  if (ms == null) return "";
  return `${fmtDuration(ms)} · ${warm ? "warm" : "cold"}`;
}
