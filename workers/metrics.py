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
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 90),
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

        self.pool_ready = Gauge(
            "agc_worker_pool_ready", "Warm slots ready for a launch.", registry=self.registry
        )
        self.pool_size = Gauge(
            "agc_worker_pool_size", "Warm slots this worker aims to keep.", registry=self.registry
        )
        self.pool_memory = Gauge(
            "agc_worker_pool_memory_bytes",
            "Memory the ready warm slots use (each measured when it became ready).",
            registry=self.registry,
        )
        self.pool_slots = Counter(
            "agc_worker_pool_slots_total",
            "Warm slots by what happened to them (made, failed, discarded).",
            ["event"],
            registry=self.registry,
        )
        self.pool_claims = Counter(
            "agc_worker_pool_claims_total",
            "Launches by warm-pool outcome (hit, stale, dead, cold).",
            ["outcome"],
            registry=self.registry,
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose ``/metrics`` over HTTP (a daemon thread; gone with the process)."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)
