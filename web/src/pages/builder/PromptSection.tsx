import { FieldErr, Section, type SectionProps } from "./fields";
import { inputClass } from "./logic";

/** The system prompt: Claude Code's preset plus an addition, or a custom prompt. */
export function PromptSection({ f, errors }: SectionProps) {
  const { form, set, inp } = f;
  const cls = (...paths: string[]) => inputClass(errors, ...paths);
  return (
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
  );
}
