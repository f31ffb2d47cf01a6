"""An in-memory :class:`~workers.providers.base.Provider` whose containers are fake runners.

Each "container" runs an in-process runner that speaks the real stdio protocol
(``broker.runner_wire`` commands in; numbered envelopes out, framed as Docker frames them) with
the runner's own :class:`~runner.emitter.Emitter` and replay buffer. It answers ``init`` with
``session.ready``, a chat with ``turn.started`` / ``message`` / ``turn.completed`` (echoing the
text), ``attach`` with a replay and the ``runner.attached`` notice, and ``stop`` with
``session.stopped``. So the worker's claim, reconcile, recovery and reaper logic run for real
(real NATS, real Redis) and only the container is simulated: no Docker, a launch takes
milliseconds.

Tests break containers on purpose with :meth:`MemoryProvider.crash` (the runner process dies,
the container is left "exited"), :meth:`MemoryProvider.vanish` (the container disappears) and
:meth:`MemoryProvider.plant` (a container of any labels, e.g. an orphan or another worker's).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.events import (
    AssistantText,
    ErrorEvent,
    SessionReady,
    SessionStopped,
    SystemNotice,
    TurnCompleted,
    TurnStarted,
    Usage,
)
from broker.runner_wire import (
    AnyRunnerCommand,
    Attach,
    ChatIn,
    Init,
    InterruptIn,
    Prestart,
    StopIn,
    decode_command,
)
from runner.buffer import ReplayBuffer
from runner.emitter import Emitter
from workers.errors import ProviderError, VolumeMissing
from workers.providers.base import Attached, ContainerInfo, ContainerSpec

_HEADER = struct.Struct(">BxxxI")
_STDOUT = 1
_ids = itertools.count(1)


class _Sink:
    """The runner's stdout: whatever attachment is current gets the frames; none drops them."""

    def __init__(self) -> None:
        self.writer: asyncio.StreamWriter | None = None

    def write(self, data: bytes) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(_HEADER.pack(_STDOUT, len(data)) + data)


class FakeRunner:
    """One runner process: commands in, envelopes out, until ``stop`` or a crash."""

    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self.emitter = Emitter(sink, ReplayBuffer())
        self.session_id = ""
        self.init: Init | None = None
        self.prestarted: Prestart | None = None
        self.chats: list[str] = []
        # Every command this runner read, in order.
        self.commands: list[AnyRunnerCommand] = []
        self.exited = asyncio.Event()

    def handle(self, line: bytes) -> None:
        if self.exited.is_set():
            return
        cmd = decode_command(line)
        self.commands.append(cmd)
        match cmd:
            case Prestart():
                # A warm-pool slot: "start the CLI" and say so; the init that claims it binds.
                self.session_id, self.prestarted = cmd.session_id, cmd
                ok = not cmd.config.get("fail_init")
                self.emitter.emit(
                    SystemNotice(
                        session_id=cmd.session_id,
                        subtype="runner.prestarted",
                        data={"ok": ok, "seconds": 0.0}
                        if ok
                        else {"ok": False, "error": "refused"},
                    )
                )
            case Init():
                self.init, self.session_id = cmd, cmd.session_id
                if cmd.config.get("fail_init"):
                    self.emitter.emit(
                        ErrorEvent(
                            session_id=cmd.session_id,
                            code="config_invalid",
                            message="refused by the fake runner",
                            fatal=True,
                        )
                    )
                    return
                self.emitter.emit(
                    SessionReady(
                        session_id=cmd.session_id,
                        worker_id=cmd.worker_id,
                        config_id=str(cmd.config.get("id", "")),
                        resumed=cmd.resume is not None,
                    )
                )
            case ChatIn():
                self.chats.append(cmd.message)
                sid = self.session_id
                self.emitter.emit(TurnStarted(session_id=sid, turn_id=cmd.turn_id))
                self.emitter.emit(
                    AssistantText(session_id=sid, turn_id=cmd.turn_id, text=f"Echo: {cmd.message}")
                )
                self.emitter.emit(
                    TurnCompleted(
                        session_id=sid,
                        turn_id=cmd.turn_id,
                        usage=Usage(input_tokens=3, output_tokens=2),
                        cost_usd=0.001,
                        sdk_session_id=f"sdk-{sid}",
                    )
                )
            case Attach():
                replayed = self.emitter.replay(cmd.after_seq)
                self.emitter.emit(
                    SystemNotice(
                        session_id=self.session_id,
                        subtype="runner.attached",
                        data={"replayed": replayed, "boot_id": self.emitter.boot_id},
                    )
                )
            case InterruptIn():
                pass
            case StopIn():
                self.emitter.emit(SessionStopped(session_id=self.session_id, reason=cmd.reason))
                self.emitter.close()
                self.exit()

    def exit(self) -> None:
        self.exited.set()
        if self.sink.writer is not None:
            self.sink.writer.close()
            self.sink.writer = None


@dataclass
class FakeContainer:
    container_id: str
    session_id: str
    worker_id: str
    cluster: str
    spec: ContainerSpec | None = None
    status: str = "created"
    runner: FakeRunner | None = None
    runners_started: int = 0
    sink: _Sink = field(default_factory=_Sink)
    readers: list[asyncio.Task[None]] = field(default_factory=list)


