"""Drive a real ``python -m runner`` subprocess over its JSON-lines protocol."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.events import AnyEvent, UnknownEvent, decode_event, event_type, to_builtins
from broker.runner_wire import (
    Attach,
    ChatIn,
    Envelope,
    Init,
    InterruptIn,
    RunnerCommand,
    StopIn,
    decode_envelope,
    encode_line,
)

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DEFAULT_TIMEOUT = 30.0


def base_config(**overrides: Any) -> dict[str, Any]:
    """Return an agent config as the platform sends it (``AgentConfig.to_wire``), with
    ``overrides`` applied; an override of ``None`` leaves the field out (its default)."""
    config: dict[str, Any] = {
        "id": "runner-test",
        "name": "Runner test agent",
        "description": "scripted",
        "version": "1",
        "allowed_tools": ["Bash", "Read", "Write", "Edit", "TodoWrite"],
        "system_prompt": "You are the scripted runner test agent.",
        "permission_mode": "acceptEdits",
        "mcp_servers": {},
        "agents": {},
        "resource_limits": {"memory_limit": "1g"},
        "env": {},
    }
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


@dataclass
class Received:
    """One stdout line: the envelope, its decoded event and when the test read it."""

    envelope: Envelope
    event: AnyEvent | UnknownEvent
    at: float
    line: bytes

    @property
    def type(self) -> str:
        return event_type(self.event)

    @property
    def data(self) -> dict[str, Any]:
        return to_builtins(self.event)


@dataclass
class RunnerProcess:
    """A runner subprocess with a reader task collecting every envelope it writes."""

    home: Path
    workspace: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: asyncio.subprocess.Process | None = None
    received: list[Received] = field(default_factory=list)
    stderr_lines: list[str] = field(default_factory=list)
    bad_lines: list[bytes] = field(default_factory=list)
    session_id: str = field(default_factory=lambda: f"sess-{uuid.uuid4().hex[:8]}")
    _new: asyncio.Condition = field(default_factory=asyncio.Condition)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _cursor: int = 0

    async def start(self) -> RunnerProcess:
        env = {
            **os.environ,
            "HOME": str(self.home),
            "AGC_WORKSPACE": str(self.workspace),
            "AGC_EXIT_ON_EOF": "1",
            "PYTHONPATH": str(REPO),
            "AGC_LOG_LEVEL": "INFO",
            **self.extra_env,
        }
        self.proc = await asyncio.create_subprocess_exec(
            PYTHON,
            "-m",
            "runner",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=str(REPO),
            limit=1 << 24,
        )
        self._tasks = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]
        return self

    # ------------------------------------------------------------------ commands
    def send(self, command: RunnerCommand) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(encode_line(command))

    def send_raw(self, line: bytes) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line)

    def init(
        self,
        base_url: str,
        config: dict[str, Any] | None = None,
        *,
        resume: str | None = None,
        mcp_env: dict[str, dict[str, str]] | None = None,
        env: dict[str, str] | None = None,
        approval_timeout: float = 600.0,
        session_grants: list[str] | None = None,
    ) -> None:
        self.send(
            Init(
                session_id=self.session_id,
                config=config if config is not None else base_config(),
                api_key="sk-ant-test-key",
                mcp_env=mcp_env or {},
                env={"ANTHROPIC_BASE_URL": base_url, "CLAUDE_CODE_MAX_RETRIES": "0", **(env or {})},
                resume=resume,
                worker_id="worker-test",
                approval_timeout=approval_timeout,
                session_grants=session_grants or [],
            )
        )

    async def ready(
        self, base_url: str, config: dict[str, Any] | None = None, **kw: Any
    ) -> Received:
        """Send init and return the ``session.ready`` event."""
        self.init(base_url, config, **kw)
        return await self.wait_for("session.ready")

    def chat(self, message: str, turn_id: str | None = None) -> str:
        turn_id = turn_id or f"turn-{uuid.uuid4().hex[:8]}"
        self.send(ChatIn(turn_id=turn_id, message=message))
        return turn_id

    def interrupt(self) -> None:
        self.send(InterruptIn())

    def attach(self, after_seq: int) -> None:
        self.send(Attach(after_seq=after_seq))

    async def stop(self, reason: str = "test", timeout: float = DEFAULT_TIMEOUT) -> int:
        self.send(StopIn(reason=reason))
        return await self.wait_exit(timeout)

    # ------------------------------------------------------------------ waiting
    async def wait_for(
        self,
        type_: str,
        pred: Callable[[Received], bool] = lambda r: True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Received:
        """Return the next not-yet-consumed event of ``type_`` matching ``pred``."""
        deadline = time.monotonic() + timeout
        async with self._new:
            while True:
                for i in range(self._cursor, len(self.received)):
                    item = self.received[i]
                    if item.type == type_ and pred(item):
                        self._cursor = i + 1
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._exited():
                    raise AssertionError(
                        f"no {type_} within {timeout}s; got {self.types()}\n"
                        f"stderr:\n{self.stderr_text()[-3000:]}"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new.wait(), min(remaining, 0.5))

    async def turn(self, turn_id: str, timeout: float = DEFAULT_TIMEOUT) -> list[Received]:
        """Wait for ``turn.completed`` of ``turn_id``; return every event of that turn."""
        await self.wait_for("turn.completed", lambda r: r.data.get("turn_id") == turn_id, timeout)
        return self.events_of(turn_id)

    def events_of(self, turn_id: str) -> list[Received]:
        return [r for r in self.received if r.data.get("turn_id") == turn_id]

    def types(self, items: list[Received] | None = None) -> list[str]:
        return [r.type for r in (self.received if items is None else items)]

    async def wait_exit(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return code

    def stderr_text(self) -> str:
        return "\n".join(self.stderr_lines)

    async def wait_stderr(self, text: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Return the first stderr line containing ``text`` (polls; the runner logs there)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stderr_lines:
                if text in line:
                    return line
            if self.proc is not None and self.proc.returncode is not None:
                break
            await asyncio.sleep(0.02)
        raise AssertionError(f"no stderr line with {text!r}:\n{self.stderr_text()[-3000:]}")

    def handles(self, sig: signal.Signals) -> bool:
        """Whether the process has installed a handler for ``sig`` (from /proc/PID/status)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
        return False

    def cli_pids(self) -> list[int]:
        """Return the pids of the runner's direct children (the Claude Code CLI)."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def close(self) -> None:
        """Kill the runner if it is still alive (test teardown)."""
        if self.proc is None:
            return
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ readers
    def _exited(self) -> bool:
        return (
            self.proc is not None
            and self.proc.returncode is not None
            and all(t.done() for t in self._tasks[:1])
        )

    async def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            at = time.monotonic()
            try:
                envelope = decode_envelope(line)
                event = decode_event(bytes(envelope.event))
            except Exception:
                self.bad_lines.append(line)
                continue
            async with self._new:
                self.received.append(Received(envelope, event, at, line))
                self._new.notify_all()
        async with self._new:
            self._new.notify_all()

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.stderr_lines.append(line.decode("utf-8", "replace").rstrip())
