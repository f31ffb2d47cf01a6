import type { ComponentChildren } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, ApiError, type FieldError } from "../api";
import {
  configToForm,
  declaredCredentials,
  emptyAgent,
  emptyForm,
  emptyMcp,
  fieldMatches,
  formToConfig,
  KNOWN_TOOLS,
  PERMISSION_MODES,
  type AgentForm,
  type BuilderForm,
  type McpForm,
} from "../builder";
import { Code } from "../components/Code";
import { Icon, Spinner } from "../components/Icon";
import { ErrorBanner, toast } from "../components/ui";
import { humanize, type HumanError } from "../errors";
import type { ConfigSummary } from "../types";
import { ApiKeyField, HealthBanner, useLauncher } from "./LaunchPage";

type YamlMod = typeof import("yaml");
let yamlMod: YamlMod | null = null;

function useYaml(obj: unknown): string {
  const [, set] = useState(0);
  useEffect(() => {
    if (!yamlMod) import("yaml").then((m) => ((yamlMod = m), set((x) => x + 1)));
  }, []);
  if (!yamlMod) return "# loading…";
  try {
    return yamlMod.stringify(obj, { lineWidth: 100, blockQuote: "literal" });
  } catch (e) {
    return `# cannot render YAML: ${String(e)}`;
  }
}

type Validation =
  | { state: "idle" }
  | { state: "checking" }
  | { state: "valid" }
  | { state: "invalid"; errors: FieldError[]; detail?: string }
  | { state: "error"; error: HumanError };

function FieldErr({ errors, paths }: { errors: FieldError[]; paths: string[] }) {
  const mine = errors.filter((e) => fieldMatches(e.field, ...paths));
  if (!mine.length) return null;
  return (
    <div class="field-error" data-testid="field-error">
      {mine.map((e, i) => (
        <div key={i}>{e.message}</div>
      ))}
    </div>
  );
}

function Section({ title, icon, children, aside }: { title: string; icon: string; children: ComponentChildren; aside?: ComponentChildren }) {
  return (
    <section class="card form-section">
      <div class="form-section-head">
        <h3>
          <Icon name={icon} size={15} /> {title}
        </h3>
        {aside}
      </div>
      {children}
    </section>
  );
}

