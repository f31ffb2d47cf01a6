"""Spreading launches across workers: the least loaded worker takes the next one.

Every worker pulls launches from one JetStream work queue, and JetStream hands a message to the
oldest pull request waiting. Which worker gets a launch therefore depends on when each last
asked, not on how busy each is: with three workers, one can go many launches in a row without
any (it happened in CI). So a worker whose load (sessions plus launches in hand) is above that
of a live peer with room keeps no pull request waiting: it looks at the loads again every
``RECHECK`` seconds, and at the queue only briefly every ``AGC_PLACEMENT_DEFER`` seconds. A
launch reaches a lighter peer at once, and still reaches this worker within that time when
every lighter peer is stuck.

Loads come from the workers' heartbeats (``broker.state``), which a worker refreshes whenever
its own load changes, not only every ``AGC_HEARTBEAT_INTERVAL``.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from redis.exceptions import RedisError

from broker.state import SessionStore, WorkerInfo

log = structlog.get_logger("agc.worker")

# Seconds between a deferring worker's looks at its peers' loads: soon after a lighter peer
# catches up, this worker takes launches again.
RECHECK = 0.05


def peer_load(info: WorkerInfo) -> tuple[int, bool]:
    """A peer's load, and whether it takes launches, from what its heartbeat says."""
    if info.load is None and info.max_sessions is None:
        return 0, False  # a heartbeat that says nothing (unreadable): no reason to hold back
    # A worker from before placement reports no load: its sessions are the best guess.
    load = info.sessions if info.load is None else info.load
    accepting = info.accepting
    if accepting is None:
        accepting = info.max_sessions is None or load < info.max_sessions
    return load, accepting


def lighter_peer(worker_id: str, own_load: int, peers: Mapping[str, WorkerInfo]) -> bool:
    """True when some other live worker that takes launches carries less than ``own_load``."""
    for wid, info in peers.items():
        if wid == worker_id:
            continue
        load, accepting = peer_load(info)
        if accepting and load < own_load:
            return True
    return False


class Placement:
    """Asks, before each pull, whether this worker should leave the next launch to a peer."""

    def __init__(self, store: SessionStore, worker_id: str) -> None:
        self.store = store
        self.worker_id = worker_id

    async def should_defer(self, own_load: int) -> bool:
        if own_load == 0:
            return False  # nobody is lighter than an empty worker
        try:
            peers = await self.store.live_workers()
        except (RedisError, OSError) as exc:
            # Without the peers' loads, take launches as they come rather than hold them.
            log.debug("peer loads unavailable", error=str(exc))
            return False
        return lighter_peer(self.worker_id, own_load, peers)
