// A secret typed into the dashboard (the Anthropic API key, the operator token): one field, shown
// masked, written to its store on every keystroke; each store decides where it is kept.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { getOperatorToken, setOperatorToken, useApiKey } from "../store";
import { Icon } from "./Icon";

export interface SecretFieldProps {
  id: string;
  label: string;
  placeholder: string;
  testId: string;
  value: string;
  onChange: (v: string) => void;
  /** Offer a "Forget" button while there is a value. */
  forgettable?: boolean;
  compact?: boolean;
  help?: ComponentChildren;
}

export function SecretField({ id, label, placeholder, testId, value, onChange, forgettable = false, compact = false, help }: SecretFieldProps) {
  const [show, setShow] = useState(false);
  // The draft follows the stored value when it changes elsewhere (another tab, "Forget").
  const [draft, setDraft] = useState(value);
  useEffect(() => setDraft(value), [value]);
  return (
    <div class={`keybox ${compact ? "compact" : ""}`}>
      <label class="field-label" for={id}>
        <Icon name="key" size={14} /> {label}
      </label>
      <div class="keyrow">
        <input
          id={id}
          class="input mono"
          type={show ? "text" : "password"}
          placeholder={placeholder}
          autocomplete="off"
          spellcheck={false}
          value={draft}
          data-testid={testId}
          onInput={(e) => {
            const v = (e.target as HTMLInputElement).value;
            setDraft(v);
            onChange(v);
          }}
        />
        <button class="icon-btn" type="button" onClick={() => setShow(!show)} aria-label={show ? `Hide ${label}` : `Show ${label}`} title={show ? "Hide" : "Show"}>
          <Icon name={show ? "eyeOff" : "eye"} />
        </button>
        {forgettable && value && (
          <button class="btn ghost sm" type="button" onClick={() => onChange("")} data-testid={`forget-${id}`}>
            Forget
          </button>
        )}
      </div>
      {help && <div class="field-help">{help}</div>}
    </div>
  );
}

/** The Anthropic API key (kept in localStorage only). */
export function ApiKeyField({ compact = false }: { compact?: boolean }) {
  const [key, setKey] = useApiKey();
  return (
    <SecretField
      id="api-key"
      label="Anthropic API key"
      placeholder="sk-ant-…"
      testId="api-key-input"
      value={key}
      onChange={setKey}
      forgettable
      compact={compact}
      help={compact ? undefined : "Kept only in this browser (localStorage). It is sent only to this AgCluster server, when you launch a session and to open your sessions."}
    />
  );
}

/** The operator token that saving or deleting a custom config needs (asked for where it is used). */
export function OperatorTokenField() {
  const [token, setToken] = useState(getOperatorToken());
  return (
    <SecretField
      id="operator-token"
      label="Operator token"
      placeholder="printed by agcluster up"
      testId="operator-token-input"
      value={token}
      onChange={(v) => {
        setToken(v);
        setOperatorToken(v);
      }}
      compact
      help="Saving needs the platform operator's token (AGC_OPERATOR_TOKEN). Kept in this tab only."
    />
  );
}
