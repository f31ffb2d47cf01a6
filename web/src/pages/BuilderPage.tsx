// /builder[?from=<id>]: compose a custom config, checked live by the API, with a YAML preview;
// save it or launch it. The sections and hooks live in ./builder/.
import { useMemo, useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { declaredCredentials, formToConfig } from "../builder";
import { ErrorBanner, toast } from "../components/ui";
import { humanize, type HumanError } from "../errors";
import { useLauncher } from "../hooks/useLauncher";
import { getOperatorToken } from "../store";
import { AgentsSection } from "./builder/AgentsSection";
import { BuilderSide } from "./builder/BuilderSide";
import { IdentitySection } from "./builder/IdentitySection";
import { LimitsSection } from "./builder/LimitsSection";
import { McpSection } from "./builder/McpSection";
import { PermissionsSection } from "./builder/PermissionsSection";
import { PromptSection } from "./builder/PromptSection";
import { ToolsSection } from "./builder/ToolsSection";
import { useBuilderForm } from "./builder/useBuilderForm";
import { useValidation } from "./builder/useValidation";
import { useYaml } from "./builder/useYaml";

export function BuilderPage({ from }: { from: string | null }) {
  const f = useBuilderForm(from);
  const [saving, setSaving] = useState(false);
  const [saveErr, setSaveErr] = useState<HumanError | null>(null);
  const { launch, launching, error: launchErr, setError: setLaunchErr, dialog } = useLauncher();

  const config = useMemo(() => formToConfig(f.form), [f.form]);
  const yaml = useYaml(config);
  const [validation, setValidation] = useValidation(config);
  const errors = validation.state === "invalid" ? validation.errors : [];

  const save = async () => {
    setSaving(true);
    setSaveErr(null);
    try {
      await api.saveCustom(config, getOperatorToken());
      toast(`Saved “${config.name}” (${config.id})`);
    } catch (e) {
      setSaveErr(humanize(e, "save"));
      if (e instanceof ApiError && e.status === 422 && e.errors.length) setValidation({ state: "invalid", errors: e.errors });
    } finally {
      setSaving(false);
    }
  };

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
              if (v === "__new") f.reset();
              else if (v) void f.loadFrom(v);
            }}
          >
            <option value="">—</option>
            <option value="__new">Blank</option>
            {f.presets.map((p) => (
              <option value={p.id} key={p.id}>
                {p.name} ({p.source ?? "preset"})
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorBanner error={f.loadErr} onDismiss={f.clearLoadErr} />
      <div class="builder-grid">
        <div class="builder-form">
          <IdentitySection f={f} errors={errors} />
          <ToolsSection f={f} errors={errors} />
          <PermissionsSection f={f} errors={errors} />
          <PromptSection f={f} errors={errors} />
          <LimitsSection f={f} errors={errors} />
          <AgentsSection f={f} errors={errors} />
          <McpSection f={f} errors={errors} />
        </div>
        <BuilderSide
          validation={validation}
          yaml={yaml}
          saving={saving}
          saveErr={saveErr}
          onDismissSaveErr={() => setSaveErr(null)}
          onSave={save}
          launching={launching !== null}
          launchErr={launchErr}
          onDismissLaunchErr={() => setLaunchErr(null)}
          onLaunch={() => launch(config.id || "inline", config.name || "custom", declaredCredentials(config), config)}
        />
      </div>
      {dialog}
    </div>
  );
}
