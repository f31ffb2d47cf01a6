import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { Icon, Spinner } from "../components/Icon";
import { ErrorBanner, Modal, toast } from "../components/ui";
import { humanize, type HumanError } from "../errors";
import { cpusFromQuota } from "../format";
import { useHealth, workersAlive } from "../health";
import { linkClick, navigate } from "../router";
import { rememberSessionKey, useApiKey } from "../store";
import type { AgentConfig, ConfigSummary, SystemPrompt } from "../types";

export function ApiKeyField({ compact = false }: { compact?: boolean }) {
  const [key, setKey] = useApiKey();
  const [show, setShow] = useState(false);
  const [draft, setDraft] = useState(key);
  useEffect(() => setDraft(key), [key]);
  return (
    <div class={`keybox ${compact ? "compact" : ""}`}>
      <label class="field-label" for="api-key">
        <Icon name="key" size={14} /> Anthropic API key
      </label>
      <div class="keyrow">
        <input
          id="api-key"
          class="input mono"
          type={show ? "text" : "password"}
          placeholder="sk-ant-…"
          autocomplete="off"
          spellcheck={false}
          value={draft}
          data-testid="api-key-input"
          onInput={(e) => {
            const v = (e.target as HTMLInputElement).value;
            setDraft(v);
            setKey(v);
          }}
        />
        <button class="icon-btn" type="button" onClick={() => setShow(!show)} aria-label={show ? "Hide key" : "Show key"} title={show ? "Hide" : "Show"}>
          <Icon name={show ? "eyeOff" : "eye"} />
        </button>
        {key && (
          <button class="btn ghost sm" type="button" onClick={() => setKey("")} data-testid="forget-key">
            Forget
          </button>
        )}
      </div>
      {!compact && (
        <div class="field-help">
          Kept only in this browser (localStorage). It is sent only to this AgCluster server, when you launch a session and to open your sessions.
        </div>
      )}
    </div>
  );
}

