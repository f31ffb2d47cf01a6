import { emptyMcp, type McpForm } from "../../builder";
import { Icon } from "../../components/Icon";
import { FieldErr, Section, type SectionProps } from "./fields";
import { inputClass } from "./logic";

/** MCP servers (stdio, SSE or HTTP). */
export function McpSection({ f, errors }: SectionProps) {
  const { form, set, setMcp } = f;
  const cls = (...paths: string[]) => inputClass(errors, ...paths);
  return (
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
  );
}
