import { Code } from "../../components/Code";
import { Icon, Spinner } from "../../components/Icon";
import { ErrorBanner, toast } from "../../components/ui";
import { ApiKeyField, OperatorTokenField } from "../../components/SecretField";
import { HealthBanner } from "../../components/HealthBanner";
import type { HumanError } from "../../errors";
import type { Validation } from "./logic";
import { ValidationStatus } from "./ValidationStatus";

/** The builder's side: verdict, key, Save and Launch, and the YAML preview. */
export function BuilderSide({
  validation,
  yaml,
  saving,
  saveErr,
  onDismissSaveErr,
  onSave,
  launching,
  launchErr,
  onDismissLaunchErr,
  onLaunch,
}: {
  validation: Validation;
  yaml: string;
  saving: boolean;
  saveErr: HumanError | null;
  onDismissSaveErr: () => void;
  onSave: () => void;
  launching: boolean;
  launchErr: HumanError | null;
  onDismissLaunchErr: () => void;
  onLaunch: () => void;
}) {
  const invalid = validation.state === "invalid";
  return (
    <aside class="builder-side">
      <div class="card side-card">
        <ValidationStatus validation={validation} />
        <ApiKeyField compact />
        <OperatorTokenField />
        <ErrorBanner error={saveErr} onDismiss={onDismissSaveErr} testid="save-error" />
        <ErrorBanner error={launchErr} onDismiss={onDismissLaunchErr} testid="launch-error" />
        <div class="side-actions">
          <button class="btn" onClick={onSave} disabled={saving || invalid} data-testid="builder-save">
            {saving ? <Spinner /> : <Icon name="download" size={13} />} Save
          </button>
          <button class="btn primary" onClick={onLaunch} disabled={launching || invalid} data-testid="builder-launch">
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
  );
}
