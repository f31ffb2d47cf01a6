// /sessions: the key's sessions (polled every 3 s), newest first; ended ones on request.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { ApiKeyField } from "../components/SecretField";
import { HealthBanner } from "../components/HealthBanner";
import { Icon, Spinner } from "../components/Icon";
import { Empty, ErrorBanner, useTick } from "../components/ui";
import { humanize, type HumanError } from "../errors";
import { fmtCost } from "../format";
import { linkClick, navigate } from "../router";
import { rememberSessionKey, useApiKey } from "../store";
import type { SessionInfo } from "../types";
import { SessionRow } from "./sessions/SessionRow";

export function SessionsPage() {
  const [key] = useApiKey();
  const [sessions, setSessions] = useState<SessionInfo[] | null>(null);
  const [err, setErr] = useState<HumanError | null>(null);
  const [showEnded, setShowEnded] = useState(false);
  useTick(5000);

  const load = async () => {
    if (!key) return;
    try {
      const r = await api.sessions(key);
      // The list has no live resource figures: ask each active session (a few at most).
      const live = r.sessions.filter((s) => s.status !== "stopped" && s.status !== "failed").slice(0, 25);
      const details = await Promise.all(live.map((s) => api.session(key, s.session_id).catch(() => null)));
      const byId = new Map(details.filter((d): d is SessionInfo => !!d).map((d) => [d.session_id, d]));
      setSessions(r.sessions.map((s) => ({ ...s, ...(byId.get(s.session_id) ?? {}) })));
      r.sessions.forEach((s) => rememberSessionKey(s.session_id, key));
      setErr(null);
    } catch (e) {
      setErr(humanize(e, "sessions"));
    }
  };

  useEffect(() => {
    setSessions(null);
    void load();
    const t = setInterval(load, 3000);
    return () => clearInterval(t);
  }, [key]);

  const list = (sessions ?? []).filter((s) => showEnded || (s.status !== "stopped" && s.status !== "failed"));
  list.sort((a, b) => (b.created_at ?? 0) - (a.created_at ?? 0));
  const hidden = (sessions?.length ?? 0) - list.length;
  const totalCost = (sessions ?? []).reduce((a, s) => a + (s.cost_usd ?? 0), 0);

  return (
    <div class="page">
      <div class="page-head">
        <div>
          <h1>Sessions</h1>
          <p class="muted">Your sessions (those launched with the key stored in this browser). Refreshes every few seconds.</p>
        </div>
        <a class="btn primary" href="/" onClick={linkClick}>
          <Icon name="plus" size={14} /> New session
        </a>
      </div>
      <HealthBanner />
      {!key && (
        <section class="card keycard">
          <ApiKeyField />
        </section>
      )}
      <ErrorBanner error={err}>
        <button class="btn sm" onClick={load}>
          Retry
        </button>
      </ErrorBanner>
      {key && sessions === null && !err && (
        <div class="muted pad">
          <Spinner /> Loading sessions…
        </div>
      )}
      {key && sessions && (
        <>
          <div class="toolbar">
            <h2>
              Active <span class="count">{list.length}</span>
            </h2>
            <span class="muted small">Total cost {fmtCost(totalCost)}</span>
            <span class="spacer" />
            <label class="check small">
              <input type="checkbox" checked={showEnded} onChange={() => setShowEnded(!showEnded)} /> Show ended{hidden > 0 ? ` (${hidden})` : ""}
            </label>
          </div>
          {list.length === 0 ? (
            <Empty icon="layers" title="No active sessions">
              <a
                href="/"
                onClick={(e) => {
                  e.preventDefault();
                  navigate("/");
                }}
              >
                Launch an agent
              </a>{" "}
              to start one.
            </Empty>
          ) : (
            <div class="card table-card">
              <table class="sessions-table" data-testid="sessions-table">
                <thead>
                  <tr>
                    <th>Status</th>
                    <th>Configuration</th>
                    <th class="num">Age</th>
                    <th class="num">Last active</th>
                    <th>CPU</th>
                    <th>Memory</th>
                    <th class="num">Turns</th>
                    <th class="num">Cost</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {list.map((s) => (
                    <SessionRow key={s.session_id} s={s} apiKey={key} onChanged={load} />
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </div>
  );
}
