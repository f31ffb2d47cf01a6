// One session in the sessions table: status, config, age, activity, CPU/memory against its
// limits, turns and cost; open it, or stop it (after a confirmation).
import { useState } from "preact/hooks";
import { api } from "../../api";
import { Icon, Spinner } from "../../components/Icon";
import { ErrorBanner, Meter, StatusBadge, toast } from "../../components/ui";
import { humanize, type HumanError } from "../../errors";
import { cpusFromQuota, fmtAge, fmtAgo, fmtBytes, fmtCost, fmtLaunch, fmtTokens, parseSize } from "../../format";
import { linkClick } from "../../router";
import type { SessionInfo } from "../../types";

export function SessionRow({ s, apiKey, onChanged }: { s: SessionInfo; apiKey: string; onChanged: () => void }) {
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
          {s.status === "waiting" && (
            <div class="warn-text small" data-testid="session-row-waiting">
              <Icon name="alert" size={11} /> waiting for your approval
            </div>
          )}
          {s.error && <div class="err-text small" title={s.error}>{s.error.length > 120 ? s.error.slice(0, 119) + "…" : s.error}</div>}
        </td>
        <td class="num" title={s.created_at ? new Date(s.created_at * 1000).toLocaleString() : ""}>
          {fmtAge(s.created_at)}
          {s.launch_ms != null && (
            <div
              class="muted small"
              data-testid="session-row-launch"
              title={s.warm ? "Launched on a warm-pool sandbox" : "Launched in a new container"}
            >
              {fmtLaunch(s.launch_ms, s.warm)}
            </div>
          )}
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
