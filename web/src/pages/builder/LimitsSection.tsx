import { FieldErr, Section, type SectionProps } from "./fields";
import { inputClass } from "./logic";

/** Resource limits and environment variables. */
export function LimitsSection({ f, errors }: SectionProps) {
  const { form, inp } = f;
  const cls = (...paths: string[]) => inputClass(errors, ...paths);
  return (
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
  );
}
