"""A lost host, fast: two "hosts" are two in-memory providers (each sees only its own
containers), the workers are the real ``workers`` parts on real NATS and Redis.

A worker dies with its host: no live worker can see its containers, so nobody adopts its
sessions, and after ``AGC_LOST_HOST_TIMEOUT`` the next reconcile pass ends them with the reason.
A dead worker whose containers a live worker *can* see is adopted, never ended.
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
from nats.js.errors import NotFoundError

from agcluster.procs import Service
from broker import subjects
from broker.commands import Chat, Launch, encode_command
from broker.sealing import Sealer
from broker.state import SessionRecord, SessionStore
from tests.support.memory_provider import MemoryProvider
from tests.support.wait import until
from workers.settings import WorkerSettings
from workers.worker import Worker

CONFIG: dict[str, Any] = {"id": "fake", "name": "Fake"}


@dataclass
class Hosts:
    nats: Service
    redis: Service
    secret: str
    nc: NATS
    store: SessionStore
    cluster: str = field(default_factory=lambda: f"t-{uuid.uuid4().hex[:8]}")
    workers: list[Worker] = field(default_factory=list)
    providers: list[MemoryProvider] = field(default_factory=list)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def host(self) -> MemoryProvider:
        """A new host: a Docker engine of its own, whose containers only its workers see."""
        p = MemoryProvider()
        self.providers.append(p)
        return p

    async def worker(self, wid: str, host: MemoryProvider, **extra: Any) -> Worker:
        w = Worker(
            WorkerSettings(
                nats_url=self.nats.url,
                redis_url=self.redis.url,
                secret_key=self.secret,  # type: ignore[arg-type]
                worker_id=wid,
                cluster=self.cluster,
                heartbeat_interval=0.1,
                heartbeat_ttl=0.5,
                **extra,
            ),
            provider=host,
        )
        self.workers.append(w)
        await w.assemble()
        await w.upkeep.heartbeat_once()
        return w

    async def launch(self, w: Worker) -> str:
        sid = f"conv-{uuid.uuid4().hex}"
        sealer = Sealer(self.secret)
        await self.store.create(
            SessionRecord(
                session_id=sid,
                agent_id="agent-x",
                config_id="fake",
                key_hash=sealer.key_hash("sk-test"),
                sealed_api_key=sealer.seal("sk-test", context=sid),
            )
        )
        await self.store.save_config(sid, msgspec.json.encode(CONFIG))
        self.events[sid] = []
        sub = await self.nc.subscribe(subjects.events(sid))

        async def collect() -> None:
            async for msg in sub.messages:
                self.events[sid].append(msgspec.json.decode(msg.data))

        asyncio.get_running_loop().create_task(collect())
        await w.launcher.launch(
            Launch(
                session_id=sid,
                agent_id="agent-x",
                config_id="fake",
                config=CONFIG,
                sealed_api_key=await self._sealed(sid),
            )
        )
        return sid

    async def _sealed(self, sid: str) -> str:
        rec = await self.store.get(sid)
        assert rec is not None
        return rec.sealed_api_key

    async def lose(self, w: Worker) -> None:
        """The worker's host vanishes: the process is gone without a word."""
        self.workers.remove(w)
        w.registry.running = False
        await w.registry.cancel_background()
        for h in list(w.registry.sessions.values()):
            h.stopping = True
            await h.detach()
        await w.registry.nc.close()
        await w._redis.aclose()
        sandbox = getattr(w.registry, "sandbox", None)  # the model gateway's sockets, if any
        if sandbox is not None:
            await sandbox.aclose()  # die with the process

    async def chat(self, sid: str, text: str) -> str:
        turn = f"turn-{uuid.uuid4().hex[:12]}"
        await self.nc.jetstream().publish(
            subjects.session_cmd(sid, "chat"),
            encode_command(Chat(session_id=sid, turn_id=turn, message=text)),
            headers={"Nats-Msg-Id": turn},
        )
        return turn

    async def status(self, sid: str) -> str:
        rec = await self.store.get(sid)
        assert rec is not None
        return rec.status


@pytest.fixture
async def hosts(
    nats_server: Service, redis_server: Service, secret_key: str, nc: NATS, redis: Any
) -> AsyncIterator[Hosts]:
    h = Hosts(nats_server, redis_server, secret_key, nc, SessionStore(redis))
    try:
        yield h
    finally:
        for w in list(h.workers):
            with contextlib.suppress(Exception):
                await w.shutdown()
        for p in h.providers:
            p.close()


