"""Workers on in-memory hosts, over real NATS and Redis: the harness of the fast worker tests.

The workers are the real ``workers`` parts; only their provider is a
:class:`~tests.support.memory_provider.MemoryProvider` (a "host": a Docker engine of its own,
whose containers only its workers see, each running an in-process fake runner that speaks the
real stdio protocol). Workers are assembled without their maintenance loops unless asked, so a
test decides exactly when a reconcile or reaper pass happens. Every session's events are
collected from NATS as a client sees them.

Use the ``env`` fixture (registered in ``tests/unit/conftest.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client as NATS
from pydantic import SecretStr
from redis.asyncio import Redis

from agcluster.procs import Service
from broker import subjects
from broker.commands import Chat, Launch, encode_command
from broker.sealing import Sealer
from broker.state import SessionRecord, SessionStore
from tests.support.memory_provider import MemoryProvider
from tests.support.wait import until
from workers.settings import WorkerSettings
from workers.worker import Worker

# The agent config every session here runs (the fake runner only reads its id).
CONFIG: dict[str, Any] = {"id": "fake", "name": "Fake", "resource_limits": {"pids_limit": 64}}
API_KEY = "sk-test"


@dataclass
class Env:
    nats: Service
    redis: Service
    secret: str
    nc: NATS
    store: SessionStore
    # The host most tests share; :meth:`host` makes more.
    provider: MemoryProvider = field(default_factory=MemoryProvider)
    cluster: str = field(default_factory=lambda: f"t-{uuid.uuid4().hex[:8]}")
    workers: list[Worker] = field(default_factory=list)
    hosts: list[MemoryProvider] = field(default_factory=list)
    # Every event published for a session, decoded, in order.
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _followers: list[asyncio.Task[None]] = field(default_factory=list)

    def host(self) -> MemoryProvider:
        """A new host: a Docker engine of its own, whose containers only its workers see."""
        p = MemoryProvider()
        self.hosts.append(p)
        return p

    def settings(self, worker_id: str, **extra: Any) -> WorkerSettings:
        return WorkerSettings(
            nats_url=self.nats.url,
            redis_url=self.redis.url,
            secret_key=SecretStr(self.secret),
            worker_id=worker_id,
            cluster=self.cluster,
            heartbeat_interval=0.1,
            heartbeat_ttl=0.6,
            runner_ready_timeout=10.0,
            # No warm pool unless a test asks for one (the default keeps a slot).
            **{"pool_configs": "", **extra},
        )

    async def worker(
        self,
        worker_id: str,
        host: MemoryProvider | None = None,
        *,
        loops: bool = False,
        **extra: Any,
    ) -> Worker:
        """A worker on ``host`` (the shared one by default): assembled only, or fully started."""
        w = Worker(self.settings(worker_id, **extra), provider=host or self.provider)
        self.workers.append(w)
        if loops:
            await w.start()
        else:
            await w.assemble()
            await w.upkeep.heartbeat_once()
        return w

    async def crash(self, w: Worker) -> None:
        """The worker process dies (or its whole host): no drain, no goodbye; its liveness
        key just lapses."""
        self.workers.remove(w)
        w.registry.running = False
        await w.registry.cancel_background()
        for h in list(w.registry.sessions.values()):
            h.stopping = True
            await h.detach()
        await w.registry.nc.close()
        await w._redis.aclose()
        # Its sockets die with the process (a later worker serves the directories again).
        await w.registry.sandbox.aclose()

    async def shutdown(self, w: Worker) -> None:
        """A clean SIGTERM: the worker detaches and leaves its containers running."""
        self.workers.remove(w)
        await w.shutdown()

    async def record(self, sid: str | None = None, **fields: Any) -> str:
        """A session record as the API writes it before publishing the launch; its events
        are collected from then on."""
        sid = sid or f"conv-{uuid.uuid4().hex}"
        sealer = Sealer(self.secret)
        await self.store.create(
            SessionRecord(
                session_id=sid,
                agent_id="agent-x",
                config_id="fake",
                key_hash=sealer.key_hash(API_KEY),
                sealed_api_key=sealer.seal(API_KEY, context=sid),
                **fields,
            )
        )
        await self.store.save_config(sid, msgspec.json.encode(CONFIG))
        sub = await self.nc.subscribe(subjects.events(sid))
        self.events[sid] = []

        async def collect() -> None:
            async for msg in sub.messages:
                self.events[sid].append(msgspec.json.decode(msg.data))

        self._followers.append(asyncio.create_task(collect()))
        return sid

    async def launch(self, w: Worker) -> str:
        """A new session launched on ``w`` as its launch command would."""
        sid = await self.record()
        rec = await self.store.get(sid)
        assert rec is not None
        await w.launcher.launch(
            Launch(
                session_id=sid,
                agent_id=rec.agent_id,
                config_id="fake",
                config=CONFIG,
                sealed_api_key=rec.sealed_api_key,
            )
        )
        return sid

    def types(self, sid: str) -> list[str]:
        return [e["type"] for e in self.events[sid]]

    def completed(self, sid: str, turn: str) -> bool:
        return any(
            e["type"] == "turn.completed" and e.get("turn_id") == turn for e in self.events[sid]
        )

    async def send(self, sid: str, text: str) -> str:
        """Queue a chat in JetStream as the API does, and return its turn id (no waiting)."""
        turn = f"turn-{uuid.uuid4().hex[:12]}"
        await self.nc.jetstream().publish(
            subjects.session_cmd(sid, "chat"),
            encode_command(Chat(session_id=sid, turn_id=turn, message=text)),
            headers={"Nats-Msg-Id": turn},
        )
        return turn

    async def chat(self, sid: str, text: str) -> str:
        """:meth:`send`, then wait for the turn to complete."""
        turn = await self.send(sid, text)
        await until(lambda: self.completed(sid, turn), 10, f"turn {turn} to complete")
        return turn

    async def status(self, sid: str) -> str:
        rec = await self.store.get(sid)
        assert rec is not None
        return rec.status

    async def owner(self, sid: str) -> str:
        rec = await self.store.get(sid)
        assert rec is not None
        return rec.owner

    async def dead(self, worker_id: str) -> bool:
        return not await self.store.is_alive(worker_id)

    async def close(self) -> None:
        for w in list(self.workers):
            with contextlib.suppress(Exception):
                await w.shutdown()
        for p in (self.provider, *self.hosts):
            p.shut_down()
        for t in self._followers:
            t.cancel()
        await asyncio.gather(*self._followers, return_exceptions=True)


@pytest.fixture
async def env(
    nats_server: Service, redis_server: Service, secret_key: str, nc: NATS, redis: Redis
) -> AsyncIterator[Env]:
    e = Env(nats_server, redis_server, secret_key, nc, SessionStore(redis))
    try:
        yield e
    finally:
        await e.close()