class MemoryProvider:
    """Containers as dicts, runners as coroutines; see the module docstring."""

    def __init__(self) -> None:
        self.containers: dict[str, FakeContainer] = {}
        self.removed: list[str] = []
        # Image ids by tag; a test "rebuilds" an image by changing its id here.
        self.image_ids: dict[str, str] = {}
        self._volumes = Path(tempfile.mkdtemp(prefix="agc-memprov-"))

    # -- test controls -------------------------------------------------------------------
    def plant(
        self, session_id: str, worker_id: str, cluster: str, *, running: bool = True
    ) -> FakeContainer:
        """Add a container as if some worker had made it (its runner has no init yet)."""
        c = FakeContainer(f"mem{next(_ids):06d}", session_id, worker_id, cluster)
        self.containers[c.container_id] = c
        if running:
            self._boot(c)
        return c

    def crash(self, container_id: str) -> None:
        """The runner process dies: its channel closes, the container is left exited."""
        c = self.containers[container_id]
        if c.runner is not None:
            c.runner.exit()
        c.status = "exited"

    def vanish(self, container_id: str) -> None:
        """The container disappears behind the worker's back."""
        self.crash(container_id)
        del self.containers[container_id]

    def by_session(self, session_id: str) -> FakeContainer | None:
        return next((c for c in self.containers.values() if c.session_id == session_id), None)

    # -- Provider ------------------------------------------------------------------------
    async def create(self, spec: ContainerSpec) -> str:
        if spec.image == "missing:image":
            raise ProviderError(f"agent image {spec.image!r} is not on this host")
        c = FakeContainer(
            f"mem{next(_ids):06d}", spec.session_id, spec.worker_id, spec.cluster, spec=spec
        )
        self.containers[c.container_id] = c
        (self._volumes / spec.session_id).mkdir(exist_ok=True)
        return c.container_id

    async def start(self, container_id: str) -> None:
        c = self._get(container_id)
        if c.status != "running":
            self._boot(c)

    def _boot(self, c: FakeContainer) -> None:
        c.status = "running"
        c.runner = FakeRunner(c.sink)
        c.runners_started += 1

    async def attach(self, container_id: str) -> Attached:
        c = self._get(container_id)
        ours, theirs = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=ours)
        r_in, w_out = await asyncio.open_connection(sock=theirs)
        if c.sink.writer is not None:
            c.sink.writer.close()
        c.sink.writer = w_out
        c.readers.append(asyncio.create_task(self._read_stdin(c, r_in, w_out)))
        return reader, writer

    async def _read_stdin(
        self, c: FakeContainer, r_in: asyncio.StreamReader, w_out: asyncio.StreamWriter
    ) -> None:
        # Like docker: stdin EOF (a detach) does not end the runner.
        try:
            with contextlib.suppress(ConnectionError):
                while line := await r_in.readline():
                    if c.runner is not None and c.status == "running":
                        c.runner.handle(line)
                        if c.runner.exited.is_set():
                            c.status = "exited"
                            return
        finally:
            # Also when cancelled (close(), by whichever worker on this host stops first):
            # the attachment's socket is closed, never left to the garbage collector.
            if c.sink.writer is w_out:
                c.sink.writer = None
            w_out.close()

    async def image_id(self, image: str) -> str:
        return self.image_ids.get(image, f"sha256:mem-{image}")

    async def is_running(self, container_id: str) -> bool:
        c = self.containers.get(container_id)
        return c is not None and c.status == "running"

    async def stats(self, container_id: str) -> dict[str, Any] | None:
        if not await self.is_running(container_id):
            return None
        return {"cpu_percent": 0.0, "memory_bytes": 1, "memory_limit_bytes": 2, "pids": 1}

    async def list_managed(self, cluster: str) -> list[ContainerInfo]:
        return [
            ContainerInfo(
                c.container_id,
                c.session_id,
                c.worker_id,
                c.status,
                sandbox=c.spec.sandbox if c.spec else "",
                pool=c.spec.pool if c.spec else "",
            )
            for c in self.containers.values()
            if c.cluster == cluster
        ]

    async def remove(
        self, container_id: str | None, session_id: str, *, grace: float = 5.0
    ) -> None:
        if container_id and container_id in self.containers:
            self.crash(container_id)
            for t in self.containers[container_id].readers:
                t.cancel()
            del self.containers[container_id]
            self.removed.append(session_id)

    async def remove_session_container(self, session_id: str) -> None:
        c = self.by_session(session_id)
        if c is not None:
            self.crash(c.container_id)
            del self.containers[c.container_id]

    async def volume_path(self, session_id: str) -> str:
        path = self._volumes / session_id
        if not path.is_dir():
            raise VolumeMissing(f"no workspace for {session_id}")
        return str(path)

    def close(self) -> None:
        """A worker lets go of its client, as with Docker: the host and its containers stay
        (other workers may share this host, and their sessions must not break under them)."""

    def shut_down(self) -> None:
        """The host itself goes away, once every worker on it has stopped."""
        for c in self.containers.values():
            for t in c.readers:
                t.cancel()

    def _get(self, container_id: str) -> FakeContainer:
        try:
            return self.containers[container_id]
        except KeyError:
            raise ProviderError(f"no such container {container_id}") from None
