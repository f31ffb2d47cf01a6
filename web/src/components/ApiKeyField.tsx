// The Anthropic API key field (kept in localStorage only).
import { useEffect, useState } from "preact/hooks";
import { useApiKey } from "../store";
import { Icon } from "./Icon";

export function ApiKeyField({ compact = false }: { compact?: boolean }) {
  const [key, setKey] = useApiKey();
  const [show, setShow] = useState(false);
  const [draft, setDraft] = useState(key);
  useEffect(() => setDraft(key), [key]);
  return (
    <div class={`keybox ${compact ? "compact" : ""}`}>
      <label class="field-label" for="api-key">
        <Icon name="key" size={14} /> Anthropic API key
      </label>
      <div class="keyrow">
        <input
          id="api-key"
          class="input mono"
          type={show ? "text" : "password"}
          placeholder="sk-ant-…"
          autocomplete="off"
          spellcheck={false}
          value={draft}
          data-testid="api-key-input"
          onInput={(e) => {
            const v = (e.target as HTMLInputElement).value;
            setDraft(v);
            setKey(v);
          }}
        />
        <button class="icon-btn" type="button" onClick={() => setShow(!show)} aria-label={show ? "Hide key" : "Show key"} title={show ? "Hide" : "Show"}>
          <Icon name={show ? "eyeOff" : "eye"} />
        </button>
        {key && (
          <button class="btn ghost sm" type="button" onClick={() => setKey("")} data-testid="forget-key">
            Forget
          </button>
        )}
      </div>
      {!compact && (
        <div class="field-help">
          Kept only in this browser (localStorage). It is sent only to this AgCluster server, when you launch a session and to open your sessions.
        </div>
      )}
    </div>
  );
}
