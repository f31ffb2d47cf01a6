import { FieldErr, Section, type SectionProps } from "./fields";
import { inputClass } from "./logic";

const LISTS = [
  ["permAsk", "ask", "Ask a person first", "Bash(git push:*)\nEdit(//workspace/secrets/**)"],
  ["permDeny", "deny", "Always refuse", "Bash(rm -rf:*)"],
  ["permAllow", "allow", "Allow without asking", "Bash(git status:*)"],
] as const;

/** Permission rules in Claude Code's own syntax; "ask" calls wait for an answer in the chat. */
export function PermissionsSection({ f, errors }: SectionProps) {
  const { form, inp } = f;
  const count = LISTS.reduce((n, [k]) => n + form[k].split("\n").filter((l) => l.trim()).length, 0);
  return (
    <Section title="Approvals" icon="key" aside={<span class="muted small">{count} rules</span>}>
      <p class="muted small">
        One rule per line, as Claude Code writes them. Deny beats ask beats allow; ask rules hold even under
        bypassPermissions. A call that asks waits in the chat until someone allows or denies it.
      </p>
      <div class="form-row">
        {LISTS.map(([key, field, label, placeholder]) => (
          <label class="field" key={key}>
            <span class="field-label">{label}</span>
            <textarea
              class={`${inputClass(errors, `permissions.${field}`)} mono`}
              rows={4}
              value={form[key]}
              onInput={inp(key)}
              placeholder={placeholder}
              spellcheck={false}
              data-testid={`builder-permissions-${field}`}
            />
            <FieldErr errors={errors} paths={[`permissions.${field}`]} />
          </label>
        ))}
      </div>
      <label class="field narrow">
        <span class="field-label">Any other call Claude Code would ask about</span>
        <select class="input" value={form.permOtherwise} onChange={inp("permOtherwise")} data-testid="builder-permissions-otherwise">
          <option value="deny">refuse it</option>
          <option value="ask">ask a person</option>
        </select>
        <FieldErr errors={errors} paths={["permissions"]} />
      </label>
    </Section>
  );
}
