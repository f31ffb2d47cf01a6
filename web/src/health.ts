// Polls GET /health and shares the answer.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, type Health } from "./api";

export interface HealthState {
  health: Health | null;
  error: ApiError | null;
  checkedAt: number;
}

let state: HealthState = { health: null, error: null, checkedAt: 0 };
const listeners = new Set<(s: HealthState) => void>();
let timer: ReturnType<typeof setTimeout> | null = null;
let users = 0;

export async function refreshHealth() {
  try {
    const h = await api.health();
    state = { health: h, error: null, checkedAt: Date.now() };
  } catch (e) {
    state = { health: null, error: e instanceof ApiError ? e : new ApiError(0, "network", String(e)), checkedAt: Date.now() };
  }
  listeners.forEach((l) => l(state));
}

function schedule() {
  timer = setTimeout(async () => {
    await refreshHealth();
    if (users > 0) schedule();
  }, state.health?.status === "ok" ? 15000 : 5000);
}

export function useHealth(): HealthState {
  const [s, set] = useState(state);
  useEffect(() => {
    listeners.add(set);
    users++;
    if (users === 1) {
      void refreshHealth();
      schedule();
    }
    return () => {
      listeners.delete(set);
      users--;
      if (users === 0 && timer) clearTimeout(timer);
    };
  }, []);
  return s;
}

export function workersAlive(h: Health | null): number | null {
  const n = h?.workers?.alive;
  return typeof n === "number" ? n : null;
}
