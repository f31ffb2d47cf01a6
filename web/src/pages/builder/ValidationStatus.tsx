import { Icon, Spinner } from "../../components/Icon";
import type { Validation } from "./logic";

/** The live validation's verdict, with the problems the API found. */
export function ValidationStatus({ validation }: { validation: Validation }) {
  return (
    <div class="validation" data-testid="builder-validation" data-state={validation.state}>
      {validation.state === "checking" || validation.state === "idle" ? (
        <span class="muted">
          <Spinner /> Checking…
        </span>
      ) : validation.state === "valid" ? (
        <span class="ok-text">
          <Icon name="check" size={14} /> Valid configuration
        </span>
      ) : validation.state === "invalid" ? (
        <div class="err-text">
          <div>
            <Icon name="alert" size={14} /> {validation.errors.length} problem{validation.errors.length === 1 ? "" : "s"}
          </div>
          <ul class="error-list" data-testid="builder-errors">
            {validation.errors.map((e, i) => (
              <li key={i}>
                {e.field && <code>{e.field}</code>} {e.message}
              </li>
            ))}
          </ul>
        </div>
      ) : (
        <span class="warn-text" title={validation.error.hint}>
          <Icon name="alert" size={14} /> Can't validate: {validation.error.title}
        </span>
      )}
    </div>
  );
}
