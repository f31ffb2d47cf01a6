"""Export the local supervisor's counters at ``/metrics`` when the API runs under ``agcluster up``.

``agcluster up`` keeps ``<state>/up.json`` current (see ``agcluster/instance.py``). Reading it at
scrape time, rather than counting in the API, keeps the counts right across the API's own
restarts, which are among the things counted. Without a live supervisor nothing is exported.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class SupervisorCollector(Collector):
    """``agc_supervisor_{restarts,exits}_total``, ``agc_supervisor_up`` and ``…_crash_loop``."""

    def __init__(self, status_path: Path) -> None:
        self.status_path = status_path

    def _status(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.status_path.read_text())
            os.kill(int(data["pid"]), 0)  # a killed supervisor's file says nothing true
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return data if isinstance(data, dict) else None

    def collect(self) -> Iterator[Metric]:
        status = self._status()
        if status is None:
            return
        restarts = CounterMetricFamily(
            "agc_supervisor_restarts",
            "Restarts of a local-stack process by `agcluster up` after it exited unexpectedly.",
            labels=["process"],
        )
        exits = CounterMetricFamily(
            "agc_supervisor_exits",
            "Unexpected exits of a local-stack process (including failed restarts).",
            labels=["process"],
        )
        up = GaugeMetricFamily(
            "agc_supervisor_up",
            "1 while the process runs under the supervisor.",
            labels=["process"],
        )
        loop = GaugeMetricFamily(
            "agc_supervisor_crash_loop",
            "1 when the supervisor gave up restarting the process (too many exits in a minute).",
            labels=["process"],
        )
        for proc in status.get("processes", []):
            name = str(proc.get("name", ""))
            restarts.add_metric([name], float(proc.get("restarts", 0)))
            exits.add_metric([name], float(proc.get("exits", 0)))
            up.add_metric([name], 1.0 if proc.get("state") == "running" else 0.0)
            loop.add_metric([name], 1.0 if proc.get("state") == "crash-loop" else 0.0)
        yield from (restarts, exits, up, loop)


_collector: SupervisorCollector | None = None


def register(state_dir: Path) -> None:
    """Export ``state_dir``'s supervisor status (once per process; a later call re-points it)."""
    global _collector
    path = state_dir.resolve() / "up.json"
    if _collector is None:
        _collector = SupervisorCollector(path)
        with contextlib.suppress(ValueError):  # already registered by an earlier app
            REGISTRY.register(_collector)
    _collector.status_path = path
