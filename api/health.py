"""``GET /health``: is the platform able to run agents right now?"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Response, get

from api.services import ServicesDep
from broker.state import WorkerInfo


async def _redis_ok(services: ServicesDep) -> bool:
    try:
        return bool(await asyncio.wait_for(services.redis.ping(), 2.0))
    except Exception:
        return False


async def _nats_ok(services: ServicesDep) -> bool:
    if not services.nc.is_connected:
        return False
    try:
        await asyncio.wait_for(services.nc.flush(), 2.0)
        return True
    except Exception:
        return False


@get("/health", tags=["health"], summary="Health of NATS, Redis and workers")
async def health(services: ServicesDep) -> Response[dict[str, Any]]:
    """200 when NATS, Redis and at least one worker are up; 503 (same body) otherwise."""
    nats_ok, redis_ok = await asyncio.gather(_nats_ok(services), _redis_ok(services))
    workers: dict[str, WorkerInfo] = {}
    if redis_ok:
        try:
            workers = await services.store.live_workers()
        except Exception:
            redis_ok = False
    ok = nats_ok and redis_ok and bool(workers)
    body = {
        "status": "ok" if ok else "degraded",
        "nats": {"ok": nats_ok},
        "redis": {"ok": redis_ok},
        "workers": {
            "alive": len(workers),
            "ids": sorted(workers),
            "sessions": sum(w.sessions for w in workers.values()),
        },
        # The workers' warm pools (AGC_POOL_SIZE): slots ready now, slots they aim for.
        "pool": {
            "ready": sum(w.pool_ready for w in workers.values()),
            "size": sum(w.pool_size for w in workers.values()),
            "memory_bytes": sum(w.pool_memory_bytes for w in workers.values()),
        },
    }
    return Response(body, status_code=200 if ok else 503)