export function BuilderPage({ from }: { from: string | null }) {
  const [form, setForm] = useState<BuilderForm>(emptyForm);
  const [presets, setPresets] = useState<ConfigSummary[]>([]);
  const [loadErr, setLoadErr] = useState<HumanError | null>(null);
  const [validation, setValidation] = useState<Validation>({ state: "idle" });
  const [saving, setSaving] = useState(false);
  const [saveErr, setSaveErr] = useState<HumanError | null>(null);
  const [customTool, setCustomTool] = useState("");
  const { launch, launching, error: launchErr, setError: setLaunchErr, dialog } = useLauncher();

  const config = useMemo(() => formToConfig(form), [form]);
  const yaml = useYaml(config);
  const errors = validation.state === "invalid" ? validation.errors : [];

  useEffect(() => {
    api
      .configs()
      .then((r) => setPresets(r.configs))
      .catch(() => undefined);
  }, []);

  const loadFrom = async (id: string) => {
    try {
      const c = await api.config(id);
      const f = configToForm(c);
      if (c.source !== "custom") {
        f.id = `${c.id}-custom`;
        f.name = `${c.name} (custom)`;
      }
      setForm(f);
      setLoadErr(null);
    } catch (e) {
      setLoadErr(humanize(e, "configs"));
    }
  };

  useEffect(() => {
    if (from) void loadFrom(from);
  }, [from]);

  // Live validation against the API (debounced).
  const seq = useRef(0);
  useEffect(() => {
    const my = ++seq.current;
    const ctrl = new AbortController();
    setValidation((v) => (v.state === "idle" ? { state: "checking" } : v));
    const t = setTimeout(async () => {
      setValidation((v) => (v.state === "invalid" || v.state === "valid" ? v : { state: "checking" }));
      try {
        await api.validate(config, ctrl.signal);
        if (my === seq.current) setValidation({ state: "valid" });
      } catch (e) {
        if ((e as Error)?.name === "AbortError" || my !== seq.current) return;
        if (e instanceof ApiError && (e.status === 422 || e.status === 400)) {
          setValidation({
            state: "invalid",
            errors: e.errors.length ? e.errors : [{ field: "", message: e.detail || "invalid configuration" }],
            detail: e.detail,
          });
        } else setValidation({ state: "error", error: humanize(e, "validate") });
      }
    }, 450);
    return () => {
      clearTimeout(t);
      ctrl.abort();
    };
  }, [config]);

  const set = <K extends keyof BuilderForm>(k: K, v: BuilderForm[K]) => setForm((f) => ({ ...f, [k]: v }));
  const inp = (k: keyof BuilderForm) => (e: Event) => set(k, (e.target as HTMLInputElement).value as any);

  const allTools = useMemo(() => {
    const s = new Set(KNOWN_TOOLS);
    presets.forEach((p) => (p.allowed_tools ?? []).forEach((t) => s.add(t)));
    form.tools.forEach((t) => s.add(t));
    return [...s];
  }, [presets, form.tools]);

  const toggleTool = (t: string) =>
    set("tools", form.tools.includes(t) ? form.tools.filter((x) => x !== t) : [...form.tools, t]);

  const setAgent = (i: number, patch: Partial<AgentForm>) =>
    set(
      "agents",
      form.agents.map((a, j) => (j === i ? { ...a, ...patch } : a)),
    );
  const setMcp = (i: number, patch: Partial<McpForm>) =>
    set(
      "mcp",
      form.mcp.map((a, j) => (j === i ? { ...a, ...patch } : a)),
    );

  const save = async () => {
    setSaving(true);
    setSaveErr(null);
    try {
      await api.saveCustom(config);
      toast(`Saved “${config.name}” (${config.id})`);
    } catch (e) {
      setSaveErr(humanize(e, "save"));
      if (e instanceof ApiError && e.status === 422 && e.errors.length) setValidation({ state: "invalid", errors: e.errors });
    } finally {
      setSaving(false);
    }
  };

  const cls = (...paths: string[]) => (errors.some((e) => fieldMatches(e.field, ...paths)) ? "input invalid" : "input");

  return (
    <div class="page builder">
      <div class="page-head">
        <div>
          <h1>Configuration builder</h1>
          <p class="muted">Compose a custom agent: tools, prompt, limits, sub-agents and MCP servers. Checked live by the API.</p>
        </div>
        <label class="inline-field">
          <span class="muted small">Start from</span>
          <select
            class="input"
            data-testid="builder-from"
            onChange={(e) => {
              const v = (e.target as HTMLSelectElement).value;
              if (v === "__new") setForm(emptyForm());
              else if (v) void loadFrom(v);
            }}
          >
            <option value="">—</option>
            <option value="__new">Blank</option>
            {presets.map((p) => (
              <option value={p.id} key={p.id}>
                {p.name} ({p.source ?? "preset"})
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorBanner error={loadErr} onDismiss={() => setLoadErr(null)} />
      <div class="builder-grid">
        <div class="builder-form">
          <Section title="Identity" icon="edit">
            <div class="form-row">
              <label class="field">
                <span class="field-label">Id</span>
                <input class={`${cls("id")} mono`} value={form.id} onInput={inp("id")} data-testid="builder-id" spellcheck={false} />
                <FieldErr errors={errors} paths={["id"]} />
              </label>
              <label class="field">
                <span class="field-label">Name</span>
                <input class={cls("name")} value={form.name} onInput={inp("name")} data-testid="builder-name" />
                <FieldErr errors={errors} paths={["name"]} />
              </label>
              <label class="field narrow">
                <span class="field-label">Version</span>
                <input class={cls("version")} value={form.version} onInput={inp("version")} />
              </label>
            </div>
            <label class="field">
              <span class="field-label">Description</span>
              <input class={cls("description")} value={form.description} onInput={inp("description")} data-testid="builder-description" />
              <FieldErr errors={errors} paths={["description"]} />
            </label>
            <div class="form-row">
              <label class="field">
                <span class="field-label">Model</span>
                <input class={cls("model")} value={form.model} onInput={inp("model")} list="model-list" placeholder="(default)" data-testid="builder-model" />
                <datalist id="model-list">
                  <option value="sonnet" />
                  <option value="opus" />
                  <option value="haiku" />
                </datalist>
                <FieldErr errors={errors} paths={["model"]} />
              </label>
              <label class="field">
                <span class="field-label">Permission mode</span>
                <select class={cls("permission_mode")} value={form.permission_mode} onChange={inp("permission_mode")} data-testid="builder-permission-mode">
                  {PERMISSION_MODES.map((m) => (
                    <option key={m} value={m}>
                      {m}
                    </option>
                  ))}
                </select>
                <FieldErr errors={errors} paths={["permission_mode"]} />
              </label>
              <label class="field narrow">
                <span class="field-label">Max turns</span>
                <input class={cls("max_turns")} value={form.maxTurns} onInput={inp("maxTurns")} placeholder="∞" inputMode="numeric" />
                <FieldErr errors={errors} paths={["max_turns"]} />
              </label>
            </div>
          </Section>

          <Section title="Tools" icon="wrench" aside={<span class="muted small">{form.tools.length} allowed</span>}>
            <div class="tool-picker" data-testid="builder-tools">
              {allTools.map((t) => (
                <label key={t} class={`tool-toggle ${form.tools.includes(t) ? "on" : ""}`} data-testid={`builder-tool-${t}`}>
                  <input type="checkbox" checked={form.tools.includes(t)} onChange={() => toggleTool(t)} />
                  {t}
                </label>
              ))}
            </div>
            <form
              class="keyrow"
              onSubmit={(e) => {
                e.preventDefault();
                const t = customTool.trim();
                if (t && !form.tools.includes(t)) set("tools", [...form.tools, t]);
                setCustomTool("");
              }}
            >
              <input
                class="input mono"
                placeholder="Other tool, e.g. mcp__github__create_issue"
                value={customTool}
                onInput={(e) => setCustomTool((e.target as HTMLInputElement).value)}
              />
              <button class="btn sm" type="submit">
                <Icon name="plus" size={13} /> Add
              </button>
            </form>
            <FieldErr errors={errors} paths={["allowed_tools"]} />
          </Section>

          <Section title="System prompt" icon="brain">
            <div class="segmented">
              <label class={form.promptMode === "preset" ? "on" : ""}>
                <input type="radio" name="pm" checked={form.promptMode === "preset"} onChange={() => set("promptMode", "preset")} />
                Claude Code preset + append
              </label>
              <label class={form.promptMode === "custom" ? "on" : ""}>
                <input type="radio" name="pm" checked={form.promptMode === "custom"} onChange={() => set("promptMode", "custom")} data-testid="builder-prompt-custom" />
                Custom prompt
              </label>
            </div>
            {form.promptMode === "preset" ? (
              <textarea
                class={`${cls("system_prompt")} mono`}
                rows={4}
                placeholder="Extra instructions appended to Claude Code's system prompt (optional)"
                value={form.promptAppend}
                onInput={inp("promptAppend")}
                data-testid="builder-prompt"
              />
            ) : (
              <textarea
                class={`${cls("system_prompt")} mono`}
                rows={8}
                placeholder="You are a helpful agent that…"
                value={form.promptText}
                onInput={inp("promptText")}
                data-testid="builder-prompt"
              />
            )}
            <FieldErr errors={errors} paths={["system_prompt"]} />
          </Section>

          <Section title="Resource limits" icon="cpu">
            <div class="form-row four">
              <label class="field">
                <span class="field-label">CPUs</span>
                <input class={cls("resource_limits.cpu_quota")} value={form.cpus} onInput={inp("cpus")} inputMode="decimal" data-testid="builder-cpus" />
                <FieldErr errors={errors} paths={["resource_limits.cpu_quota"]} />
              </label>
              <label class="field">
                <span class="field-label">Memory</span>
                <input class={`${cls("resource_limits.memory_limit")} mono`} value={form.memory} onInput={inp("memory")} placeholder="4g" data-testid="builder-memory" />
                <FieldErr errors={errors} paths={["resource_limits.memory_limit"]} />
              </label>
              <label class="field">
                <span class="field-label">Storage</span>
                <input class={`${cls("resource_limits.storage_limit")} mono`} value={form.storage} onInput={inp("storage")} placeholder="10g" />
                <FieldErr errors={errors} paths={["resource_limits.storage_limit"]} />
              </label>
              <label class="field">
                <span class="field-label">Max processes</span>
                <input class={cls("resource_limits.pids_limit")} value={form.pids} onInput={inp("pids")} inputMode="numeric" />
                <FieldErr errors={errors} paths={["resource_limits.pids_limit"]} />
              </label>
            </div>
            <FieldErr errors={errors} paths={["resource_limits"]} />
            <details class="advanced">
              <summary>Environment variables</summary>
              <textarea class={`${cls("env")} mono`} rows={3} placeholder={"KEY=value\nOTHER=value"} value={form.env} onInput={inp("env")} />
              <FieldErr errors={errors} paths={["env"]} />
            </details>
          </Section>

          <Section
            title="Sub-agents"
            icon="bot"
            aside={
              <button class="btn sm" onClick={() => set("agents", [...form.agents, emptyAgent()])} data-testid="builder-add-agent">
                <Icon name="plus" size={13} /> Add sub-agent
              </button>
            }
          >
            {form.agents.length === 0 && <div class="muted small">No sub-agents. The main agent can delegate to sub-agents with the Task tool.</div>}
            {form.agents.map((a, i) => (
              <div class="subform" key={i}>
                <div class="form-row">
                  <label class="field">
                    <span class="field-label">Name</span>
                    <input class={`${cls(`agents.${a.name}`)} mono`} value={a.name} onInput={(e) => setAgent(i, { name: (e.target as HTMLInputElement).value })} placeholder="code-reviewer" />
                  </label>
                  <label class="field">
                    <span class="field-label">Model</span>
                    <select class="input" value={a.model} onChange={(e) => setAgent(i, { model: (e.target as HTMLSelectElement).value })}>
                      <option value="">inherit</option>
                      <option value="sonnet">sonnet</option>
                      <option value="opus">opus</option>
                      <option value="haiku">haiku</option>
                    </select>
                  </label>
                  <button class="icon-btn" title="Remove" onClick={() => set("agents", form.agents.filter((_, j) => j !== i))}>
                    <Icon name="trash" size={14} />
                  </button>
                </div>
                <label class="field">
                  <span class="field-label">Description (when to use it)</span>
                  <input class="input" value={a.description} onInput={(e) => setAgent(i, { description: (e.target as HTMLInputElement).value })} />
                </label>
                <label class="field">
                  <span class="field-label">Prompt</span>
                  <textarea class="input mono" rows={3} value={a.prompt} onInput={(e) => setAgent(i, { prompt: (e.target as HTMLTextAreaElement).value })} />
                </label>
                <label class="field">
                  <span class="field-label">Tools (comma separated, empty = inherit)</span>
                  <input class="input mono" value={a.tools} onInput={(e) => setAgent(i, { tools: (e.target as HTMLInputElement).value })} placeholder="Read, Grep, Glob" />
                </label>
                <FieldErr errors={errors} paths={[`agents.${a.name}`]} />
              </div>
            ))}
            <FieldErr errors={errors} paths={["agents"]} />
          </Section>

          <Section
            title="MCP servers"
            icon="plug"
            aside={
              <button class="btn sm" onClick={() => set("mcp", [...form.mcp, emptyMcp()])} data-testid="builder-add-mcp">
                <Icon name="plus" size={13} /> Add server
              </button>
            }
          >
            {form.mcp.length === 0 && (
              <div class="muted small">
                No MCP servers. Use <code>{"${NAME}"}</code> in env values or headers for credentials asked at launch.
              </div>
            )}
            {form.mcp.map((m, i) => (
              <div class="subform" key={i}>
                <div class="form-row">
                  <label class="field">
                    <span class="field-label">Name</span>
                    <input class={`${cls(`mcp_servers.${m.name}`)} mono`} value={m.name} onInput={(e) => setMcp(i, { name: (e.target as HTMLInputElement).value })} placeholder="github" />
                  </label>
                  <label class="field">
                    <span class="field-label">Transport</span>
                    <select class="input" value={m.type} onChange={(e) => setMcp(i, { type: (e.target as HTMLSelectElement).value as McpForm["type"] })}>
                      <option value="stdio">stdio</option>
                      <option value="sse">sse</option>
                      <option value="http">http</option>
                    </select>
                  </label>
                  <button class="icon-btn" title="Remove" onClick={() => set("mcp", form.mcp.filter((_, j) => j !== i))}>
                    <Icon name="trash" size={14} />
                  </button>
                </div>
                {m.type === "stdio" ? (
                  <>
                    <label class="field">
                      <span class="field-label">Command</span>
                      <input class="input mono" value={m.command} onInput={(e) => setMcp(i, { command: (e.target as HTMLInputElement).value })} placeholder="npx" />
                    </label>
                    <div class="form-row">
                      <label class="field">
                        <span class="field-label">Arguments (one per line)</span>
                        <textarea class="input mono" rows={3} value={m.args} onInput={(e) => setMcp(i, { args: (e.target as HTMLTextAreaElement).value })} />
                      </label>
                      <label class="field">
                        <span class="field-label">Env (KEY=value per line)</span>
                        <textarea class="input mono" rows={3} value={m.env} onInput={(e) => setMcp(i, { env: (e.target as HTMLTextAreaElement).value })} placeholder={"GITHUB_TOKEN=${GITHUB_TOKEN}"} />
                      </label>
                    </div>
                  </>
                ) : (
                  <>
                    <label class="field">
                      <span class="field-label">URL</span>
                      <input class="input mono" value={m.url} onInput={(e) => setMcp(i, { url: (e.target as HTMLInputElement).value })} placeholder="https://…" />
                    </label>
                    <label class="field">
                      <span class="field-label">Headers (Name: value per line)</span>
                      <textarea class="input mono" rows={2} value={m.headers} onInput={(e) => setMcp(i, { headers: (e.target as HTMLTextAreaElement).value })} />
                    </label>
                  </>
                )}
                <FieldErr errors={errors} paths={[`mcp_servers.${m.name}`]} />
              </div>
            ))}
            <FieldErr errors={errors} paths={["mcp_servers"]} />
          </Section>
        </div>

        <aside class="builder-side">
          <div class="card side-card">
            <div class="validation" data-testid="builder-validation" data-state={validation.state}>
              {validation.state === "checking" || validation.state === "idle" ? (
                <span class="muted">
                  <Spinner /> Checking…
                </span>
              ) : validation.state === "valid" ? (
                <span class="ok-text">
                  <Icon name="check" size={14} /> Valid configuration
                </span>
              ) : validation.state === "invalid" ? (
                <div class="err-text">
                  <div>
                    <Icon name="alert" size={14} /> {validation.errors.length} problem{validation.errors.length === 1 ? "" : "s"}
                  </div>
                  <ul class="error-list" data-testid="builder-errors">
                    {validation.errors.map((e, i) => (
                      <li key={i}>
                        {e.field && <code>{e.field}</code>} {e.message}
                      </li>
                    ))}
                  </ul>
                </div>
              ) : (
                <span class="warn-text" title={validation.error.hint}>
                  <Icon name="alert" size={14} /> Can't validate: {validation.error.title}
                </span>
              )}
            </div>
            <ApiKeyField compact />
            <ErrorBanner error={saveErr} onDismiss={() => setSaveErr(null)} testid="save-error" />
            <ErrorBanner error={launchErr} onDismiss={() => setLaunchErr(null)} testid="launch-error" />
            <div class="side-actions">
              <button class="btn" onClick={save} disabled={saving || validation.state === "invalid"} data-testid="builder-save">
                {saving ? <Spinner /> : <Icon name="download" size={13} />} Save
              </button>
              <button
                class="btn primary"
                onClick={() => launch(config.id || "inline", config.name || "custom", declaredCredentials(config), config)}
                disabled={launching !== null || validation.state === "invalid"}
                data-testid="builder-launch"
              >
                {launching ? <Spinner /> : <Icon name="play" size={13} />} {launching ? "Starting…" : "Launch"}
              </button>
            </div>
            <HealthBanner />
          </div>
          <div class="card side-card yaml-card">
            <div class="form-section-head">
              <h3>YAML</h3>
              <button
                class="btn ghost sm"
                onClick={() => {
                  navigator.clipboard?.writeText(yaml).then(() => toast("YAML copied"));
                }}
              >
                <Icon name="copy" size={13} /> Copy
              </button>
            </div>
            <Code code={yaml} lang="yaml" testid="builder-yaml" class="yaml-preview" />
          </div>
        </aside>
      </div>
      {dialog}
    </div>
  );
}
