import { PERMISSION_MODES } from "../../builder";
import { FieldErr, Section, type SectionProps } from "./fields";
import { inputClass } from "./logic";

/** Identity: id, name, description, model, permission mode, max turns. */
export function IdentitySection({ f, errors }: SectionProps) {
  const { form, inp } = f;
  const cls = (...paths: string[]) => inputClass(errors, ...paths);
  return (
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
  );
}
