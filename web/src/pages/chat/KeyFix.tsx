import { useState } from "preact/hooks";
import { rememberSessionKey } from "../../store";

/** Enter the API key a session was launched with (remembered for that session). */
export function KeyFix({ sid, onUse }: { sid: string; onUse: () => void }) {
  const [v, setV] = useState("");
  return (
    <form
      class="keyrow"
      onSubmit={(e) => {
        e.preventDefault();
        if (!v.trim()) return;
        rememberSessionKey(sid, v.trim());
        onUse();
      }}
    >
      <input
        class="input mono"
        type="password"
        placeholder="The API key this session was launched with"
        value={v}
        onInput={(e) => setV((e.target as HTMLInputElement).value)}
        data-testid="session-key-input"
      />
      <button class="btn sm primary" type="submit">
        Use this key
      </button>
    </form>
  );
}
