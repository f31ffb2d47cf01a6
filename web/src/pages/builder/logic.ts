// The builder's decisions that do not need a DOM (unit-tested in web/test/builder.test.ts).
import { ApiError, type FieldError } from "../../api";
import { configToForm, fieldMatches, KNOWN_TOOLS, type BuilderForm } from "../../builder";
import { humanize, type HumanError } from "../../errors";
import type { AgentConfig, ConfigSummary } from "../../types";

export type Validation =
  | { state: "idle" }
  | { state: "checking" }
  | { state: "valid" }
  | { state: "invalid"; errors: FieldError[]; detail?: string }
  | { state: "error"; error: HumanError };

/** What a failed validation call means: the config is invalid (400/422), or we cannot tell. */
export function validationFromError(e: unknown): Validation {
  if (e instanceof ApiError && (e.status === 422 || e.status === 400)) {
    return {
      state: "invalid",
      errors: e.errors.length ? e.errors : [{ field: "", message: e.detail || "invalid configuration" }],
      detail: e.detail,
    };
  }
  return { state: "error", error: humanize(e, "validate") };
}

/** The form for a config to start from; a preset becomes a custom copy with its own id. */
export function formFrom(c: AgentConfig): BuilderForm {
  const f = configToForm(c);
  if (c.source !== "custom") {
    f.id = `${c.id}-custom`;
    f.name = `${c.name} (custom)`;
  }
  return f;
}

/** The tools to offer: the known ones, every preset's, and whatever the form already has. */
export function toolChoices(presets: ConfigSummary[], chosen: string[]): string[] {
  const s = new Set(KNOWN_TOOLS);
  presets.forEach((p) => (p.allowed_tools ?? []).forEach((t) => s.add(t)));
  chosen.forEach((t) => s.add(t));
  return [...s];
}

/** `list` with item `i` patched. */
export function patchAt<T>(list: T[], i: number, patch: Partial<T>): T[] {
  return list.map((a, j) => (j === i ? { ...a, ...patch } : a));
}

/** `list` with `item` added, or removed when it is there. */
export function toggled<T>(list: T[], item: T): T[] {
  return list.includes(item) ? list.filter((x) => x !== item) : [...list, item];
}

/** The input's class: "invalid" when an error names one of the paths. */
export function inputClass(errors: FieldError[], ...paths: string[]): string {
  return errors.some((e) => fieldMatches(e.field, ...paths)) ? "input invalid" : "input";
}
