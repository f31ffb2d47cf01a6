import { emptyAgent } from "../../builder";
import { Icon } from "../../components/Icon";
import { FieldErr, Section, type SectionProps } from "./fields";
import { inputClass } from "./logic";

/** Sub-agents the main agent can delegate to. */
export function AgentsSection({ f, errors }: SectionProps) {
  const { form, set, setAgent } = f;
  const cls = (...paths: string[]) => inputClass(errors, ...paths);
  return (
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
  );
}
