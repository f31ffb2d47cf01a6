"""One agent session: the SDK client's life, the chat queue, turns, interrupts and reconnects.

One ``ClaudeSDKClient`` serves the whole session. A single reader task consumes its message
stream for as long as it lives (so the CLI dying between turns is noticed at once, and
sub-agent messages arriving after their turn still have somewhere to go), and routes each
message to the turn it belongs to. Chats queue and run one at a time; every turn, however it
ends, gets exactly one ``turn.completed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    UserMessage,
)
from claude_agent_sdk import Message as SdkMessage
from claude_agent_sdk.types import CanUseToolShadowedWarning

from broker.events import (
    ErrorEvent,
    Event,
    SessionReady,
    SystemNotice,
    ToolStarted,
    TurnCompleted,
    TurnStarted,
)
from broker.events import (
    UserMessage as UserMessageEvent,
)
from broker.runner_wire import ApprovalAnswer, ChatIn, Init
from configs.model import AgentConfig
from runner.approvals import ApprovalGate, tap_requests
from runner.cli_config import agent_config, prepare_dirs
from runner.early import EarlyCli
from runner.errors import ConnectError, classify, describe
from runner.frames import Frame, frames
from runner.options import build_options
from runner.sandbox import SandboxLink, confine, private_scratch, remote_mcp_names
from runner.settings import RunnerSettings
from runner.stderr_tail import StderrTail
from runner.translate import Translator, TurnContext
from runner.transport import StartedProcessTransport, sdk_launch

log = logging.getLogger("runner.session")

Emit = Callable[[Event], object]


class _Turn:
    """A turn in flight: its translation context plus the runner's own bookkeeping."""

    def __init__(self, ctx: TurnContext, *, auto: bool = False) -> None:
        self.ctx = ctx
        # Started by the CLI itself (e.g. a background task finished), not by a chat.
        self.auto = auto
        self.done = asyncio.Event()
        self.query_sent = False


