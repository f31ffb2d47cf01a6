// Says when the API is unreachable or no worker is running (launching would fail).
import { useHealth, workersAlive } from "../health";
import { Icon } from "./Icon";
import { ErrorBanner } from "./ui";

export function HealthBanner() {
  const { health, error } = useHealth();
  if (error)
    return (
      <ErrorBanner
        testid="health-banner"
        error={{
          title: "Can't reach the AgCluster API",
          hint: "The server did not answer its health check. Start it (agcluster api, or docker compose up) and this page will recover by itself.",
          status: 0,
        }}
      />
    );
  if (health && workersAlive(health) === 0)
    return (
      <div class="banner banner-warn" data-testid="health-banner">
        <Icon name="alert" size={18} class="banner-icon" />
        <div class="banner-body">
          <div class="banner-title">No worker is running</div>
          <div class="banner-hint">
            Sessions run in containers started by workers, so launching will fail until one is up. Start a worker with <code>agcluster worker</code> (or{" "}
            <code>docker compose up worker</code>).
          </div>
        </div>
      </div>
    );
  return null;
}
