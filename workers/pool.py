"""The warm pool: sandboxes started before their session, so a launch is claim plus bind.

A slot is a locked-down container made exactly as a launch would make it, under a session id
minted in advance, whose runner has imported the SDK and (``prestart``) started and
initialised the CLI for one preset. It waits in a Redis ready list (:mod:`broker.pool`).
The API claims a slot atomically when it launches that preset and launches the session under
the slot's id; the launcher then :meth:`WarmPool.take` s it, attaches, and its ``init`` only
binds the session (the runner's side: ``runner.session.AgentSession.bind``). A sandbox is
never used for a second session: it is removed with its session like any other.

This worker refills its slots one at a time (``AGC_POOL_PAUSE`` between starts), replaces a
slot whose preset or image changed, whose runner died or that waited longer than
``AGC_POOL_MAX_IDLE``, and removes every slot of its own on shutdown. A slot container with
no session is the pool's business, not reconciliation's; slots of a worker that died are
removed by whichever worker's sweep finds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
import structlog

from broker.events import peek_event
from broker.pool import PoolStore, SlotRecord, pool_key
from broker.runner_wire import Prestart
from configs.model import AgentConfig
from configs.store import load_presets
from workers.channel import RunnerChannel
from workers.errors import ProviderError, RunnerGone, SlotFailed
from workers.providers.base import ContainerSpec
from workers.sandbox.service import runner_config

if TYPE_CHECKING:
    from workers.registry import Registry

log = structlog.get_logger("agc.pool")

# A claimed slot whose launch never came (the API died between claim and publish) is
# removed after this long.
_CLAIM_GRACE = 120.0


@dataclass(frozen=True, slots=True)
class Target:
    """A config the pool keeps slots for."""

    key: str
    config_id: str
    config: AgentConfig


class WarmPool:
    """This worker's warm slots: refill, sweep, hand one to a launch, drain."""

    def __init__(self, host: Registry, store: PoolStore) -> None:
        self.host = host
        self.store = store
        self.settings = host.settings
        # Slots this worker made that wait for a launch, by session id.
        self.slots: dict[str, SlotRecord] = {}
        self.targets: dict[str, Target] = {}
        self.image_id = ""
        self._making: set[str] = set()
        # Set when a launch takes a slot: the loop refills without waiting out its pause.
        self._claimed = asyncio.Event()
        self.log = log.bind(worker_id=host.worker_id)

    @property
    def enabled(self) -> bool:
        return self.settings.pool_size > 0 and bool(self.settings.pooled_configs())

    @property
    def size(self) -> int:
        """How many slots this worker aims to keep ready."""
        return self.settings.pool_size * len(self.targets) if self.enabled else 0

    @property
    def ready(self) -> int:
        return len(self.slots)

    def memory_bytes(self) -> int:
        """Resident memory of this worker's ready slots, as measured when each became ready."""
        return sum(s.memory_bytes for s in self.slots.values())

    # -- the loop ------------------------------------------------------------------------
    def load_targets(self) -> None:
        """Read the pooled presets (a changed preset gets a new key; its old slots go)."""
        presets = load_presets()
        targets: dict[str, Target] = {}
        for config_id in self.settings.pooled_configs():
            preset = presets.get(config_id)
            if preset is None:
                self.log.warning("AGC_POOL_CONFIGS names no preset", config_id=config_id)
                continue
            wire = preset.to_wire()
            key = pool_key(wire)
            targets[key] = Target(key, config_id, preset)
        self.targets = targets

    async def run(self) -> None:
        """Keep the pool full until the worker drains."""
        if not self.enabled:
            return
        last_load = -1.0
        while self.host.running:
            try:
                if last_load < 0:
                    self.load_targets()
                    await self.remove_leftovers()
                    last_load = time.monotonic()
                elif time.monotonic() - last_load > 30.0:
                    # An edited preset gets a new key: its old slots go at the next sweep.
                    self.load_targets()
                    last_load = time.monotonic()
                await self.sweep()
                made = await self.fill_one()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.warning("pool upkeep failed", error=str(exc) or type(exc).__name__)
                made = False
            self.publish_metrics()
            # Paced: one slot per pause while refilling (or waiting for cold launches to end),
            # a slower check once full.
            refilling = made or self.deferred
            pause = self.settings.pool_pause if refilling else max(self.settings.pool_pause, 2.0)
            # A claim (take) cuts the slower check short: the refill starts at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._claimed.wait(), pause)
            self._claimed.clear()

    @property
    def deferred(self) -> bool:
        """Whether a refill waits for this worker's cold launches (see fill_one)."""
        return self.host.cold_launches > 0 and self.ready < self.size

    def publish_metrics(self) -> None:
        m = self.host.metrics
        m.pool_ready.set(self.ready)
        m.pool_size.set(self.size)
        m.pool_memory.set(self.memory_bytes())

    async def fill_one(self) -> bool:
        """Start one slot for the emptiest target, if any lacks one; True if it made one.

        Not while this worker has cold launches in flight: a slot costs what a cold launch
        costs (a container, the SDK import, the CLI's start), and a burst's misses, which
        somebody waits for, come first (on 2 cores a refill alongside them slowed each).
        """
        if self.host.cold_launches:
            return False
        # Slots count against the worker's room: the pool never crowds out sessions.
        busy = len(self.host.sessions)
        if len(self.slots) + len(self._making) + busy >= self.settings.max_sessions:
            return False
        want = self.settings.pool_size
        counts = {k: 0 for k in self.targets}
        for rec in self.slots.values():
            if rec.key in counts:
                counts[rec.key] += 1
        lacking = [k for k, n in sorted(counts.items(), key=lambda kv: kv[1]) if n < want]
        if not lacking:
            return False
        await self.make(self.targets[lacking[0]])
        return True

    async def make(self, target: Target) -> SlotRecord | None:
        """Start one slot for ``target`` and offer it; None when it could not be made ready."""
        host, provider, settings = self.host, self.host.provider, self.settings
        sid = f"conv-{uuid.uuid4().hex}"
        self._making.add(sid)
        started = time.perf_counter()
        container_id = ""
        # The slot's own sandbox: its socket directory is served (answering 401 until a
        # session is bound to it) before the container that mounts it exists.
        sandbox = host.sandbox.new_name()
        try:
            image_id = await provider.image_id(settings.agent_image)
            await self.store.note(host.worker_id, sid)
            limits = target.config.resource_limits
            spec = ContainerSpec(
                session_id=sid,
                worker_id=host.worker_id,
                cluster=settings.cluster,
                image=settings.agent_image,
                cpu_quota=limits.cpu_quota,
                memory=limits.memory_limit,
                pids_limit=limits.pids_limit,
                tmp_size=settings.tmp_size,
                pool=target.key,
                sandbox=sandbox,
                sandbox_dir=str(await host.sandbox.open(sandbox)),
            )
            container_id = await provider.create(spec)
            reader, writer = await provider.attach(container_id)
            await provider.start(container_id)
            channel = RunnerChannel(reader, writer, session_id=sid)
            try:
                prestarted = await asyncio.wait_for(
                    self._prestart(channel, sid, target), settings.launch_timeout
                )
            finally:
                # Detach: the runner keeps its stdin (docker's StdinOnce is off) and the
                # launch that claims the slot attaches again, from any worker on this engine.
                await channel.close()
            stats = await provider.stats(container_id)
            rec = SlotRecord(
                session_id=sid,
                key=target.key,
                config_id=target.config_id,
                worker_id=host.worker_id,
                container_id=container_id,
                image_id=image_id,
                sandbox=sandbox,
                prestarted=prestarted,
                created_at=time.time(),
                memory_bytes=int((stats or {}).get("memory_bytes") or 0),
            )
            await self.store.offer(rec)
            self.slots[sid] = rec
            self.host.metrics.pool_slots.labels("made").inc()
            self.log.info(
                "warm slot ready",
                session_id=sid,
                config_id=target.config_id,
                seconds=round(time.perf_counter() - started, 3),
                memory_mib=round(rec.memory_bytes / 2**20, 1),
            )
            return rec
        except (ProviderError, RunnerGone, TimeoutError, SlotFailed) as exc:
            self.log.warning(
                "warm slot failed", session_id=sid, error=str(exc) or type(exc).__name__
            )
            self.host.metrics.pool_slots.labels("failed").inc()
            await self._destroy(container_id or None, sid, sandbox)
            return None
        except asyncio.CancelledError:
            # The worker is draining: a half-made slot must not outlive it.
            await asyncio.shield(self._destroy(container_id or None, sid, sandbox))
            raise
        finally:
            self._making.discard(sid)

    async def _prestart(self, channel: RunnerChannel, sid: str, target: Target) -> bool:
        """Send ``prestart`` with what a launch's ``init`` will carry; wait for the answer."""
        # Exactly what the launch's init will carry (binding.init_message): the config as the
        # runner may see it, no environment, no key (the gateway holds it), no MCP credentials.
        await channel.send(
            Prestart(
                session_id=sid,
                config=runner_config(target.config),
                env={},
                worker_id=self.host.worker_id,
            )
        )
        async for env in channel.envelopes():
            data = bytes(env.event)
            if peek_event(data).type != "system":
                continue
            try:
                notice = _notice.decode(data)
            except msgspec.ValidationError:
                continue  # another notice whose data has other fields
            if notice.subtype != "runner.prestarted":
                continue
            if not notice.data.ok:
                raise SlotFailed(notice.data.error or "the CLI did not start")
            return True
        raise RunnerGone(channel.stderr_tail() or "the runner exited before it was ready")

    # -- claims --------------------------------------------------------------------------
    async def take(self, sid: str) -> SlotRecord | None:
        """The slot a launch of ``sid`` claimed, if it is one and still fit for it.

        Only one caller ever gets a given slot (the record is deleted atomically). A slot
        made from an image that has been rebuilt since is removed here and the launch goes
        cold.
        """
        rec = await self.store.take(sid)
        self.slots.pop(sid, None)
        if rec is None:
            return None
        self._claimed.set()
        current = await self.host.provider.image_id(self.settings.agent_image)
        if rec.image_id != current:
            self.log.info("claimed slot is stale (image rebuilt)", session_id=sid)
            self.host.metrics.pool_claims.labels("stale").inc()
            await self._destroy(rec.container_id, sid, rec.sandbox)
            return None
        return rec

    # -- sweeping ------------------------------------------------------------------------
    async def sweep(self) -> None:
        """Drop slots whose preset or image changed, whose runner died, or that waited too long."""
        provider = self.host.provider
        self.image_id = await provider.image_id(self.settings.agent_image)
        now = time.time()
        for sid, rec in list(self.slots.items()):
            reason = ""
            if rec.key not in self.targets:
                reason = "config changed"
            elif rec.image_id != self.image_id:
                reason = "image changed"
            elif now - rec.created_at > self.settings.pool_max_idle:
                reason = "idle too long"
            elif not await provider.is_running(rec.container_id):
                reason = "runner died"
            if reason:
                await self.discard(rec, reason)
                continue
            if not await self.store.is_ready(rec):
                # Claimed by a launch: from now on it is that session's container.
                self.slots.pop(sid, None)
                session = await self.host.store.get(sid)
                if session is not None and session.owner not in ("", self.host.worker_id):
                    # Another worker's launch took it and serves its sockets from now on.
                    await self.host.sandbox.hand_over(rec.sandbox)
                    self.log.info(
                        "warm slot taken by another worker: sockets handed over",
                        session_id=sid,
                        owner=session.owner,
                    )
        await self._sweep_strays(now)

    async def discard(self, rec: SlotRecord, reason: str) -> None:
        """Take a ready slot back and remove it; a launch that claimed it first keeps it."""
        self.slots.pop(rec.session_id, None)
        if not await self.store.withdraw(rec):
            return
        self.log.info("warm slot discarded", session_id=rec.session_id, reason=reason)
        self.host.metrics.pool_slots.labels("discarded").inc()
        await self._destroy(rec.container_id, rec.session_id, rec.sandbox)

    async def _sweep_strays(self, now: float) -> None:
        """Pool containers nobody will use: a dead worker's slots, claims never launched."""
        host, store = self.host, self.host.store
        try:
            containers = await host.provider.list_managed(self.settings.cluster)
        except ProviderError:
            return
        for c in containers:
            if not c.pool or c.session_id in self.slots or c.session_id in self._making:
                continue
            if await store.get(c.session_id) is not None:
                continue  # claimed and launched: a session's container now
            rec = await self.store.get(c.session_id)
            if rec is not None and await self.store.is_ready(rec):
                if rec.worker_id == host.worker_id or await store.is_alive(rec.worker_id):
                    continue  # another live worker's ready slot
                if not await self.store.withdraw(rec):
                    continue
            elif rec is not None:
                # Claimed, but no session record yet: the launch may be on its way.
                if (
                    now - rec.created_at < _CLAIM_GRACE
                    or await self.store.take(c.session_id) is None
                ):
                    continue
            elif c.worker_id != host.worker_id and await store.is_alive(c.worker_id):
                continue  # being made by a live worker (its record comes once it is ready)
            self.log.info("removing stray pool container", session_id=c.session_id)
            await self._destroy(c.container_id, c.session_id, c.sandbox)

    async def remove_leftovers(self) -> None:
        """Slots a previous process with this worker id left: remove them (not adopted)."""
        for sid in await self.store.slots_of(self.host.worker_id):
            rec = await self.store.get(sid)
            if rec is None:
                await self.store.forget(self.host.worker_id, sid)
                if await self.host.store.get(sid) is None:
                    await self.host.provider.remove_session_container(sid)
                    await self.host.provider.remove(None, sid)
                continue
            if await self.store.withdraw(rec):
                await self._destroy(rec.container_id, sid, rec.sandbox)

    async def drain(self) -> None:
        """Remove every ready slot of this worker (shutdown): containers and volumes."""
        for rec in list(self.slots.values()):
            await self.discard(rec, "shutdown")
        self.publish_metrics()

    async def _destroy(self, container_id: str | None, sid: str, sandbox: str = "") -> None:
        with contextlib.suppress(Exception):
            await self.host.provider.remove(container_id, sid, grace=1)
        if sandbox:
            with contextlib.suppress(Exception):
                await self.host.sandbox.remove(sandbox)
        with contextlib.suppress(Exception):
            await self.store.forget(self.host.worker_id, sid)


class _Prestarted(msgspec.Struct):
    ok: bool = False
    error: str = ""


class _Notice(msgspec.Struct):
    subtype: str = ""
    data: _Prestarted = msgspec.field(default_factory=_Prestarted)


_notice = msgspec.json.Decoder(_Notice)
