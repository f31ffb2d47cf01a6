import { useState } from "preact/hooks";
import { Icon } from "./components/Icon";
import { Toasts } from "./components/ui";
import { useHealth, workersAlive } from "./health";
import { BuilderPage } from "./pages/BuilderPage";
import { ChatPage } from "./pages/ChatPage";
import { LaunchPage } from "./pages/LaunchPage";
import { SessionsPage } from "./pages/SessionsPage";
import { linkClick, useRoute } from "./router";
import { applyTheme, getTheme, useApiKey, type Theme } from "./store";
import { useWaitingTitle } from "./hooks/useWaitingTitle";

function HealthIndicator() {
  const { health, error } = useHealth();
  const alive = workersAlive(health);
  let tone = "muted";
  let label = "checking…";
  let title = "Checking the API…";
  if (error) {
    tone = "err";
    label = "API unreachable";
    title = "The AgCluster API did not answer /health. Is it running?";
  } else if (health) {
    const parts: string[] = [];
    if (health.nats && !health.nats.ok) parts.push("NATS down");
    if (health.redis && !health.redis.ok) parts.push("Redis down");
    if (alive === 0) parts.push("no worker");
    if (health.status === "ok" && parts.length === 0) {
      tone = "ok";
      label = alive != null ? `${alive} worker${alive === 1 ? "" : "s"}` : "healthy";
      title = "API, NATS and Redis are up";
    } else {
      tone = alive === 0 ? "err" : "warn";
      label = parts.length ? parts.join(", ") : "degraded";
      title =
        alive === 0
          ? "No worker is running: sessions cannot start. Start one with `agcluster worker` (or docker compose up worker)."
          : "The platform reports a degraded state.";
    }
  }
  return (
    <span class={`health health-${tone}`} title={title} data-testid="health-indicator" data-state={tone}>
      <span class="dot" />
      {label}
    </span>
  );
}

function ThemeToggle() {
  const [t, setT] = useState<Theme>(getTheme());
  const next: Record<Theme, Theme> = { auto: "light", light: "dark", dark: "auto" };
  const icon = t === "auto" ? "monitor" : t === "light" ? "sun" : "moon";
  return (
    <button
      class="icon-btn"
      title={`Theme: ${t} (click to change)`}
      aria-label={`Theme: ${t}`}
      data-testid="theme-toggle"
      onClick={() => {
        const n = next[t];
        applyTheme(n);
        setT(n);
      }}
    >
      <Icon name={icon} />
    </button>
  );
}

export function App() {
  const route = useRoute();
  const [key] = useApiKey();
  useWaitingTitle(key);
  const nav = (href: string, label: string, icon: string, active: boolean, testid: string) => (
    <a href={href} onClick={linkClick} class={`nav-link ${active ? "active" : ""}`} data-testid={testid} aria-current={active ? "page" : undefined}>
      <Icon name={icon} size={15} />
      {label}
    </a>
  );
  return (
    <div class={`shell page-${route.page}`}>
      <header class="topbar">
        <a href="/" onClick={linkClick} class="brand">
          <span class="logo" aria-hidden="true">
            <i />
            <i />
            <i />
            <i />
          </span>
          AgCluster
        </a>
        <nav class="nav">
          {nav("/", "Launch", "play", route.page === "launch", "nav-launch")}
          {nav("/builder", "Builder", "wrench", route.page === "builder", "nav-builder")}
          {nav("/sessions", "Sessions", "layers", route.page === "sessions" || route.page === "chat", "nav-sessions")}
        </nav>
        <div class="topbar-right">
          <HealthIndicator />
          <span class={`key-chip ${key ? "set" : ""}`} title={key ? "An API key is stored in this browser" : "No API key yet"} data-testid="key-chip">
            <Icon name="key" size={13} />
            {key ? `…${key.slice(-4)}` : "no key"}
          </span>
          <ThemeToggle />
        </div>
      </header>
      <main class="main">
        {route.page === "launch" && <LaunchPage />}
        {route.page === "builder" && <BuilderPage from={route.from} />}
        {route.page === "chat" && <ChatPage key={route.sid} sid={route.sid} />}
        {route.page === "sessions" && <SessionsPage />}
        {route.page === "notfound" && (
          <div class="page narrow">
            <h1>Page not found</h1>
            <p class="muted">
              Nothing lives at <code>{route.path}</code>.{" "}
              <a href="/" onClick={linkClick}>
                Go to the Launch page
              </a>
              .
            </p>
          </div>
        )}
      </main>
      <Toasts />
    </div>
  );
}