async def test_sessions_of_a_lost_host_end_with_the_reason_once_nobody_could_adopt_them(
    hosts: Hosts,
) -> None:
    far, near = hosts.host(), hosts.host()
    a = await hosts.worker("w-far", far)
    sid = await hosts.launch(a)
    # A launch in flight on the lost host: its command would be redelivered, so it stays.
    launching = f"conv-{uuid.uuid4().hex}"
    await hosts.store.create(
        SessionRecord(session_id=launching, agent_id="x", config_id="fake", status="starting")
    )
    await hosts.store.set_owner(launching, "w-far")

    await hosts.lose(a)
    queued = await hosts.chat(sid, "anyone there?")  # waits in JetStream for the lost owner
    b = await hosts.worker("w-near", near, lost_host_timeout=1.0)
    await until(lambda: _dead(hosts, "w-far"), 10, "the lost worker's liveness to lapse")

    # First pass: B cannot see the container, so it cannot adopt; the count starts now.
    await b.reconciler.reconcile()
    assert await hosts.status(sid) == "running"
    assert sid not in b.registry.sessions

    await until(lambda: _lost_for(hosts, "w-far", 1.0), 10, "the timeout to pass")
    await b.reconciler.reconcile()
    assert await hosts.status(sid) == "failed"
    rec = await hosts.store.get(sid)
    assert rec is not None and "w-far" in rec.error and "lost" in rec.error
    await until(lambda: "session.stopped" in _types(hosts, sid), 10, "session.stopped")
    tail = hosts.events[sid][-3:]
    assert [(e["type"], e.get("turn_id"), e.get("code")) for e in tail] == [
        ("error", queued, "host_lost"),  # the chat that never ran
        ("error", None, "host_lost"),  # the session
        ("session.stopped", None, None),
    ]
    assert tail[1]["fatal"] is True and tail[2]["reason"] == "failed"
    # Nothing of it is left to consume; the launch in flight is untouched.
    js = hosts.nc.jetstream()
    with pytest.raises(NotFoundError):
        await js.get_last_msg(subjects.CMD_STREAM, subjects.session_cmd(sid, "chat"))
    with pytest.raises(NotFoundError):
        await js.consumer_info(subjects.CMD_STREAM, subjects.session_consumer(sid))
    assert await hosts.status(launching) == "starting"

    # Once: the next pass (or another worker) finds nothing more to do.
    c = await hosts.worker("w-other", hosts.host(), lost_host_timeout=1.0)
    await b.reconciler.reconcile()
    await c.reconciler.reconcile()
    assert _types(hosts, sid).count("session.stopped") == 1


async def test_a_dead_workers_session_on_a_reachable_host_is_adopted_never_ended(
    hosts: Hosts,
) -> None:
    shared = hosts.host()
    a = await hosts.worker("w-a", shared)
    sid = await hosts.launch(a)
    await hosts.lose(a)
    # Even with no grace at all, adoption comes first in the pass.
    b = await hosts.worker("w-b", shared, lost_host_timeout=0.0)
    await until(lambda: _dead(hosts, "w-a"), 10, "the dead worker's liveness to lapse")
    await b.reconciler.reconcile()
    await b.reconciler.reconcile()
    assert sid in b.registry.sessions
    rec = await hosts.store.get(sid)
    assert rec is not None and rec.owner == "w-b" and rec.status not in ("failed", "stopped")
    assert "session.stopped" not in _types(hosts, sid)
    # And it works: a chat reaches its runner through the adopter.
    turn = await hosts.chat(sid, "still here")
    await until(
        lambda: any(
            e["type"] == "turn.completed" and e.get("turn_id") == turn for e in hosts.events[sid]
        ),
        10,
        "the adopted session's turn",
    )


async def _dead(hosts: Hosts, wid: str) -> bool:
    return not await hosts.store.is_alive(wid)


async def _lost_for(hosts: Hosts, wid: str, seconds: float) -> bool:
    return await hosts.store.dead_for(wid) >= seconds


def _types(hosts: Hosts, sid: str) -> list[str]:
    return [e["type"] for e in hosts.events[sid]]
