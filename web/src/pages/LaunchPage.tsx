// /: the API key, the configurations as cards, and launching one.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { ApiKeyField } from "../components/SecretField";
import { HealthBanner } from "../components/HealthBanner";
import { Icon } from "../components/Icon";
import { ErrorBanner } from "../components/ui";
import { humanize, type HumanError } from "../errors";
import { useLauncher } from "../hooks/useLauncher";
import { linkClick } from "../router";
import type { ConfigSummary } from "../types";
import { ConfigCard } from "./launch/ConfigCard";

export function LaunchPage() {
  const [configs, setConfigs] = useState<ConfigSummary[] | null>(null);
  const [loadErr, setLoadErr] = useState<HumanError | null>(null);
  const [filter, setFilter] = useState("");
  const { launch, launching, error, setError, dialog } = useLauncher();

  const load = async () => {
    try {
      const r = await api.configs();
      setConfigs(r.configs);
      setLoadErr(null);
    } catch (e) {
      setLoadErr(humanize(e, "configs"));
    }
  };
  useEffect(() => {
    void load();
  }, []);

  const q = filter.trim().toLowerCase();
  const shown = (configs ?? []).filter(
    (c) =>
      !q ||
      c.name.toLowerCase().includes(q) ||
      c.id.toLowerCase().includes(q) ||
      (c.description ?? "").toLowerCase().includes(q) ||
      (c.allowed_tools ?? []).some((t) => t.toLowerCase().includes(q)),
  );

  return (
    <div class="page">
      <div class="page-head">
        <div>
          <h1>Launch an agent</h1>
          <p class="muted">Each session runs in its own locked-down container. Pick a configuration, or build your own.</p>
        </div>
        <a class="btn" href="/builder" onClick={linkClick} data-testid="new-config">
          <Icon name="plus" size={14} /> New configuration
        </a>
      </div>
      <HealthBanner />
      <section class="card keycard">
        <ApiKeyField />
      </section>
      <ErrorBanner error={error} onDismiss={() => setError(null)} testid="launch-error">
        {error?.status === 504 && (
          <a class="btn sm" href="/sessions" onClick={linkClick}>
            Check the Sessions page
          </a>
        )}
      </ErrorBanner>
      <ErrorBanner error={loadErr}>
        <button class="btn sm" onClick={load}>
          Retry
        </button>
      </ErrorBanner>
      <div class="toolbar">
        <h2>Configurations {configs && <span class="count">{configs.length}</span>}</h2>
        <input
          class="input search"
          type="search"
          placeholder="Filter by name, tool…"
          value={filter}
          onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
        />
      </div>
      {configs === null && !loadErr && (
        <div class="grid">
          {[0, 1, 2].map((i) => (
            <div class="card config-card skeleton" key={i} />
          ))}
        </div>
      )}
      {configs && configs.length === 0 && <p class="muted">No configurations yet. Create one in the builder.</p>}
      <div class="grid" data-testid="config-grid">
        {shown.map((c) => (
          <ConfigCard
            key={c.id}
            cfg={c}
            launching={launching === c.id}
            disabled={launching !== null}
            onLaunch={() => launch(c.id, c.name, c.mcp_credentials)}
            onDeleted={load}
          />
        ))}
      </div>
      {dialog}
    </div>
  );
}