export function PromptView({ prompt }: { prompt: SystemPrompt | null | undefined }) {
  if (prompt == null || prompt === "") return <div class="muted small">No system prompt (the SDK default).</div>;
  if (typeof prompt === "string") return <pre class="prompt">{prompt}</pre>;
  return (
    <div>
      <div class="small">
        Preset <code>{prompt.preset}</code> (Claude Code's own system prompt)
        {prompt.append ? ", with this appended:" : "."}
      </div>
      {prompt.append && <pre class="prompt">{prompt.append}</pre>}
    </div>
  );
}

function Chips({ items, icon, max = 12, empty }: { items: string[]; icon?: string; max?: number; empty?: string }) {
  if (!items.length) return <span class="muted small">{empty ?? "none"}</span>;
  const shown = items.slice(0, max);
  return (
    <div class="chips">
      {shown.map((t) => (
        <span class="chip" key={t} title={t}>
          {icon && <Icon name={icon} size={11} />}
          {t}
        </span>
      ))}
      {items.length > max && (
        <span class="chip more" title={items.slice(max).join(", ")}>
          +{items.length - max}
        </span>
      )}
    </div>
  );
}

function ConfigCard({
  cfg,
  launching,
  disabled,
  onLaunch,
  onDeleted,
}: {
  cfg: ConfigSummary;
  launching: boolean;
  disabled: boolean;
  onLaunch: () => void;
  onDeleted: () => void;
}) {
  const [full, setFull] = useState<AgentConfig | null>(null);
  const [showPrompt, setShowPrompt] = useState(false);
  const [err, setErr] = useState<HumanError | null>(null);
  const [confirmDel, setConfirmDel] = useState(false);
  const rl = cfg.resource_limits ?? {};
  const mcp = cfg.mcp_servers ?? [];
  const subs = cfg.sub_agents ?? [];
  const needsCreds = Object.values(cfg.mcp_credentials ?? {}).some((v) => v && v.length);

  const togglePrompt = async () => {
    const next = !showPrompt;
    setShowPrompt(next);
    if (next && !full) {
      try {
        setFull(await api.config(cfg.id));
      } catch (e) {
        setErr(humanize(e, "configs"));
      }
    }
  };

  return (
    <article class="card config-card" data-testid="config-card" data-config-id={cfg.id}>
      <header class="config-head">
        <div class="config-title">
          <h3>{cfg.name}</h3>
          <code class="config-id">{cfg.id}</code>
        </div>
        <span class={`tag ${cfg.source === "custom" ? "tag-custom" : ""}`}>{cfg.source ?? "preset"}</span>
      </header>
      {cfg.description && <p class="config-desc">{cfg.description}</p>}
      <div class="config-meta">
        {cfg.model && (
          <span title="Model">
            <Icon name="brain" size={12} /> {cfg.model}
          </span>
        )}
        {cfg.permission_mode && (
          <span title="Permission mode">
            <Icon name="check" size={12} /> {cfg.permission_mode}
          </span>
        )}
      </div>
      <div class="config-section">
        <div class="section-label">Tools</div>
        <Chips items={cfg.allowed_tools ?? []} empty="no tools" />
      </div>
      <div class="config-stats">
        <div>
          <span class="stat-label">CPU</span>
          <span class="stat-value">{cpusFromQuota(rl.cpu_quota)}</span>
        </div>
        <div>
          <span class="stat-label">Memory</span>
          <span class="stat-value">{rl.memory_limit ?? "—"}</span>
        </div>
        <div>
          <span class="stat-label">Storage</span>
          <span class="stat-value">{rl.storage_limit ?? "—"}</span>
        </div>
        <div>
          <span class="stat-label">PIDs</span>
          <span class="stat-value">{rl.pids_limit ?? "—"}</span>
        </div>
      </div>
      {(subs.length > 0 || mcp.length > 0) && (
        <div class="config-section two">
          {subs.length > 0 && (
            <div>
              <div class="section-label">Sub-agents</div>
              <Chips items={subs} icon="bot" />
            </div>
          )}
          {mcp.length > 0 && (
            <div>
              <div class="section-label">MCP servers</div>
              <Chips items={mcp} icon="plug" />
            </div>
          )}
        </div>
      )}
      {showPrompt && (
        <div class="config-prompt" data-testid="system-prompt">
          <div class="section-label">System prompt</div>
          {full ? <PromptView prompt={full.system_prompt} /> : err ? null : <Spinner />}
        </div>
      )}
      <ErrorBanner error={err} onDismiss={() => setErr(null)} />
      <footer class="config-foot">
        <button class="btn ghost sm" onClick={togglePrompt} data-testid="show-prompt" aria-expanded={showPrompt}>
          {showPrompt ? "Hide prompt" : "System prompt"}
        </button>
        <a class="btn ghost sm" href={`/builder?from=${encodeURIComponent(cfg.id)}`} onClick={linkClick} data-testid="edit-config">
          <Icon name="edit" size={13} /> {cfg.source === "custom" ? "Edit" : "Customize"}
        </a>
        {cfg.source === "custom" &&
          (confirmDel ? (
            <button
              class="btn danger sm"
              data-testid="confirm-delete-config"
              onClick={async () => {
                try {
                  await api.deleteCustom(cfg.id);
                  toast(`Deleted ${cfg.id}`);
                  onDeleted();
                } catch (e) {
                  setErr(humanize(e, "configs"));
                }
              }}
            >
              Delete?
            </button>
          ) : (
            <button class="icon-btn" title="Delete this custom config" onClick={() => setConfirmDel(true)} data-testid="delete-config">
              <Icon name="trash" size={14} />
            </button>
          ))}
        <span class="spacer" />
        <button class="btn primary" disabled={disabled || launching} onClick={onLaunch} data-testid="launch-button" data-config-id={cfg.id}>
          {launching ? (
            <>
              <Spinner /> Starting…
            </>
          ) : (
            <>
              <Icon name="play" size={13} /> Launch{needsCreds ? "…" : ""}
            </>
          )}
        </button>
      </footer>
    </article>
  );
}

export function CredentialsDialog({
  creds,
  configName,
  onCancel,
  onSubmit,
}: {
  creds: Record<string, string[]>;
  configName: string;
  onCancel: () => void;
  onSubmit: (env: Record<string, Record<string, string>>) => void;
}) {
  const [vals, setVals] = useState<Record<string, Record<string, string>>>({});
  const servers = Object.entries(creds).filter(([, names]) => names && names.length);
  const missing = servers.some(([s, names]) => names.some((n) => !(vals[s]?.[n] ?? "").trim()));
  const submit = (e?: Event) => {
    e?.preventDefault();
    if (!missing) onSubmit(vals);
  };
  return (
    <Modal
      title={
        <>
          <Icon name="plug" /> MCP credentials for {configName}
        </>
      }
      onClose={onCancel}
      testid="mcp-credentials-dialog"
      footer={
        <>
          <button class="btn ghost" onClick={onCancel}>
            Cancel
          </button>
          <button class="btn primary" disabled={missing} onClick={() => submit()} data-testid="mcp-credentials-submit">
            <Icon name="play" size={13} /> Launch
          </button>
        </>
      }
    >
      <form onSubmit={submit}>
        <p class="small muted">
          This configuration's MCP servers need these credentials. They are sent sealed to the worker for this session only and are not stored in your browser.
        </p>
        {servers.map(([server, names]) => (
          <fieldset class="cred-group" key={server}>
            <legend>
              <Icon name="plug" size={12} /> {server}
            </legend>
            {names.map((n) => (
              <label class="field" key={n}>
                <span class="field-label mono">{n}</span>
                <input
                  class="input mono"
                  type="password"
                  autocomplete="off"
                  data-testid="mcp-cred-input"
                  data-server={server}
                  data-env={n}
                  value={vals[server]?.[n] ?? ""}
                  onInput={(e) => {
                    const v = (e.target as HTMLInputElement).value;
                    setVals((old) => ({ ...old, [server]: { ...(old[server] ?? {}), [n]: v } }));
                  }}
                />
              </label>
            ))}
          </fieldset>
        ))}
        <button type="submit" hidden />
      </form>
    </Modal>
  );
}

/** Launch by config id or inline config; handles the MCP-credentials prompt and navigation. */
export function useLauncher() {
  const [key] = useApiKey();
  const [launching, setLaunching] = useState<string | null>(null);
  const [error, setError] = useState<HumanError | null>(null);
  const [ask, setAsk] = useState<{ id: string; name: string; creds: Record<string, string[]>; config?: unknown } | null>(null);
  const started = useRef(0);

  const doLaunch = async (id: string, config: unknown | undefined, mcpEnv?: Record<string, Record<string, string>>) => {
    if (!key) {
      setError({
        title: "Enter your Anthropic API key first",
        hint: "Paste it into the API key field above. It stays in this browser and is only sent to this AgCluster server.",
        status: 401,
      });
      document.getElementById("api-key")?.focus();
      return;
    }
    setError(null);
    setLaunching(id);
    started.current = Date.now();
    try {
      const body: any = { api_key: key };
      if (config !== undefined) body.config = config;
      else body.config_id = id;
      if (mcpEnv && Object.keys(mcpEnv).length) body.mcp_env = mcpEnv;
      const res = await api.launch(body);
      rememberSessionKey(res.session_id, key);
      navigate(`/chat/${encodeURIComponent(res.session_id)}`);
    } catch (e) {
      setError(humanize(e, "launch"));
    } finally {
      setLaunching(null);
    }
  };

  const launch = (id: string, name: string, creds: Record<string, string[]> | undefined, config?: unknown) => {
    const needs = Object.values(creds ?? {}).some((v) => v && v.length);
    if (needs && key) setAsk({ id, name, creds: creds!, config });
    else void doLaunch(id, config);
  };

  const dialog = ask ? (
    <CredentialsDialog
      creds={ask.creds}
      configName={ask.name}
      onCancel={() => setAsk(null)}
      onSubmit={(env) => {
        const a = ask;
        setAsk(null);
        void doLaunch(a.id, a.config, env);
      }}
    />
  ) : null;

  return { launch, launching, error, setError, dialog };
}

export function HealthBanner() {
  const { health, error } = useHealth();
  if (error)
    return (
      <ErrorBanner
        testid="health-banner"
        error={{
          title: "Can't reach the AgCluster API",
          hint: "The server did not answer its health check. Start it (agcluster api, or docker compose up) and this page will recover by itself.",
          status: 0,
        }}
      />
    );
  if (health && workersAlive(health) === 0)
    return (
      <div class="banner banner-warn" data-testid="health-banner">
        <Icon name="alert" size={18} class="banner-icon" />
        <div class="banner-body">
          <div class="banner-title">No worker is running</div>
          <div class="banner-hint">
            Sessions run in containers started by workers, so launching will fail until one is up. Start a worker with <code>agcluster worker</code> (or{" "}
            <code>docker compose up worker</code>).
          </div>
        </div>
      </div>
    );
  return null;
}

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
