// Launching a session from a config id or an inline config: the MCP-credentials prompt, the
// launch call, remembering the session's key, and going to its chat.
import { useRef, useState } from "preact/hooks";
import { api } from "../api";
import { CredentialsDialog } from "../components/CredentialsDialog";
import { humanize, type HumanError } from "../errors";
import { navigate } from "../router";
import { rememberSessionKey, useApiKey } from "../store";

/** Launch by config id or inline config; handles the MCP-credentials prompt and navigation. */
export function useLauncher() {
  const [key] = useApiKey();
  const [launching, setLaunching] = useState<string | null>(null);
  const [error, setError] = useState<HumanError | null>(null);
  const [ask, setAsk] = useState<{ id: string; name: string; creds: Record<string, string[]>; config?: unknown } | null>(null);
  const started = useRef(0);

  const doLaunch = async (id: string, config: unknown | undefined, mcpEnv?: Record<string, Record<string, string>>) => {
    if (!key) {
      setError({
        title: "Enter your Anthropic API key first",
        hint: "Paste it into the API key field above. It stays in this browser and is only sent to this AgCluster server.",
        status: 401,
      });
      document.getElementById("api-key")?.focus();
      return;
    }
    setError(null);
    setLaunching(id);
    started.current = Date.now();
    try {
      const body: any = { api_key: key };
      if (config !== undefined) body.config = config;
      else body.config_id = id;
      if (mcpEnv && Object.keys(mcpEnv).length) body.mcp_env = mcpEnv;
      const res = await api.launch(body);
      rememberSessionKey(res.session_id, key);
      navigate(`/chat/${encodeURIComponent(res.session_id)}`);
    } catch (e) {
      setError(humanize(e, "launch"));
    } finally {
      setLaunching(null);
    }
  };

  const launch = (id: string, name: string, creds: Record<string, string[]> | undefined, config?: unknown) => {
    const needs = Object.values(creds ?? {}).some((v) => v && v.length);
    if (needs && key) setAsk({ id, name, creds: creds!, config });
    else void doLaunch(id, config);
  };

  const dialog = ask ? (
    <CredentialsDialog
      creds={ask.creds}
      configName={ask.name}
      onCancel={() => setAsk(null)}
      onSubmit={(env) => {
        const a = ask;
        setAsk(null);
        void doLaunch(a.id, a.config, env);
      }}
    />
  ) : null;

  return { launch, launching, error, setError, dialog };
}
