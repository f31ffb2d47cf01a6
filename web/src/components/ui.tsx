// Shared small UI pieces: error banner, modal, status badge, meters, toasts.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { HumanError } from "../errors";
import { Icon } from "./Icon";

export function ErrorBanner({
  error,
  onDismiss,
  children,
  testid = "error-banner",
}: {
  error: HumanError | null;
  onDismiss?: () => void;
  children?: ComponentChildren;
  testid?: string;
}) {
  if (!error) return null;
  return (
    <div class="banner banner-error" role="alert" data-testid={testid} data-status={error.status}>
      <Icon name="alert" size={18} class="banner-icon" />
      <div class="banner-body">
        <div class="banner-title">{error.title}</div>
        <div class="banner-hint">{error.hint}</div>
        {error.detail && <div class="banner-detail">{error.detail}</div>}
        {error.fields && (
          <ul class="banner-fields">
            {error.fields.map((f, i) => (
              <li key={i}>
                {f.field && <code>{f.field}</code>} {f.message}
              </li>
            ))}
          </ul>
        )}
        {children}
      </div>
      {onDismiss && (
        <button class="icon-btn" onClick={onDismiss} aria-label="Dismiss">
          <Icon name="x" />
        </button>
      )}
    </div>
  );
}

export function Modal({
  title,
  onClose,
  children,
  footer,
  testid,
  wide,
}: {
  title: ComponentChildren;
  onClose: () => void;
  children: ComponentChildren;
  footer?: ComponentChildren;
  testid?: string;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") onClose();
    };
    window.addEventListener("keydown", onKey);
    const first = ref.current?.querySelector<HTMLElement>("input, textarea, select, button.primary");
    first?.focus();
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  return (
    <div class="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div class={`modal ${wide ? "modal-wide" : ""}`} role="dialog" aria-modal="true" data-testid={testid} ref={ref}>
        <div class="modal-head">
          <div class="modal-title">{title}</div>
          <button class="icon-btn" onClick={onClose} aria-label="Close">
            <Icon name="x" />
          </button>
        </div>
        <div class="modal-body">{children}</div>
        {footer && <div class="modal-foot">{footer}</div>}
      </div>
    </div>
  );
}

const STATUS_TONE: Record<string, string> = {
  starting: "info",
  running: "ok",
  idle: "ok",
  busy: "busy",
  waiting: "warn",
  stopping: "warn",
  stopped: "muted",
  failed: "err",
};

export function StatusBadge({ status, testid }: { status: string | null | undefined; testid?: string }) {
  const s = status ?? "unknown";
  return (
    <span class={`badge badge-${STATUS_TONE[s] ?? "muted"}`} data-testid={testid} data-status={s}>
      <span class="dot" />
      {s}
    </span>
  );
}

export function Meter({ value, max, label, title }: { value: number | null; max: number | null; label: string; title?: string }) {
  const pct = value != null && max ? Math.max(0, Math.min(100, (value / max) * 100)) : null;
  const tone = pct == null ? "" : pct > 90 ? "err" : pct > 70 ? "warn" : "ok";
  return (
    <div class="meter" title={title}>
      <div class="meter-bar">
        <div class={`meter-fill ${tone}`} style={{ width: `${pct ?? 0}%` }} />
      </div>
      <div class="meter-label">{label}</div>
    </div>
  );
}

export function Empty({ icon, title, children }: { icon: string; title: string; children?: ComponentChildren }) {
  return (
    <div class="empty">
      <Icon name={icon} size={28} />
      <div class="empty-title">{title}</div>
      {children && <div class="empty-body">{children}</div>}
    </div>
  );
}

// --- toasts -----------------------------------------------------------------
interface Toast {
  id: number;
  text: string;
  tone: "ok" | "err" | "info";
}
let toastId = 0;
const toastListeners = new Set<(t: Toast[]) => void>();
let toasts: Toast[] = [];

export function toast(text: string, tone: Toast["tone"] = "ok") {
  const t = { id: ++toastId, text, tone };
  toasts = [...toasts, t];
  toastListeners.forEach((l) => l(toasts));
  setTimeout(() => {
    toasts = toasts.filter((x) => x.id !== t.id);
    toastListeners.forEach((l) => l(toasts));
  }, 4000);
}

export function Toasts() {
  const [list, setList] = useState<Toast[]>(toasts);
  useEffect(() => {
    toastListeners.add(setList);
    return () => void toastListeners.delete(setList);
  }, []);
  return (
    <div class="toasts" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} class={`toast toast-${t.tone}`} data-testid="toast">
          {t.text}
        </div>
      ))}
    </div>
  );
}

/** Re-render every `ms` (for "3m ago" labels). */
export function useTick(ms: number) {
  const [, set] = useState(0);
  useEffect(() => {
    const t = setInterval(() => set((x) => x + 1), ms);
    return () => clearInterval(t);
  }, [ms]);
}
