"""Prometheus metrics of a worker, served on ``AGC_METRICS_PORT`` (off when 0)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class WorkerMetrics:
    """The counters a worker keeps; one registry per worker so tests can run several."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.launches = Counter(
            "agc_worker_launches_total",
            "Launches handled, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.launch_seconds = Histogram(
            "agc_worker_launch_seconds",
            "Seconds from launch command to runner ready.",
            buckets=(0.5, 1, 1.5, 2, 3, 5, 10, 30, 90),
            registry=self.registry,
        )
        self.events = Counter(
            "agc_worker_events_total", "Runner events published to NATS.", registry=self.registry
        )
        self.commands = Counter(
            "agc_worker_commands_total",
            "Session commands handled, by verb.",
            ["verb"],
            registry=self.registry,
        )
        self.recoveries = Counter(
            "agc_worker_recoveries_total",
            "Sessions re-attached or restarted, by kind (reattach, adopt, restart, failed).",
            ["kind"],
            registry=self.registry,
        )
        self.sessions = Gauge(
            "agc_worker_sessions", "Sessions this worker owns right now.", registry=self.registry
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose ``/metrics`` over HTTP (a daemon thread; gone with the process)."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)