class AgentSession:
    """Drive one SDK client for a session; all methods are called from the event loop."""

    def __init__(
        self,
        init: Init,
        settings: RunnerSettings,
        emit: Emit,
        *,
        prestart: bool = False,
        early: EarlyCli | None = None,
    ) -> None:
        """Validate the config (raises ConfigError) and prepare; :meth:`start` connects.

        ``prestart`` (a warm-pool runner): connect, then announce ``runner.prestarted``
        instead of ``session.ready``, which waits for :meth:`bind`. ``early``: the CLI
        :mod:`runner.early` started for this init; the first connect adopts it if the SDK
        would have started it the same way (the session owns it from now on).
        """
        self.session_id = init.session_id
        self._init = init
        self._settings = settings
        self._emit = emit
        self._stderr = StderrTail(settings.stderr_lines)
        self._translator = Translator(self.session_id)
        # Decoded and built once here so a bad config fails the init command, not a chat.
        self._config = agent_config(init.config)
        build_options(init, settings, resume=None, stderr=self._stderr, config=self._config)
        self._approvals = ApprovalGate(
            self.session_id,
            emit,
            timeout=init.approval_timeout,
            ask_unlisted=self._config.permissions.otherwise == "ask",
            current_turn=lambda: self._current.ctx.turn_id if self._current else None,
        )
        self._approvals.grant(init.session_grants)
        # Chats not started yet, each already a turn so an interrupt can reach it.
        self._pending: deque[tuple[ChatIn, _Turn]] = deque()
        self._wakeup = asyncio.Event()
        self._client: ClaudeSDKClient | None = None
        self._reader: asyncio.Task[None] | None = None
        self._main_task: asyncio.Task[None] | None = None
        self._current: _Turn | None = None
        self._sdk_session_id: str | None = init.resume
        self._tools: list[str] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._closing = False
        # The way out of the sandbox (None outside one) and a directory only the runner writes.
        self._link = (
            SandboxLink.for_prestart(settings) if prestart else SandboxLink.for_init(init, settings)
        )
        self._scratch: Path | None = None
        self._early = early
        if early is not None and self._link is not None:
            # The forwarders serve the sockets whose ports the early CLI was given.
            self._link.listeners, early.listeners = early.listeners, {}
        # Pre-started: session.ready is held until bind(); (model, resumed) once connected.
        self._held = prestart
        self._connected_as: tuple[str | None, bool] | None = None
        self._started_at = time.monotonic()

    # ------------------------------------------------------------------ public API
    @property
    def busy(self) -> bool:
        return self._current is not None or bool(self._pending)

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def config(self) -> AgentConfig:
        """The session's agent config, decoded from ``init.config``."""
        return self._config

    @property
    def sdk_session_id(self) -> str | None:
        return self._sdk_session_id

    def start(self) -> None:
        """Connect in the background, then serve queued chats one at a time."""
        self._main_task = asyncio.create_task(self._main(), name="session-main")

    def accepts(self, init: Init) -> bool:
        """Whether a pre-started session can serve ``init`` by binding alone.

        The CLI is already running with the prestart's config and environment: that is only
        right for an init that would have started it the same way.
        """
        mine = self._init
        return (
            self._held
            and init.session_id == mine.session_id
            and init.config == mine.config
            and init.env == mine.env
            and not init.api_key
            and not init.mcp_env
            and init.resume is None
        )

    def bind(self, init: Init) -> None:
        """Give a pre-started session its session: worker, gateway token, approval timeout."""
        self._init = init
        self._held = False
        self._approvals.set_timeout(init.approval_timeout)
        self._approvals.grant(init.session_grants)
        if self._link is not None and init.gateway_token:
            self._link.bind(init.gateway_token)
        if self._connected_as is not None:
            self._announce_ready(*self._connected_as)
        # else: _connect announces it once the CLI is up.

    def answer(self, answer: ApprovalAnswer) -> None:
        """Apply a person's answer to a pending approval request."""
        self._approvals.answer(answer)

    def pending_approvals(self) -> list[dict[str, Any]]:
        """The approval requests still waiting for an answer (event dicts)."""
        return self._approvals.pending()

    def submit(self, chat: ChatIn) -> None:
        """Queue a chat; it runs after the chats before it."""
        self._pending.append((chat, self._new_turn(chat.turn_id)))
        self._wakeup.set()

    def interrupt(self) -> Coroutine[Any, Any, None] | None:
        """Stop the running turn; return the rest of the work to await, or None.

        The target is chosen now, in command order (a chat read after the interrupt is never
        hit). With no turn running, the next queued chat is the one the user sees as running
        (it waits for the client to connect, or arrived in the same read): it is stopped
        before it starts. With nothing at all, this is a no-op. A turn whose prompt already
        went to the CLI is interrupted there; the returned coroutine waits for it to end and
        restarts the CLI if it does not within ``interrupt_grace``.
        """
        turn = self._current
        # A request waiting for a person ends with the turn it belongs to.
        self._approvals.cancel_all("interrupted")
        if turn is None or turn.ctx.completed:
            if self._pending and not self._pending[0][1].ctx.interrupted:
                self._pending[0][1].ctx.interrupted = True
            return None
        if turn.ctx.interrupted:
            return None
        turn.ctx.interrupted = True
        client = self._client
        if not turn.query_sent or client is None:
            # Still connecting: the turn sees the flag before it sends anything.
            return None
        return self._interrupt_cli(turn, client)

    async def _interrupt_cli(self, turn: _Turn, client: ClaudeSDKClient) -> None:
        started = time.monotonic()
        try:
            await asyncio.wait_for(client.interrupt(), self._settings.interrupt_grace)
        except Exception as exc:  # the CLI may already be gone; the wait below decides
            log.warning("interrupt request failed: %s", describe(exc))
        try:
            await asyncio.wait_for(turn.done.wait(), self._settings.interrupt_grace)
        except TimeoutError:
            if not turn.done.is_set():
                self._turn_error(
                    turn,
                    "interrupt_timeout",
                    "the CLI did not end the interrupted turn in time; restarting it",
                    turn.ctx.detail(),
                )
                self._drop_client(client)
                self._finish(turn)
        log.info("turn %s interrupted in %.3fs", turn.ctx.turn_id, time.monotonic() - started)

    async def finish(self) -> None:
        """Stop taking chats, end the running turn (interrupting it) and cancel queued chats."""
        self._closing = True
        self._approvals.cancel_all("stopped")
        turn = self._current
        if turn is not None and not turn.ctx.completed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._interrupt_and_wait(turn), self._settings.stop_grace)
        turn = self._current
        if turn is not None:
            # Whatever is still running now ends because of the stop.
            turn.ctx.interrupted = True
        if self._main_task is not None:
            self._main_task.cancel()
            await asyncio.gather(self._main_task, return_exceptions=True)
        turn = self._current
        if turn is not None and not turn.ctx.completed:
            self._complete(turn)
        self._current = None
        # Chats that never started: they still get their turn.completed.
        while self._pending:
            chat, _ = self._pending.popleft()
            self._emit_turn_start(chat)
            self._emit(
                TurnCompleted(
                    session_id=self.session_id,
                    turn_id=chat.turn_id,
                    subtype="cancelled",
                    interrupted=True,
                    sdk_session_id=self._sdk_session_id,
                )
            )

    async def _interrupt_and_wait(self, turn: _Turn) -> None:
        rest = self.interrupt()  # None when an interrupt is already under way
        if rest is not None:
            await rest
        await turn.done.wait()

    async def disconnect(self) -> None:
        """Close the SDK client (its CLI exits) and wait, bounded, for cleanup to finish."""
        self.discard_early()
        client = self._client
        if client is not None:
            self._drop_client(client)
        if self._background:
            _done, pending = await asyncio.wait(
                set(self._background), timeout=self._settings.disconnect_timeout
            )
            if pending:
                log.warning("%d cleanup task(s) still running at exit", len(pending))
        if self._link is not None:
            await self._link.close()

    # ------------------------------------------------------------------ connection
    async def _main(self) -> None:
        try:
            await self._connect()
        except ConnectError as exc:
            if self._held:
                # A warm slot whose CLI cannot start is useless: the pool discards it.
                self._emit(
                    SystemNotice(
                        session_id=self.session_id,
                        subtype="runner.prestarted",
                        data={"ok": False, "error": str(exc), "detail": exc.detail[-2000:]},
                    )
                )
            else:
                # Not fatal: the next chat tries again.
                self._emit_error(exc.code, str(exc), exc.detail)
        while not self._stopping():
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            chat, turn = self._pending.popleft()
            await self._run_turn(chat, turn)

    async def _connect(self) -> ClaudeSDKClient:
        resume = self._sdk_session_id
        try:
            client = await self._open(resume)
        except ConnectError as exc:
            if resume is None or "No conversation found" not in f"{exc}\n{exc.detail}":
                raise
            # The transcript is gone (new volume?): a fresh conversation beats no session.
            self._emit_error(
                "resume_failed",
                f"cannot resume conversation {resume}; starting a new one",
                exc.detail,
            )
            self._sdk_session_id = resume = None
            client = await self._open(None)
        self._client = client
        self._reader = asyncio.create_task(self._read(client), name="sdk-reader")
        model = await self._resolve_model(client)
        self._connected_as = (model, resume is not None)
        if self._held:
            self._emit(
                SystemNotice(
                    session_id=self.session_id,
                    subtype="runner.prestarted",
                    data={"ok": True, "seconds": round(time.monotonic() - self._started_at, 3)},
                )
            )
        else:
            self._announce_ready(model, resume is not None)
        return client

    def _announce_ready(self, model: str | None, resumed: bool) -> None:
        self._emit(
            SessionReady(
                session_id=self.session_id,
                worker_id=self._init.worker_id,
                config_id=self._config.id,
                model=model,
                tools=list(self._tools),
                resumed=resumed,
            )
        )

    async def _confine(self, options: ClaudeAgentOptions) -> ClaudeAgentOptions:
        """Route the CLI through the sandbox's forwarders and start it as the agent's uid."""
        if self._link is not None:
            await self._link.start(remote_mcp_names(options))
        if self._scratch is None:
            self._scratch = private_scratch(self._settings)
        options = confine(options, self._link, self._settings, self._scratch)
        if self._settings.agent_uid is None:
            # As the agent's uid, runner/bin/agent-cli makes them (the runner cannot).
            prepare_dirs(options.env)
        return options

    async def _open(self, resume: str | None) -> ClaudeSDKClient:
        mark = self._stderr.mark
        started = time.monotonic()
        try:
            options = build_options(
                self._init,
                self._settings,
                resume=resume,
                stderr=self._stderr,
                can_use_tool=self._approvals.can_use_tool,
                config=self._config,
            )
            options = await self._confine(options)
            client = ClaudeSDKClient(options, transport=self._adopt_early(options))
            with warnings.catch_warnings():
                # The SDK warns that whole-tool allow rules shadow can_use_tool; Claude Code
                # still asks for calls an ask rule matches (deny > ask > allow, measured).
                warnings.simplefilter("ignore", CanUseToolShadowedWarning)
                await client.connect()
            if options.can_use_tool is not None:
                tap_requests(client, self._approvals.note_request)
        except Exception as exc:
            # Give the stderr reader a moment: the CLI's reason often lands just after exit.
            await asyncio.sleep(0.05)
            detail = self._stderr.since(mark) or self._stderr.tail()
            raise ConnectError(describe(exc), detail) from exc
        log.info("SDK client connected in %.3fs (resume=%s)", time.monotonic() - started, resume)
        return client

    def _adopt_early(self, options: ClaudeAgentOptions) -> StartedProcessTransport | None:
        """A transport over the early CLI if it runs exactly as the SDK would start it, else
        None (the SDK starts its own; the early one is killed). Used once, at the first connect.
        """
        early, self._early = self._early, None
        if early is None:
            return None
        argv, env, cwd = sdk_launch(options)
        differs = [
            what
            for what, same in (
                ("command line", argv == early.argv),
                ("environment", env == early.env),
                ("working directory", cwd == early.cwd),
                ("process", early.process.poll() is None),
            )
            if not same
        ]
        if differs:
            log.warning(
                "the CLI started early differs from the SDK's (%s); starting another",
                ", ".join(differs),
            )
            early.discard()
            return None
        log.info(
            "adopting the CLI started early (pid %d, %.3fs ago)",
            early.process.pid,
            time.monotonic() - early.started_at,
        )
        return StartedProcessTransport(early.process, options.stderr)

    def discard_early(self) -> None:
        """Kill an early CLI no connect adopted (the session ends before connecting)."""
        early, self._early = self._early, None
        if early is not None:
            early.discard()

    async def _resolve_model(self, client: ClaudeSDKClient) -> str | None:
        configured = self._config.model or None
        try:
            info = await client.get_server_info()
        except Exception:
            return configured
        wanted = configured or "default"
        for entry in (info or {}).get("models") or []:
            if isinstance(entry, dict) and entry.get("value") == wanted:
                resolved = entry.get("resolvedModel")
                if isinstance(resolved, str):
                    return resolved
        return configured

    def _stopping(self) -> bool:
        # A call, not the attribute: finish() flips it while _main awaits a chat.
        return self._closing

    def _drop_client(self, client: ClaudeSDKClient) -> None:
        """Forget ``client`` and close it in the background (its reader is stopped first)."""
        if self._client is client:
            self._client = None
            if self._reader is not None:
                self._reader.cancel()
                self._reader = None
        self._spawn(self._close_client(client))

    async def _close_client(self, client: ClaudeSDKClient) -> None:
        # Never cancelled from outside: the SDK's shielded close must run to the end or the
        # CLI process leaks (asyncio cancellation skips its terminate/kill escalation).
        try:
            await client.disconnect()
        except Exception as exc:
            log.warning("disconnect failed: %s", describe(exc))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ turns
    async def _run_turn(self, chat: ChatIn, turn: _Turn) -> None:
        turn.ctx.detail = self._detail_from_now()
        self._emit_turn_start(chat)
        # A CLI-started turn would swallow this prompt and answer both in one result.
        while self._current is not None and self._current.auto:
            await self._current.done.wait()
        self._current = turn
        try:
            client = self._client
            if client is None and not turn.ctx.interrupted:
                client = await self._connect()
            if turn.ctx.interrupted or client is None:
                return
            turn.query_sent = True
            await client.query(chat.message)
            await turn.done.wait()
        except ConnectError as exc:
            self._turn_error(turn, exc.code, str(exc), exc.detail)
        except Exception as exc:
            self._turn_error(turn, classify(exc), describe(exc), turn.ctx.detail())
            if self._client is not None:
                self._drop_client(self._client)
        finally:
            if not turn.ctx.completed:
                self._complete(turn)
            if self._current is turn:
                self._current = None

    def _new_turn(self, turn_id: str, *, auto: bool = False) -> _Turn:
        return _Turn(TurnContext(turn_id, detail=self._detail_from_now()), auto=auto)

    def _detail_from_now(self) -> Callable[[], str]:
        """Return a function giving the CLI stderr written from now on."""
        mark = self._stderr.mark

        def detail() -> str:
            return self._stderr.since(mark)

        return detail

    def _emit_turn_start(self, chat: ChatIn) -> None:
        self._emit(
            UserMessageEvent(session_id=self.session_id, turn_id=chat.turn_id, text=chat.message)
        )
        self._emit(TurnStarted(session_id=self.session_id, turn_id=chat.turn_id))

    def _complete(self, turn: _Turn) -> None:
        """Emit the ``turn.completed`` of a turn the CLI did not finish with a result."""
        if turn.ctx.error_emitted:
            subtype = "error"
        elif turn.ctx.interrupted:
            subtype = "interrupted"
        else:
            subtype = "cancelled"
        self._emit(
            TurnCompleted(
                session_id=self.session_id,
                turn_id=turn.ctx.turn_id or "",
                subtype=subtype,
                is_error=turn.ctx.error_emitted,
                interrupted=turn.ctx.interrupted,
                sdk_session_id=self._sdk_session_id,
            )
        )
        turn.ctx.completed = True

    def _finish(self, turn: _Turn) -> None:
        """Mark ``turn`` over from outside the message stream (CLI died, interrupt timed out)."""
        turn.done.set()
        if turn.auto:
            if not turn.ctx.completed:
                self._complete(turn)
            if self._current is turn:
                self._current = None

    def _turn_error(self, turn: _Turn, code: str, message: str, detail: str) -> None:
        if turn.ctx.error_emitted:
            return
        turn.ctx.error_emitted = True
        self._emit(
            ErrorEvent(
                session_id=self.session_id,
                turn_id=turn.ctx.turn_id,
                code=code,
                message=message,
                detail=detail or self._stderr.tail(),
            )
        )

    def _emit_error(self, code: str, message: str, detail: str = "") -> None:
        self._emit(
            ErrorEvent(session_id=self.session_id, code=code, message=message, detail=detail)
        )

    # ------------------------------------------------------------------ the message stream
    async def _read(self, client: ClaudeSDKClient) -> None:
        failure: Exception | None = None
        try:
            async for frame in frames(client):
                self._on_frame(frame)
        except Exception as exc:
            failure = exc
        # Cancellation (a deliberate drop) skips this: only an unexpected end gets here.
        self._on_client_lost(client, failure)

    def _on_frame(self, frame: Frame) -> None:
        message, raw = frame.message, frame.raw
        parent = getattr(message, "parent_tool_use_id", None)
        if isinstance(message, ResultMessage) and parent is None:
            self._sdk_session_id = message.session_id or self._sdk_session_id
        elif isinstance(message, SystemMessage) and message.subtype == "init":
            tools = message.data.get("tools")
            if isinstance(tools, list):
                self._tools = [str(t) for t in tools]
            sid = message.data.get("session_id")
            if isinstance(sid, str) and sid:
                self._sdk_session_id = sid
        ctx = self._context_for(message, parent)
        try:
            for event in self._translator.translate(message, raw, ctx):
                self._emit(event)
                if isinstance(event, ToolStarted):
                    self._approvals.tool_seen(event)
        except Exception as exc:
            # A frame this runner cannot turn into events is reported, not fatal.
            log.exception("cannot translate a %s frame", type(message).__name__)
            self._emit(
                ErrorEvent(
                    session_id=self.session_id,
                    turn_id=ctx.turn_id,
                    code="runner_error",
                    message=f"cannot translate an SDK message: {describe(exc)}",
                    detail=repr(raw if raw is not None else message)[:4000],
                )
            )
        turn = self._current
        if isinstance(message, ResultMessage) and turn is not None and turn.ctx is ctx:
            turn.done.set()
            # Cleared now, not when the turn's task wakes: what follows is not this turn's.
            self._current = None

    def _context_for(self, message: SdkMessage | None, parent: str | None) -> TurnContext:
        turn = self._current
        if parent is not None:
            owner = self._translator.turn_of(parent)
            if turn is not None and owner in (None, turn.ctx.turn_id):
                return turn.ctx
            # A background sub-agent of an earlier turn: keep its events on that turn.
            return TurnContext(owner, detail=self._stderr.tail)
        if turn is None and isinstance(
            message, AssistantMessage | UserMessage | StreamEvent | ResultMessage
        ):
            turn = self._new_turn(f"auto-{uuid.uuid4().hex[:12]}", auto=True)
            turn.query_sent = True
            self._current = turn
            self._emit(TurnStarted(session_id=self.session_id, turn_id=turn.ctx.turn_id or ""))
            log.info("the CLI started turn %s on its own", turn.ctx.turn_id)
        return turn.ctx if turn is not None else TurnContext(None, detail=self._stderr.tail)

    def _on_client_lost(self, client: ClaudeSDKClient, failure: Exception | None) -> None:
        if client is not self._client:
            return
        self._client = None
        self._reader = None
        self._spawn(self._close_client(client))
        code = classify(failure) if failure is not None else "cli_exited"
        message = describe(failure) if failure is not None else "the Claude Code CLI exited"
        log.warning("SDK client lost: %s", message)
        turn = self._current
        if turn is not None and not turn.ctx.completed:
            self._turn_error(turn, code, message, turn.ctx.detail() or self._stderr.tail())
            self._finish(turn)
        elif not self._closing:
            self._emit_error(code, f"{message}; the next chat reconnects", self._stderr.tail())
