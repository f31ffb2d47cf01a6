// Building blocks of the builder's form sections.
import type { ComponentChildren } from "preact";
import type { FieldError } from "../../api";
import { fieldMatches } from "../../builder";
import { Icon } from "../../components/Icon";
import type { BuilderFormApi } from "./useBuilderForm";

/** What every form section gets: the form and its setters, and the validation errors. */
export interface SectionProps {
  f: BuilderFormApi;
  errors: FieldError[];
}

/** The errors that name one of `paths`, under the field. */
export function FieldErr({ errors, paths }: { errors: FieldError[]; paths: string[] }) {
  const mine = errors.filter((e) => fieldMatches(e.field, ...paths));
  if (!mine.length) return null;
  return (
    <div class="field-error" data-testid="field-error">
      {mine.map((e, i) => (
        <div key={i}>{e.message}</div>
      ))}
    </div>
  );
}

export function Section({ title, icon, children, aside }: { title: string; icon: string; children: ComponentChildren; aside?: ComponentChildren }) {
  return (
    <section class="card form-section">
      <div class="form-section-head">
        <h3>
          <Icon name={icon} size={15} /> {title}
        </h3>
        {aside}
      </div>
      {children}
    </section>
  );
}
