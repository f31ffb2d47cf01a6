// Live validation of the config against the API (POST /api/configs/validate), debounced;
// a newer config aborts the check of an older one.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../../api";
import type { AgentConfig } from "../../types";
import { validationFromError, type Validation } from "./logic";

const DEBOUNCE_MS = 450;

export function useValidation(config: AgentConfig) {
  const [validation, setValidation] = useState<Validation>({ state: "idle" });
  const seq = useRef(0);
  useEffect(() => {
    const my = ++seq.current;
    const ctrl = new AbortController();
    setValidation((v) => (v.state === "idle" ? { state: "checking" } : v));
    const t = setTimeout(async () => {
      setValidation((v) => (v.state === "invalid" || v.state === "valid" ? v : { state: "checking" }));
      try {
        await api.validate(config, ctrl.signal);
        if (my === seq.current) setValidation({ state: "valid" });
      } catch (e) {
        if ((e as Error)?.name === "AbortError" || my !== seq.current) return;
        setValidation(validationFromError(e));
      }
    }, DEBOUNCE_MS);
    return () => {
      clearTimeout(t);
      ctrl.abort();
    };
  }, [config]);
  return [validation, setValidation] as const;
}
