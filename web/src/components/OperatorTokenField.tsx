// The operator token that saving or deleting a custom config needs (asked for where it is used).
import { useState } from "preact/hooks";
import { getOperatorToken, setOperatorToken } from "../store";
import { Icon } from "./Icon";

export function OperatorTokenField() {
  const [token, setToken] = useState(getOperatorToken());
  return (
    <div class="keybox compact">
      <label class="field-label" for="operator-token">
        <Icon name="key" size={14} /> Operator token
      </label>
      <div class="keyrow">
        <input
          id="operator-token"
          class="input mono"
          type="password"
          placeholder="printed by agcluster up"
          autocomplete="off"
          spellcheck={false}
          value={token}
          data-testid="operator-token-input"
          onInput={(e) => {
            const v = (e.target as HTMLInputElement).value;
            setToken(v);
            setOperatorToken(v);
          }}
        />
      </div>
      <div class="field-help">Saving needs the platform operator's token (AGC_OPERATOR_TOKEN). Kept in this tab only.</div>
    </div>
  );
}
