"""The clients the API holds for its lifetime, made in the lifespan and injected into handlers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import NamedDependency
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from redis.asyncio import Redis

from api.agents.hub import EventHub, HubLimits
from api.limits import Admission, Ceilings, StreamSlots
from api.settings import ApiSettings
from broker.connect import connect_nats, connect_redis, nats_auth
from broker.sealing import Sealer
from broker.state import SessionStore
from broker.streams import DAY, StreamSettings, ensure_streams
from configs.store import ConfigStore


@dataclass(slots=True)
class Services:
    settings: ApiSettings
    nc: NATS
    js: JetStreamContext
    redis: Redis
    store: SessionStore
    sealer: Sealer
    configs: ConfigStore
    hub: EventHub
    # The operator's limits (api/limits.py).
    ceilings: Ceilings
    admission: Admission
    streams: StreamSlots


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Connect NATS and Redis, make sure the streams exist; close everything on shutdown."""
    settings: ApiSettings = app.state.settings
    sealer = Sealer(settings.secret())
    renew: asyncio.Task[None] | None = None
    nc = await connect_nats(settings.nats_url, name="agc-api", auth=nats_auth(settings))
    try:
        redis = await connect_redis(settings)
    except BaseException:
        await nc.close()
        raise
    try:
        js = nc.jetstream()
        store = SessionStore(redis, prefix=settings.redis_prefix)
        await ensure_streams(
            js,
            StreamSettings(
                events_max_age=settings.events_max_age_days * DAY,
                replicas=settings.nats_replicas,
            ),
        )
        app.state.services = Services(
            settings=settings,
            nc=nc,
            js=js,
            redis=redis,
            store=store,
            sealer=sealer,
            configs=ConfigStore(settings.config_dir),
            hub=EventHub(js, _hub_limits(settings)),
            ceilings=Ceilings.from_settings(settings),
            admission=Admission(store, settings),
            streams=StreamSlots(
                redis,
                prefix=settings.redis_prefix,
                per_key=settings.max_streams_per_key,
                retry_after=settings.retry_after,
            ),
        )
        # Keeps this process's stream leases (api/limits.py) from lapsing while they are open.
        renew = asyncio.create_task(app.state.services.streams.renew())
        yield
    finally:
        if renew is not None:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
        services = getattr(app.state, "services", None)
        if services is not None:
            await services.hub.close()
        await nc.drain()
        await redis.aclose()


def _hub_limits(s: ApiSettings) -> HubLimits:
    return HubLimits(
        max_clients=s.sse_max_clients,
        max_sessions=s.sse_max_sessions,
        client_queue=s.sse_client_queue,
        cache_bytes=s.sse_cache_bytes,
        cache_total_bytes=s.sse_cache_total_bytes,
        max_replays=s.sse_max_replays,
        linger=s.sse_linger,
        keepalive=s.sse_keepalive,
        retry_after=s.retry_after,
        failover_timeout=s.failover_timeout,
    )


# Handlers take ``services: ServicesDep``: injected by name from ``provide_services``.
ServicesDep = NamedDependency[Services]


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services
