"""The runner's main loop: read commands from stdin, drive the session, exit cleanly.

stdin carries one :mod:`broker.runner_wire` command per line; stdout carries only protocol
envelopes (logs go to stderr). EOF on stdin does not end the runner (a worker may detach and
re-attach) unless ``AGC_EXIT_ON_EOF=1``; ``stop``, SIGTERM and SIGINT end it with exit code 0
after a ``session.stopped`` event.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import msgspec

from broker.events import ErrorEvent, Event, SessionStopped, SystemNotice, TurnCompleted
from broker.logging import configure_logging
from broker.runner_wire import (
    ApproveIn,
    Attach,
    ChatIn,
    Init,
    InterruptIn,
    Prestart,
    StopIn,
    decode_command,
)
from runner.buffer import ReplayBuffer
from runner.early import EarlyCli, StartUp
from runner.emitter import Emitter
from runner.errors import ConfigError, describe
from runner.session import AgentSession
from runner.settings import RunnerSettings
from runner.stdio import StdinLines, StdoutWriter

log = logging.getLogger("runner")


class Runner:
    """Dispatch protocol commands to the session and own the process's lifecycle."""

    def __init__(
        self,
        settings: RunnerSettings,
        emitter: Emitter,
        stdin: StdinLines,
        early: EarlyCli | None = None,
    ) -> None:
        self._settings = settings
        # The CLI runner.early started for the first command, until a session takes it.
        self._early = early
        self._emitter = emitter
        self._stdin = stdin
        self._session: AgentSession | None = None
        # A session started by ``prestart`` that no ``init`` has bound yet.
        self._prestarted: AgentSession | None = None
        self._session_id = ""
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._tasks: set[asyncio.Task[Any]] = set()

    def emit(self, event: Event) -> None:
        self._emitter.emit(event)

    async def run(self) -> int:
        """Serve until ``stop``, a signal or (with ``AGC_EXIT_ON_EOF``) stdin EOF; return 0."""
        loop = asyncio.get_running_loop()
        for sig, name in ((signal.SIGTERM, "sigterm"), (signal.SIGINT, "sigint")):
            loop.add_signal_handler(sig, self.request_stop, name)
        self._stdin.start()
        reader = asyncio.create_task(self._read_commands(), name="commands")
        await self._stop.wait()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await self._shutdown()
        return 0

    def request_stop(self, reason: str) -> None:
        """End the runner (idempotent; the first reason wins)."""
        if not self._stop.is_set():
            log.info("stopping: %s", reason)
            self._stop_reason = reason
            self._stop.set()

    async def _read_commands(self) -> None:
        async for line in self._stdin.lines():
            if not line.strip():
                continue
            try:
                self._dispatch(line)
            except Exception as exc:
                # A bug handling one command must not deafen the runner to the next ones.
                log.exception("command failed")
                self.emit(
                    ErrorEvent(
                        session_id=self._session_id,
                        code="runner_error",
                        message=f"command failed: {describe(exc)}",
                    )
                )
        if self._settings.exit_on_eof:
            self.request_stop("eof")
        else:
            # docker keeps the container's stdin open across attaches, so this is unusual;
            # the session stays up for SIGTERM.
            log.warning("stdin closed; still running until SIGTERM")

    def _dispatch(self, line: bytes) -> None:
        try:
            command = decode_command(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.emit(
                ErrorEvent(
                    session_id=self._session_id,
                    code="bad_command",
                    message=f"cannot decode command: {exc}",
                    detail=line[:500].decode("utf-8", "replace"),
                )
            )
            return
        match command:
            case Init():
                self._init(command)
            case Prestart():
                self._prestart(command)
            case ChatIn():
                self._chat(command)
            case InterruptIn():
                # Decided here, in command order; only the waiting happens in a task.
                rest = self._session.interrupt() if self._session is not None else None
                if rest is not None:
                    self._spawn(rest)
            case Attach():
                self._attach(command.after_seq)
            case StopIn():
                self.request_stop(command.reason or "stop")
            case ApproveIn():
                self._approve(command)

    def _prestart(self, cmd: Prestart) -> None:
        """Start and initialise the CLI for a config before any session (a warm-pool slot)."""
        if self._session is not None:
            self.emit(
                ErrorEvent(
                    session_id=self._session_id,
                    code="already_initialized",
                    message="this runner already serves a session; prestart ignored",
                )
            )
            return
        self._session_id = cmd.session_id
        init = Init(
            session_id=cmd.session_id, config=cmd.config, env=cmd.env, worker_id=cmd.worker_id
        )
        try:
            session = AgentSession(
                init, self._settings, self.emit, prestart=True, early=self._take_early(init)
            )
        except ConfigError as exc:
            self.emit(
                SystemNotice(
                    session_id=cmd.session_id,
                    subtype="runner.prestarted",
                    data={"ok": False, "error": str(exc)},
                )
            )
            return
        log.info("prestart slot=%s config=%s", cmd.session_id, session.config.id)
        self._session = self._prestarted = session
        session.start()

    def _init(self, init: Init) -> None:
        prestarted, self._prestarted = self._prestarted, None
        if prestarted is not None:
            if prestarted.accepts(init):
                log.info("init session=%s binds the pre-started CLI", init.session_id)
                prestarted.bind(init)
                return
            # Started for something else (a key, MCP credentials, another config): replace it.
            log.info(
                "init session=%s does not match the pre-started CLI; restarting", init.session_id
            )
            self._session = None
            self._spawn(self._retire(prestarted))
        if self._session is not None:
            self.emit(
                ErrorEvent(
                    session_id=self._session_id,
                    code="already_initialized",
                    message="this runner already serves a session; init ignored",
                )
            )
            return
        self._session_id = init.session_id
        try:
            session = AgentSession(init, self._settings, self.emit, early=self._take_early(init))
        except ConfigError as exc:
            self.emit(
                ErrorEvent(session_id=init.session_id, code=exc.code, message=str(exc), fatal=True)
            )
            return
        log.info(
            "init session=%s config=%s mcp_servers=%d resume=%s",
            init.session_id,
            session.config.id,
            len(session.config.mcp_servers),
            init.resume,
        )
        self._session = session
        session.start()

    def _chat(self, chat: ChatIn) -> None:
        if self._session is None:
            self.emit(
                ErrorEvent(
                    session_id=self._session_id,
                    turn_id=chat.turn_id,
                    code="not_initialized",
                    message="chat before a successful init",
                )
            )
            # Whoever waits on this turn must still see it end.
            self.emit(
                TurnCompleted(
                    session_id=self._session_id,
                    turn_id=chat.turn_id,
                    subtype="error_not_initialized",
                    is_error=True,
                )
            )
            return
        self._session.submit(chat)

    def _approve(self, command: ApproveIn) -> None:
        if self._session is None:
            self.emit(
                ErrorEvent(
                    session_id=self._session_id,
                    code="approval_not_pending",
                    message="no session: nothing waits for approval",
                    detail=command.answer.request_id,
                )
            )
            return
        self._session.answer(command.answer)

    def _attach(self, after_seq: int) -> None:
        replayed = self._emitter.replay(after_seq)
        session = self._session
        # Answers every attach, so a re-attached worker learns the boot id, the last seq and
        # whether this runner still needs an init (it does after a restart).
        self.emit(
            SystemNotice(
                session_id=self._session_id,
                subtype="runner.attached",
                data={
                    "after_seq": after_seq,
                    "replayed": replayed,
                    "first_buffered_seq": self._emitter.first_buffered_seq,
                    "last_seq": self._emitter.last_seq,
                    "boot_id": self._emitter.boot_id,
                    "initialized": session is not None,
                    "connected": session is not None and session.connected,
                    "busy": session is not None and session.busy,
                    "sdk_session_id": session.sdk_session_id if session else None,
                    # The truth about what waits for a person, for the worker's records.
                    "pending_approvals": session.pending_approvals() if session else [],
                },
            )
        )

    def _take_early(self, init: Init) -> EarlyCli | None:
        """The early CLI if it was started for this command; any other is killed."""
        early, self._early = self._early, None
        if early is not None and early.session_id != init.session_id:
            early.discard()
            return None
        return early

    async def _retire(self, session: AgentSession) -> None:
        await session.finish()
        await session.disconnect()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[Any] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shutdown(self) -> None:
        if self._early is not None:
            self._early.discard()
            self._early = None
        session = self._session
        if session is not None:
            await session.finish()
        self.emit(SessionStopped(session_id=self._session_id, reason=self._stop_reason))
        self._emitter.close()
        if session is not None:
            await session.disconnect()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _amain(settings: RunnerSettings, emitter: Emitter, startup: StartUp) -> int:
    stdin = StdinLines(0, read=startup.stdin, eof=startup.eof)
    runner = Runner(settings, emitter, stdin, startup.cli)
    return await runner.run()


def main(startup: StartUp | None = None) -> int:
    """Run the runner process; return its exit code.

    ``startup``: what ``python -m runner`` did before the SDK was imported (runner.early).
    """
    settings = RunnerSettings.from_env()
    startup = startup or StartUp()
    # stderr only: stdout carries the protocol.
    configure_logging(settings.log_level, json=settings.log_json)
    writer = StdoutWriter(1)
    emitter = Emitter(writer, ReplayBuffer(settings.replay_buffer, settings.replay_buffer_bytes))
    log.info("runner starting boot_id=%s workspace=%s", emitter.boot_id, settings.workspace)
    if startup.note:
        log.info("start-up: %s", startup.note)
    try:
        return asyncio.run(_amain(settings, emitter, startup))
    finally:
        writer.close()
