// Browser-only state: the API key (localStorage, never sent anywhere but this
// platform's launch and session calls), the theme, and which key launched which session.
import { useEffect, useState } from "preact/hooks";

const KEY = "agc.apiKey";
const SESSION_KEYS = "agc.sessionKeys";
const THEME = "agc.theme";

type Listener = () => void;
const listeners = new Set<Listener>();

function read(name: string): string | null {
  try {
    return localStorage.getItem(name);
  } catch {
    return null;
  }
}
function write(name: string, value: string | null) {
  try {
    if (value === null) localStorage.removeItem(name);
    else localStorage.setItem(name, value);
  } catch {
    /* storage disabled */
  }
}

export function getApiKey(): string {
  return read(KEY) ?? "";
}

export function setApiKey(v: string) {
  write(KEY, v.trim() ? v.trim() : null);
  listeners.forEach((l) => l());
}

export function useApiKey(): [string, (v: string) => void] {
  const [k, setK] = useState(getApiKey());
  useEffect(() => {
    const l = () => setK(getApiKey());
    listeners.add(l);
    const onStorage = (e: StorageEvent) => {
      if (e.key === KEY) l();
    };
    window.addEventListener("storage", onStorage);
    return () => {
      listeners.delete(l);
      window.removeEventListener("storage", onStorage);
    };
  }, []);
  return [k, setApiKey];
}

function sessionKeys(): Record<string, string> {
  try {
    const v = JSON.parse(read(SESSION_KEYS) ?? "{}");
    return v && typeof v === "object" ? v : {};
  } catch {
    return {};
  }
}

/** Remember which key launched a session (so its chat still opens after the key changes). */
export function rememberSessionKey(sid: string, key: string) {
  const m = sessionKeys();
  m[sid] = key;
  const entries = Object.entries(m);
  // Keep the map small.
  const trimmed = Object.fromEntries(entries.slice(Math.max(0, entries.length - 50)));
  write(SESSION_KEYS, JSON.stringify(trimmed));
}

/** The key for a session: the one it was launched with in this browser, else the current key. */
export function keyForSession(sid: string): string {
  return sessionKeys()[sid] ?? getApiKey();
}

export type Theme = "auto" | "light" | "dark";

export function getTheme(): Theme {
  const t = read(THEME);
  return t === "light" || t === "dark" ? t : "auto";
}

export function applyTheme(t: Theme) {
  write(THEME, t === "auto" ? null : t);
  const root = document.documentElement;
  if (t === "auto") root.removeAttribute("data-theme");
  else root.setAttribute("data-theme", t);
}

// The operator token (custom-config writes): this tab only (sessionStorage), never persisted.
const OPERATOR = "agc.operatorToken";

export function getOperatorToken(): string {
  try {
    return sessionStorage.getItem(OPERATOR) ?? "";
  } catch {
    return "";
  }
}

export function setOperatorToken(v: string) {
  try {
    if (v.trim()) sessionStorage.setItem(OPERATOR, v.trim());
    else sessionStorage.removeItem(OPERATOR);
  } catch {
    /* storage disabled */
  }
}
