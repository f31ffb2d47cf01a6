"""Run agent containers on a Docker engine, locked down, with the docker SDK off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import docker
import docker.errors
import structlog

from broker.sandbox_wire import MOUNT as SANDBOX_MOUNT
from workers.errors import ImageMissing, ProviderError, VolumeMissing
from workers.providers.base import (
    AGENT_UID,
    HOME,
    WORKSPACE,
    Attached,
    ContainerInfo,
    ContainerSpec,
)
from workers.storage import StorageError, WorkspaceStorage

log = structlog.get_logger("agc.docker")

LABEL_MANAGED = "agc.managed"
LABEL_SESSION = "agc.session"
LABEL_WORKER = "agc.worker"
LABEL_CLUSTER = "agc.cluster"
LABEL_POOL = "agc.pool"
LABEL_SANDBOX = "agc.sandbox"


def volume_names(session_id: str) -> tuple[str, str]:
    """Workspace and home volumes of a session."""
    return f"agc-ws-{session_id}", f"agc-home-{session_id}"


class DockerProvider:
    """The :class:`~workers.providers.base.Provider` of a Docker Engine: locked-down containers."""

    def __init__(
        self, client: docker.DockerClient | None = None, storage: WorkspaceStorage | None = None
    ) -> None:
        self._client = client or docker.from_env(timeout=60)
        # Fixed-size workspaces (storage_limit enforced); None: engine volumes, uncapped.
        self.storage = storage
        self.api = self._client.api
        # Last (total CPU ns, system CPU ns) seen per container, for CPU % between polls.
        self._cpu_samples: dict[str, tuple[int, int]] = {}

    @classmethod
    async def connect(cls, storage: WorkspaceStorage | None = None) -> DockerProvider:
        """Connect to the engine from the environment (``DOCKER_HOST``) and check it answers."""

        def _make() -> DockerProvider:
            client = docker.from_env(timeout=60)
            client.ping()
            return cls(client, storage)

        try:
            return await asyncio.to_thread(_make)
        except docker.errors.DockerException as exc:
            raise ProviderError(f"cannot reach the Docker engine: {exc}") from exc

    def close(self) -> None:
        self._client.close()

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.to_thread(self._client.ping))
        except docker.errors.DockerException:
            return False

    async def image_exists(self, image: str) -> bool:
        def _check() -> bool:
            try:
                self.api.inspect_image(image)
                return True
            except docker.errors.ImageNotFound:
                return False

        return await asyncio.to_thread(_check)

    async def create(self, spec: ContainerSpec) -> str:
        """Create (not start) a locked-down container for a session; return its id."""
        ws, home = volume_names(spec.session_id)
        labels = {
            LABEL_MANAGED: "1",
            LABEL_CLUSTER: spec.cluster,
            LABEL_SESSION: spec.session_id,
            LABEL_WORKER: spec.worker_id,
        }
        if spec.pool:
            labels[LABEL_POOL] = spec.pool
        if not spec.sandbox or not spec.sandbox_dir:
            raise ProviderError("an agent container needs its sandbox directory")
        labels[LABEL_SANDBOX] = spec.sandbox
        ws_source, home_source = ws, home
        if self.storage is not None and spec.storage_bytes:
            try:
                paths = await self.storage.create(
                    spec.session_id, spec.storage_bytes, spec.home_bytes or spec.storage_bytes
                )
            except StorageError as exc:
                raise ProviderError(f"cannot make the session's workspace: {exc}") from exc
            ws_source, home_source = str(paths.workspace), str(paths.home)

        def _create() -> str:
            if ws_source == ws:
                for vol in (ws, home):
                    self.api.create_volume(name=vol, labels=labels)
            host_config = self.api.create_host_config(
                binds={
                    ws_source: {"bind": WORKSPACE, "mode": "rw"},
                    home_source: {"bind": HOME, "mode": "rw"},
                    # The only way out: the worker's gateway and egress sockets.
                    spec.sandbox_dir: {"bind": SANDBOX_MOUNT, "mode": "ro"},
                },
                tmpfs={"/tmp": f"rw,nosuid,nodev,size={spec.tmp_size},mode=1777"},  # noqa: S108
                read_only=True,
                cap_drop=["ALL"],
                # The runner (uid 0) starts the agent as AGENT_UID (setpriv) and must be able
                # to signal it; nothing else. The agent's uid gets no capabilities at all.
                cap_add=["SETUID", "SETGID", "KILL"],
                security_opt=["no-new-privileges"],
                mem_limit=spec.memory,
                memswap_limit=spec.memory,
                cpu_period=100_000,
                cpu_quota=spec.cpu_quota,
                pids_limit=spec.pids_limit,
                # Never a network: not the host's, not a bridge (docs/sandbox.md).
                network_mode="none",
                init=False,  # the image's entrypoint is tini already
                log_config={"type": "json-file", "config": {"max-size": "5m", "max-file": "2"}},
            )
            created = self.api.create_container(
                image=spec.image,
                user="0:0",
                working_dir=WORKSPACE,
                stdin_open=True,
                # detach=True keeps StdinOnce off: a worker that detaches (restart, crash)
                # must not close the runner's stdin, or no later worker could talk to it.
                detach=True,
                tty=False,
                environment={
                    "AGC_SESSION_ID": spec.session_id,
                    **spec.env,
                    "AGC_AGENT_UID": AGENT_UID.split(":", 1)[0],
                    "AGC_SANDBOX_DIR": SANDBOX_MOUNT,
                },
                labels=labels,
                host_config=host_config,
                name=f"agc-{spec.session_id}",
            )
            return str(created["Id"])

        try:
            return await asyncio.to_thread(_create)
        except docker.errors.ImageNotFound as exc:
            raise ImageMissing(
                f"agent image {spec.image!r} is not on this host; build it with `make image`"
            ) from exc
        except docker.errors.APIError as exc:
            raise ProviderError(f"cannot create the container: {exc.explanation or exc}") from exc

    async def start(self, container_id: str) -> None:
        try:
            await asyncio.to_thread(self.api.start, container_id)
        except docker.errors.APIError as exc:
            raise ProviderError(f"cannot start the container: {exc.explanation or exc}") from exc

    async def attach(self, container_id: str) -> Attached:
        """Attach to the container's stdio; returns asyncio streams over the hijacked socket.

        Output is Docker's multiplexed stream (8-byte frame headers); see ``workers.channel``.
        """

        def _attach() -> socket.socket:
            sock = self.api.attach_socket(
                container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            raw = getattr(sock, "_sock", sock)
            if not isinstance(raw, socket.socket):
                raise ProviderError("unexpected attach socket type")
            raw.setblocking(False)
            return raw

        try:
            raw = await asyncio.to_thread(_attach)
        except docker.errors.APIError as exc:
            raise ProviderError(
                f"cannot attach to the container: {exc.explanation or exc}"
            ) from exc
        # The channel reads whole frames (readexactly): a small limit keeps what the transport
        # buffers from an untrusted container bounded (it pauses reading at twice the limit).
        return await asyncio.open_connection(sock=raw, limit=1 << 16)

    async def inspect(self, container_id: str) -> dict[str, Any] | None:
        def _inspect() -> dict[str, Any] | None:
            try:
                out: dict[str, Any] = self.api.inspect_container(container_id)
                return out
            except docker.errors.NotFound:
                return None

        return await asyncio.to_thread(_inspect)

    async def image_id(self, image: str) -> str:
        def _inspect() -> str:
            try:
                return str(self.api.inspect_image(image)["Id"])
            except docker.errors.ImageNotFound:
                return ""

        return await asyncio.to_thread(_inspect)

    async def is_running(self, container_id: str) -> bool:
        info = await self.inspect(container_id)
        return bool(info and info.get("State", {}).get("Running"))

    async def stats(self, container_id: str) -> dict[str, Any] | None:
        """CPU % and memory use of a running container (one sample, not streamed)."""

        def _stats() -> dict[str, Any] | None:
            try:
                # one_shot skips the engine's ~1 s second sample; CPU % is measured against
                # this provider's previous sample of the same container instead.
                s = self.api.stats(container_id, stream=False, one_shot=True)
            except docker.errors.APIError:
                return None
            cpu = s.get("cpu_stats", {})
            now = (cpu.get("cpu_usage", {}).get("total_usage", 0), cpu.get("system_cpu_usage", 0))
            prev = self._cpu_samples.get(container_id)
            self._cpu_samples[container_id] = now
            if prev is not None:
                s["precpu_stats"] = {
                    "cpu_usage": {"total_usage": prev[0]},
                    "system_cpu_usage": prev[1],
                }
            return _summarise_stats(s)

        return await asyncio.to_thread(_stats)

    async def list_managed(self, cluster: str) -> list[ContainerInfo]:
        """Every container of this cluster on this engine, running or not."""

        def _list() -> list[ContainerInfo]:
            rows = self.api.containers(
                all=True,
                filters={"label": [f"{LABEL_MANAGED}=1", f"{LABEL_CLUSTER}={cluster}"]},
            )
            return [
                ContainerInfo(
                    container_id=r["Id"],
                    session_id=r.get("Labels", {}).get(LABEL_SESSION, ""),
                    worker_id=r.get("Labels", {}).get(LABEL_WORKER, ""),
                    status=r.get("State", ""),
                    pool=r.get("Labels", {}).get(LABEL_POOL, ""),
                    sandbox=r.get("Labels", {}).get(LABEL_SANDBOX, ""),
                )
                for r in rows
            ]

        return await asyncio.to_thread(_list)

    async def remove(
        self, container_id: str | None, session_id: str, *, grace: float = 5.0
    ) -> None:
        """Stop and remove a session's container and both its volumes; missing parts are fine."""

        if container_id:
            self._cpu_samples.pop(container_id, None)

        def _remove() -> None:
            if container_id:
                try:
                    self.api.stop(container_id, timeout=int(grace))
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as exc:
                    log.warning("stop failed", container=container_id[:12], error=str(exc))
                with contextlib.suppress(docker.errors.NotFound):
                    self.api.remove_container(container_id, force=True, v=True)
            for vol in volume_names(session_id):
                with contextlib.suppress(docker.errors.NotFound):
                    self.api.remove_volume(vol, force=True)

        await asyncio.to_thread(_remove)
        if self.storage is not None:
            try:
                await self.storage.remove(session_id)
            except StorageError as exc:
                log.warning("session storage not removed", session_id=session_id, error=str(exc))

    async def remove_session_container(self, session_id: str) -> None:
        """Remove a session's container by name if one exists (volumes are kept)."""

        def _remove() -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self.api.remove_container(f"agc-{session_id}", force=True)

        await asyncio.to_thread(_remove)

    async def volume_path(self, session_id: str) -> str:
        """Host path of a session's workspace volume (the worker reads files there directly)."""
        if self.storage is not None and self.storage.exists(session_id):
            return str(self.storage.paths(session_id).workspace)
        ws, _ = volume_names(session_id)

        def _inspect() -> str:
            return str(self.api.inspect_volume(ws)["Mountpoint"])

        try:
            return await asyncio.to_thread(_inspect)
        except docker.errors.NotFound as exc:
            raise VolumeMissing(f"volume {ws} does not exist") from exc


def _summarise_stats(s: dict[str, Any]) -> dict[str, Any]:
    cpu = s.get("cpu_stats", {})
    pre = s.get("precpu_stats", {})
    cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get(
        "total_usage", 0
    )
    sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    ncpu = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or []) or 1
    cpu_percent = (cpu_delta / sys_delta) * ncpu * 100.0 if sys_delta > 0 else 0.0
    mem = s.get("memory_stats", {})
    usage = int(mem.get("usage", 0))
    cache = int(
        mem.get("stats", {}).get("cache", 0) or mem.get("stats", {}).get("inactive_file", 0)
    )
    return {
        "cpu_percent": round(cpu_percent, 2),
        "memory_bytes": max(usage - cache, 0),
        "memory_limit_bytes": int(mem.get("limit", 0)),
        "pids": int(s.get("pids_stats", {}).get("current", 0)),
    }
