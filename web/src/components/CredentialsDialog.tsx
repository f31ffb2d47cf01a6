// Asks for the MCP servers' credentials a config declares, before launching it.
import { useState } from "preact/hooks";
import { Icon } from "./Icon";
import { Modal } from "./ui";

export function CredentialsDialog({
  creds,
  configName,
  onCancel,
  onSubmit,
}: {
  creds: Record<string, string[]>;
  configName: string;
  onCancel: () => void;
  onSubmit: (env: Record<string, Record<string, string>>) => void;
}) {
  const [vals, setVals] = useState<Record<string, Record<string, string>>>({});
  const servers = Object.entries(creds).filter(([, names]) => names && names.length);
  const missing = servers.some(([s, names]) => names.some((n) => !(vals[s]?.[n] ?? "").trim()));
  const submit = (e?: Event) => {
    e?.preventDefault();
    if (!missing) onSubmit(vals);
  };
  return (
    <Modal
      title={
        <>
          <Icon name="plug" /> MCP credentials for {configName}
        </>
      }
      onClose={onCancel}
      testid="mcp-credentials-dialog"
      footer={
        <>
          <button class="btn ghost" onClick={onCancel}>
            Cancel
          </button>
          <button class="btn primary" disabled={missing} onClick={() => submit()} data-testid="mcp-credentials-submit">
            <Icon name="play" size={13} /> Launch
          </button>
        </>
      }
    >
      <form onSubmit={submit}>
        <p class="small muted">
          This configuration's MCP servers need these credentials. They are sent sealed to the worker for this session only and are not stored in your browser.
        </p>
        <p class="small warn-text" data-testid="mcp-credentials-visible">
          <Icon name="alert" size={12} /> These servers run inside the agent's container, so the agent can read these values (it could print them or, where its
          network policy allows, send them out). Give them only credentials you would give the agent itself.
        </p>
        {servers.map(([server, names]) => (
          <fieldset class="cred-group" key={server}>
            <legend>
              <Icon name="plug" size={12} /> {server}
            </legend>
            {names.map((n) => (
              <label class="field" key={n}>
                <span class="field-label mono">{n}</span>
                <input
                  class="input mono"
                  type="password"
                  autocomplete="off"
                  data-testid="mcp-cred-input"
                  data-server={server}
                  data-env={n}
                  value={vals[server]?.[n] ?? ""}
                  onInput={(e) => {
                    const v = (e.target as HTMLInputElement).value;
                    setVals((old) => ({ ...old, [server]: { ...(old[server] ?? {}), [n]: v } }));
                  }}
                />
              </label>
            ))}
          </fieldset>
        ))}
        <button type="submit" hidden />
      </form>
    </Modal>
  );
}
