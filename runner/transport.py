"""The SDK's custom-transport hook over a CLI process that is already running.

``ClaudeSDKClient(options, transport=...)`` takes any :class:`Transport`. This one speaks to a
CLI :mod:`runner.early` started before the SDK was imported, with exactly the command line and
environment the SDK's own ``SubprocessCLITransport`` would have used (the session checks that
before adopting it). Reading follows the SDK's transport: NDJSON lines through its own line
parser (non-JSON lines skipped, a message over 1 MiB refused), a non-zero exit raised as
``ProcessError``; closing is bounded the same way (stdin EOF, 5 s, SIGTERM, 5 s, SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import subprocess
from collections.abc import AsyncIterator, Callable
from typing import Any

from claude_agent_sdk import (
    ClaudeAgentOptions,
    CLIConnectionError,
    CLIJSONDecodeError,
    ProcessError,
)
from claude_agent_sdk._internal.transport import Transport
from claude_agent_sdk._internal.transport.subprocess_cli import (
    SubprocessCLITransport,
    _parse_stdout_line,
)

from runner.early import sdk_process_env

log = logging.getLogger("runner.transport")

# The SDK's default bound on one message (SubprocessCLITransport._max_buffer_size).
MAX_MESSAGE = 1024 * 1024


def sdk_launch(options: ClaudeAgentOptions) -> tuple[list[str], dict[str, str], str]:
    """The command line, environment and directory the SDK's own transport starts the CLI
    with for ``options`` (the command line is the SDK's; see runner.early.sdk_process_env)."""
    if options.can_use_tool is not None:
        # What ClaudeSDKClient.connect does before it makes its transport.
        options = dataclasses.replace(options, permission_prompt_tool_name="stdio")
    sdk = SubprocessCLITransport(prompt="", options=options)
    if options.cli_path is None:
        sdk._cli_path = sdk._find_cli()
    cwd = str(options.cwd) if options.cwd else ""
    return sdk._build_command(), sdk_process_env(dict(options.env), cwd), cwd


class StartedProcessTransport(Transport):
    """Talk to ``process`` (pipes on stdin, stdout and stderr) as the SDK's transport would."""

    def __init__(
        self, process: subprocess.Popen[bytes], stderr: Callable[[str], None] | None
    ) -> None:
        self._process = process
        self._on_stderr = stderr
        self._stdin: asyncio.StreamWriter | None = None
        self._stdout: asyncio.StreamReader | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._ready = False
        self._exit_error: Exception | None = None

    async def connect(self) -> None:
        if self._ready:
            return
        p = self._process
        assert p.stdin is not None and p.stdout is not None
        loop = asyncio.get_running_loop()
        # Two extra bytes: a line of exactly MAX_MESSAGE plus its newline still fits.
        stdout = self._stdout = asyncio.StreamReader(limit=MAX_MESSAGE + 2)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdout), p.stdout)
        # FlowControlMixin is what StreamWriter.drain waits on (asyncio.subprocess does this).
        w_transport, w_protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, p.stdin
        )
        self._stdin = asyncio.StreamWriter(w_transport, w_protocol, None, loop)
        if p.stderr is not None:
            self._stderr_task = asyncio.create_task(self._read_stderr(p.stderr))
        self._ready = True

    async def _read_stderr(self, pipe: Any) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_MESSAGE + 2)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        while True:
            try:
                raw = await reader.readline()
            except ValueError:  # an over-long line: what was read of it is dropped
                continue
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip()
            if line and self._on_stderr is not None:
                try:
                    self._on_stderr(line)
                except Exception:
                    log.debug("stderr callback raised; continuing", exc_info=True)

    async def write(self, data: str) -> None:
        async with self._write_lock:
            if not self._ready or self._stdin is None:
                raise CLIConnectionError("ProcessTransport is not ready for writing")
            if self._process.poll() is not None:
                raise CLIConnectionError(
                    f"Cannot write to terminated process (exit code: {self._process.returncode})"
                )
            try:
                self._stdin.write(data.encode())
                await self._stdin.drain()
            except Exception as exc:
                self._ready = False
                self._exit_error = CLIConnectionError(f"Failed to write to process stdin: {exc}")
                raise self._exit_error from exc

    def read_messages(self) -> AsyncIterator[dict[str, Any]]:
        return self._read_messages()

    async def _read_messages(self) -> AsyncIterator[dict[str, Any]]:
        if self._stdout is None:
            raise CLIConnectionError("Not connected")
        while True:
            try:
                raw = await self._stdout.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                raw = exc.partial  # EOF: a last line without its newline, or nothing
                with contextlib.suppress(CLIJSONDecodeError):
                    data = _parse_stdout_line(raw.decode("utf-8", "replace"))
                    if data is not None:
                        yield data
                break
            except asyncio.LimitOverrunError as exc:
                raise CLIJSONDecodeError(
                    f"JSON message exceeded maximum buffer size of {MAX_MESSAGE} bytes",
                    ValueError(f"Buffer size {exc.consumed} exceeds limit {MAX_MESSAGE}"),
                ) from exc
            data = _parse_stdout_line(raw.decode("utf-8", "replace"))
            if data is not None:
                yield data
        returncode = await asyncio.to_thread(self._process.wait)
        if returncode != 0:
            self._exit_error = ProcessError(
                f"Command failed with exit code {returncode}",
                exit_code=returncode,
                stderr="Check stderr output for details",
            )
            raise self._exit_error

    async def end_input(self) -> None:
        async with self._write_lock:
            if self._stdin is not None:
                with contextlib.suppress(Exception):
                    self._stdin.close()
                self._stdin = None

    def is_ready(self) -> bool:
        return self._ready

    async def close(self) -> None:
        """End the CLI: stdin EOF, then SIGTERM, then SIGKILL, each after 5 s (bounded)."""
        self._ready = False
        if self._stderr_task is not None:
            self._stderr_task.cancel()
            await asyncio.gather(self._stderr_task, return_exceptions=True)
            self._stderr_task = None
        await self.end_input()
        p = self._process
        for step in (None, p.terminate, p.kill):
            if p.poll() is not None:
                break
            if step is not None:
                with contextlib.suppress(ProcessLookupError):
                    step()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(p.wait, 5.0)
        for pipe in (p.stdout, p.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
