import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { ApiKeyField } from "../components/ApiKeyField";
import { HealthBanner } from "../components/HealthBanner";
import { Icon, Spinner } from "../components/Icon";
import { Empty, ErrorBanner, Meter, StatusBadge, toast, useTick } from "../components/ui";
import { humanize, type HumanError } from "../errors";
import { cpusFromQuota, fmtAge, fmtAgo, fmtBytes, fmtCost, fmtTokens, parseSize } from "../format";
import { linkClick, navigate } from "../router";
import { rememberSessionKey, useApiKey } from "../store";
import type { SessionInfo } from "../types";

function SessionRow({ s, apiKey, onChanged }: { s: SessionInfo; apiKey: string; onChanged: () => void }) {
  const [confirm, setConfirm] = useState(false);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<HumanError | null>(null);
  const res = s.resources;
  const cpuQuota = s.limits?.cpu_quota ?? null;
  const cpuMax = cpuQuota ? (cpuQuota / 100000) * 100 : 100;
  const memLimit = res?.memory_limit_bytes ?? parseSize(s.limits?.memory_limit ?? null);
  const ended = s.status === "stopped" || s.status === "failed";
  const href = `/chat/${encodeURIComponent(s.session_id)}`;

  const stop = async () => {
    setBusy(true);
    try {
      await api.stopSession(apiKey, s.session_id);
      toast(`Stopped ${s.session_id}`);
      onChanged();
    } catch (e) {
      setErr(humanize(e, "session"));
    } finally {
      setBusy(false);
      setConfirm(false);
    }
  };

  return (
    <>
      <tr class={`session-row ${ended ? "ended" : ""}`} data-testid="session-row" data-session-id={s.session_id} data-status={s.status}>
        <td>
          <StatusBadge status={s.status} testid="session-row-status" />
        </td>
        <td>
          <a href={href} onClick={linkClick} class="session-link">
            <div class="strong">{s.config_name || s.config_id || "—"}</div>
            <div class="mono muted small">{s.session_id}</div>
          </a>
          {s.error && <div class="err-text small" title={s.error}>{s.error.length > 120 ? s.error.slice(0, 119) + "…" : s.error}</div>}
        </td>
        <td class="num" title={s.created_at ? new Date(s.created_at * 1000).toLocaleString() : ""}>
          {fmtAge(s.created_at)}
        </td>
        <td class="num" title={s.last_active ? new Date(s.last_active * 1000).toLocaleString() : ""}>
          {fmtAgo(s.last_active)}
        </td>
        <td>
          {res ? (
            <Meter
              value={res.cpu_percent ?? null}
              max={cpuMax}
              label={`${(res.cpu_percent ?? 0).toFixed(0)}% / ${cpusFromQuota(cpuQuota)}`}
              title="CPU use against the session's CPU limit"
            />
          ) : (
            <span class="muted small">{cpusFromQuota(cpuQuota)}</span>
          )}
        </td>
        <td>
          {res ? (
            <Meter
              value={res.memory_bytes ?? null}
              max={memLimit}
              label={`${fmtBytes(res.memory_bytes)} / ${fmtBytes(memLimit)}`}
              title="Memory use against the session's memory limit"
            />
          ) : (
            <span class="muted small">{s.limits?.memory_limit ?? "—"}</span>
          )}
        </td>
        <td class="num">{s.turns ?? 0}</td>
        <td class="num" title={`${s.usage?.input_tokens ?? 0} in / ${s.usage?.output_tokens ?? 0} out tokens`}>
          <div>{fmtCost(s.cost_usd)}</div>
          <div class="muted small">
            {fmtTokens(s.usage?.input_tokens)}/{fmtTokens(s.usage?.output_tokens)}
          </div>
        </td>
        <td class="actions">
          <a class="btn sm" href={href} onClick={linkClick} data-testid="open-session">
            Open
          </a>
          {!ended &&
            (confirm ? (
              <>
                <button class="btn danger sm" onClick={stop} disabled={busy} data-testid="confirm-stop-session">
                  {busy ? <Spinner size={12} /> : null} Stop now
                </button>
                <button class="btn ghost sm" onClick={() => setConfirm(false)}>
                  Cancel
                </button>
              </>
            ) : (
              <button class="btn ghost sm" onClick={() => setConfirm(true)} data-testid="stop-session" title="Stop the session and remove its container">
                <Icon name="stop" size={12} /> Stop
              </button>
            ))}
        </td>
      </tr>
      {err && (
        <tr>
          <td colSpan={9}>
            <ErrorBanner error={err} onDismiss={() => setErr(null)} />
          </td>
        </tr>
      )}
    </>
  );
}

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
