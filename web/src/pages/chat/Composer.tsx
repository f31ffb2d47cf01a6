import { Icon, Spinner } from "../../components/Icon";
import { ErrorBanner } from "../../components/ui";
import type { TurnControl } from "./useTurnControl";

/** The message box with Send, or Stop while a turn runs. */
export function Composer({ ctl, running, stopped, unavailable }: { ctl: TurnControl; running: boolean; stopped: boolean; unavailable: boolean }) {
  const { input, pending, stopping } = ctl;
  return (
    <div class="composer-wrap">
      <ErrorBanner error={ctl.sendErr} onDismiss={() => ctl.setSendErr(null)} testid="send-error" />
      <form
        class={`composer ${running ? "busy" : ""}`}
        onSubmit={(e) => {
          e.preventDefault();
          void ctl.send();
        }}
      >
        <textarea
          class="composer-input"
          rows={1}
          placeholder={stopped ? "This session has ended." : running ? "The agent is working… (Stop to interrupt)" : "Message the agent…  (Enter to send, Shift+Enter for a new line)"}
          value={input}
          disabled={stopped || unavailable}
          data-testid="chat-input"
          onInput={(e) => {
            const el = e.target as HTMLTextAreaElement;
            ctl.setInput(el.value);
            el.style.height = "auto";
            el.style.height = `${Math.min(240, el.scrollHeight)}px`;
          }}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
              e.preventDefault();
              void ctl.send();
            }
          }}
        />
        {running || pending ? (
          <button
            type="button"
            class="btn danger composer-btn"
            onClick={ctl.interrupt}
            disabled={stopping || !running}
            data-testid="stop-button"
            title="Interrupt the running turn (Esc); the session stays"
          >
            {stopping ? <Spinner size={13} /> : <Icon name="stop" size={13} />} {stopping ? "Stopping…" : "Stop"}
          </button>
        ) : (
          <button type="submit" class="btn primary composer-btn" disabled={!input.trim() || stopped || unavailable} data-testid="send-button">
            <Icon name="send" size={13} /> Send
          </button>
        )}
      </form>
    </div>
  );
}
