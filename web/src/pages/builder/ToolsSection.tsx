import { useMemo, useState } from "preact/hooks";
import { Icon } from "../../components/Icon";
import { FieldErr, Section, type SectionProps } from "./fields";
import { toolChoices } from "./logic";

/** The allowed tools: known ones as toggles, any other by name. */
export function ToolsSection({ f, errors }: SectionProps) {
  const { form, set, toggleTool } = f;
  const [customTool, setCustomTool] = useState("");
  const allTools = useMemo(() => toolChoices(f.presets, f.form.tools), [f.presets, f.form.tools]);
  return (
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
  );
}
