// The builder's form: its state, the presets to start from, loading one, and typed setters.
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { emptyForm, type AgentForm, type BuilderForm, type McpForm } from "../../builder";
import { humanize, type HumanError } from "../../errors";
import type { ConfigSummary } from "../../types";
import { formFrom, patchAt, toggled } from "./logic";

export type SetField = <K extends keyof BuilderForm>(k: K, v: BuilderForm[K]) => void;

export function useBuilderForm(from: string | null) {
  const [form, setForm] = useState<BuilderForm>(emptyForm);
  const [presets, setPresets] = useState<ConfigSummary[]>([]);
  const [loadErr, setLoadErr] = useState<HumanError | null>(null);

  useEffect(() => {
    api
      .configs()
      .then((r) => setPresets(r.configs))
      .catch(() => undefined);
  }, []);

  const loadFrom = async (id: string) => {
    try {
      setForm(formFrom(await api.config(id)));
      setLoadErr(null);
    } catch (e) {
      setLoadErr(humanize(e, "configs"));
    }
  };

  useEffect(() => {
    if (from) void loadFrom(from);
  }, [from]);

  const set: SetField = (k, v) => setForm((f) => ({ ...f, [k]: v }));
  return {
    form,
    presets,
    loadErr,
    clearLoadErr: () => setLoadErr(null),
    loadFrom,
    reset: () => setForm(emptyForm()),
    set,
    /** An onInput/onChange handler that sets a string field. */
    inp: (k: keyof BuilderForm) => (e: Event) => set(k, (e.target as HTMLInputElement).value as any),
    toggleTool: (t: string) => set("tools", toggled(form.tools, t)),
    setAgent: (i: number, patch: Partial<AgentForm>) => set("agents", patchAt(form.agents, i, patch)),
    setMcp: (i: number, patch: Partial<McpForm>) => set("mcp", patchAt(form.mcp, i, patch)),
  };
}

export type BuilderFormApi = ReturnType<typeof useBuilderForm>;
