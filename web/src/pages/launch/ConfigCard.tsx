// One configuration on the launch page: what it allows, its limits, prompt, launch and delete.
import { useState } from "preact/hooks";
import { api } from "../../api";
import { Icon, Spinner } from "../../components/Icon";
import { ErrorBanner, toast } from "../../components/ui";
import { humanize, type HumanError } from "../../errors";
import { cpusFromQuota } from "../../format";
import { linkClick } from "../../router";
import { getOperatorToken } from "../../store";
import type { AgentConfig, ConfigSummary, EgressPolicy, SystemPrompt } from "../../types";
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

const EGRESS_TEXT: Record<EgressPolicy["policy"], string> = {
  none: "No network: only the model",
  model: "Only the model and its own MCP servers",
  allowlist: "The model and these hosts:",
  open: "Any public host (ports 80/443); never private addresses",
};

// What the session may reach on the network (the config's egress policy).
export function EgressView({ egress }: { egress: EgressPolicy | undefined }) {
  const e = egress ?? { policy: "model", domains: [] };
  return (
    <div class="config-section" data-testid="config-egress" data-policy={e.policy}>
      <div class="section-label">Network</div>
      <div class="small">
        <Icon name="globe" size={12} /> {EGRESS_TEXT[e.policy] ?? e.policy}
      </div>
      {e.policy === "allowlist" && <Chips items={e.domains} />}
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

export function ConfigCard({
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
      <EgressView egress={cfg.egress} />
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
                  await api.deleteCustom(cfg.id, getOperatorToken());
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
