"""A scripted Anthropic Messages API server for tests, demos and benchmarks (loopback only).

It speaks the real wire protocol the Claude Code CLI uses (``POST /v1/messages``, always
answered as SSE) on a plain asyncio HTTP/1.1 server running in its own thread, so sync and
async tests (and blocking docker calls) can share one instance.

Which reply a request gets is decided from the conversation alone, so CLI retries never
advance a script: the last human text block (not a tool result, not a ``<system-reminder>``)
of the last user message that has one is looked at; if it contains ``[[script:NAME]]`` the server
answers with step ``k`` of script ``NAME``, ``k`` being the number of assistant messages after
that user message. Without a marker it answers ``Echo: <user text>``.

Every request is recorded (:attr:`ModelServer.requests`), and the monotonic time at which each
``text_delta`` was written to the socket is kept in :attr:`ModelServer.emitted` (keyed by the
delta text) for latency measurements: ``time.monotonic()`` is system-wide on Linux, so the
times compare with those taken in other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tests.modelserver.script import (
    MARKER_RE,
    HttpError,
    Step,
    StepSpec,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    normalize,
)

log = logging.getLogger("tests.modelserver")

DEFAULT_MODEL = "claude-scripted-1"
_REMINDER_PREFIX = "<system-reminder>"


@dataclass
class RecordedRequest:
    """One HTTP request the server received, with its JSON body when it had one."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    script: str | None = None
    step: int | None = None

    @property
    def system_text(self) -> str:
        """Return the system prompt as one string (the API accepts a string or text blocks)."""
        system = self.body.get("system") if isinstance(self.body, dict) else None
        if isinstance(system, str):
            return system
        if isinstance(system, list):
            return "\n".join(b.get("text", "") for b in system if isinstance(b, dict))
        return ""

    @property
    def messages(self) -> list[dict[str, Any]]:
        msgs = self.body.get("messages") if isinstance(self.body, dict) else None
        return list(msgs) if isinstance(msgs, list) else []

    @property
    def tool_names(self) -> list[str]:
        tools = self.body.get("tools") if isinstance(self.body, dict) else None
        if not isinstance(tools, list):
            return []
        return [t["name"] for t in tools if isinstance(t, dict) and "name" in t]

    @property
    def all_text(self) -> str:
        """Return every text of every message, for 'did the model see X' assertions."""
        return "\n".join(_texts_of(m, include_tool_results=True) for m in self.messages)

    @property
    def last_user_text(self) -> str:
        found = _last_human_message(self.messages)
        return "" if found is None else _human_text(self.messages[found])


def _texts_of(message: dict[str, Any], *, include_tool_results: bool = False) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif include_tool_results and block.get("type") == "tool_result":
            inner = block.get("content")
            if isinstance(inner, str):
                parts.append(inner)
            elif isinstance(inner, list):
                parts.extend(str(b.get("text", "")) for b in inner if isinstance(b, dict))
    return "\n".join(parts)


def _human_texts(message: dict[str, Any]) -> list[str]:
    """Return the user-typed text blocks of a message, without the CLI's system reminders."""
    content = message.get("content")
    if isinstance(content, str):
        texts = [content]
    elif isinstance(content, list):
        texts = [
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        ]
    else:
        texts = []
    return [t for t in texts if t.strip() and not t.lstrip().startswith(_REMINDER_PREFIX)]


def _human_text(message: dict[str, Any]) -> str:
    """Return the last user-typed text block of a message ("" when there is none).

    Only the last block counts: after a failed or interrupted turn the CLI merges the next
    prompt into the same user message, so earlier blocks belong to earlier chats.
    """
    texts = _human_texts(message)
    return texts[-1] if texts else ""


def _last_human_message(messages: Sequence[dict[str, Any]]) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        msg = messages[i]
        if msg.get("role") == "user" and _human_texts(msg):
            return i
    return None


def select(messages: Sequence[dict[str, Any]]) -> tuple[str | None, int, str]:
    """Return ``(script name or None, step index, human text)`` for a conversation."""
    idx = _last_human_message(messages)
    if idx is None:
        return None, 0, ""
    human = _human_text(messages[idx])
    names = MARKER_RE.findall(human)
    # role:"system" entries (the CLI may insert them) are neither user nor assistant turns.
    step_index = sum(1 for m in messages[idx + 1 :] if m.get("role") == "assistant")
    return (names[-1] if names else None), step_index, human


def _chunks(value: str, size: int) -> Iterator[str]:
    if size <= 0 or len(value) <= size:
        yield value
        return
    for i in range(0, len(value), size):
        yield value[i : i + size]


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class _ClientGone(Exception):
    pass


class ModelServer:
    """The scripted server; :meth:`start` runs it on a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        # delta text -> monotonic time its SSE chunk was written (the last one wins).
        self.emitted: dict[str, float] = {}
        # Every (delta text, time) in write order, for when texts repeat.
        self.emitted_log: list[tuple[str, float]] = []
        self._scripts: dict[str, list[Step | HttpError]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._announce = False
        self._conns: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ public API
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_script(self, name: str, steps: Sequence[StepSpec]) -> str:
        """Register (or replace) script ``name``; return the marker that selects it."""
        if not MARKER_RE.fullmatch(f"[[script:{name}]]"):
            raise ValueError(f"bad script name {name!r}")
        with self._lock:
            self._scripts[name] = [normalize(s) for s in steps]
        return f"[[script:{name}]]"

    def requests_for(self, script: str) -> list[RecordedRequest]:
        """Return the recorded model requests that were answered from ``script``."""
        with self._lock:
            return [r for r in self.requests if r.script == script]

    def model_requests(self) -> list[RecordedRequest]:
        """Return the recorded ``POST /v1/messages`` requests."""
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == "/v1/messages"]

    def start(self, timeout: float = 10.0) -> ModelServer:
        """Start serving on a background thread; return once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._thread_main, name="modelserver", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("model server did not start")
        if self._error is not None:
            raise RuntimeError("model server failed to start") from self._error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and join the thread."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (for ``python -m tests.modelserver``)."""
        self._announce = True
        asyncio.run(self._main())

    # ------------------------------------------------------------------ server plumbing
    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to start() instead of dying silently
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle_conn, self.host, self.port)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        if self._announce:
            print(f"scripted model server listening on {self.base_url}", flush=True)
        async with server:
            await self._stop.wait()
            server.close()
            # Close idle keep-alive connections so their handlers end instead of being
            # cancelled mid-read when the loop shuts down.
            for writer in list(self._conns):
                writer.close()
            if self._handlers:
                await asyncio.wait(set(self._handlers), timeout=2.0)

    async def _handle_conn(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        self._conns.add(writer)
        try:
            while True:
                keep_alive = await self._handle_request(reader, writer)
                if not keep_alive:
                    break
        except (_ClientGone, ConnectionError, asyncio.IncompleteReadError):
            # The CLI aborts a streaming request when its turn is interrupted.
            pass
        except Exception:
            log.exception("model server: request failed")
        finally:
            self._conns.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        request_line = await reader.readline()
        if not request_line:
            return False
        try:
            method, target, _version = request_line.decode("latin-1").split(" ", 2)
        except ValueError:
            await self._send_json(writer, 400, {"error": "bad request line"}, keep_alive=False)
            return False
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raw = await self._read_body(reader, headers)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        rec = RecordedRequest(method, target, headers, body, time.monotonic())
        keep_alive = headers.get("connection", "").lower() != "close"
        path = target.split("?", 1)[0]

        if method == "POST" and path == "/v1/messages" and isinstance(body, dict):
            script_name, step_index, human = select(rec.messages)
            rec.script, rec.step = script_name, step_index
            with self._lock:
                self.requests.append(rec)
            await self._answer_messages(writer, body, script_name, step_index, human)
            return keep_alive
        with self._lock:
            self.requests.append(rec)
        if method == "POST" and path == "/v1/messages/count_tokens":
            tokens = max(1, len(raw) // 4)
            await self._send_json(writer, 200, {"input_tokens": tokens}, keep_alive)
            return keep_alive
        if method in ("GET", "HEAD") and path in ("/", "/health"):
            await self._send_json(writer, 200, {"ok": True}, keep_alive)
            return keep_alive
        await self._send_json(
            writer,
            404,
            {"type": "error", "error": {"type": "not_found_error", "message": f"no {path}"}},
            keep_alive,
        )
        return keep_alive

    async def _read_body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size_line = await reader.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers end with an empty line
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += await reader.readexactly(size)
                await reader.readexactly(2)
        length = int(headers.get("content-length", "0") or 0)
        return await reader.readexactly(length) if length else b""

    async def _send_json(
        self, writer: asyncio.StreamWriter, status: int, payload: Any, keep_alive: bool
    ) -> None:
        data = json.dumps(payload).encode()
        head = (
            f"HTTP/1.1 {status} {_reason(status)}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(data)}\r\n"
            f"request-id: req_{uuid.uuid4().hex[:24]}\r\n"
            f"connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        )
        writer.write(head.encode() + data)
        await writer.drain()

    # ------------------------------------------------------------------ replies
    def _resolve(self, script_name: str | None, step_index: int, human: str) -> Step | HttpError:
        if script_name is None:
            return Step((TextBlock(f"Echo: {human.strip()}"),))
        with self._lock:
            steps = self._scripts.get(script_name)
        if steps is None:
            return Step((TextBlock(f"[unknown script {script_name}]"),))
        if step_index >= len(steps):
            return Step((TextBlock(f"[script {script_name} exhausted at step {step_index}]"),))
        return steps[step_index]

    async def _answer_messages(
        self,
        writer: asyncio.StreamWriter,
        body: dict[str, Any],
        script_name: str | None,
        step_index: int,
        human: str,
    ) -> None:
        reply = self._resolve(script_name, step_index, human)
        if isinstance(reply, HttpError):
            payload = {"type": "error", "error": {"type": reply.type, "message": reply.message}}
            # The CLI retries 5xx on its own; "close" keeps each retry a clean request.
            await self._send_json(writer, reply.status, payload, keep_alive=False)
            return
        model = str(body.get("model") or DEFAULT_MODEL)
        head = (
            "HTTP/1.1 200 OK\r\n"
            "content-type: text/event-stream; charset=utf-8\r\n"
            "cache-control: no-cache\r\n"
            "transfer-encoding: chunked\r\n"
            f"request-id: req_{uuid.uuid4().hex[:24]}\r\n"
            "connection: keep-alive\r\n\r\n"
        )
        writer.write(head.encode())
        await writer.drain()
        input_tokens = max(1, len(json.dumps(body.get("messages", []))) // 4)
        for event, data, delta_text in self._stream_events(reply, model, input_tokens):
            if reply.delay:
                await asyncio.sleep(reply.delay)
            chunk = _sse(event, data)
            try:
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
            except (ConnectionError, RuntimeError) as exc:
                raise _ClientGone from exc
            if delta_text is not None:
                now = time.monotonic()
                with self._lock:
                    self.emitted[delta_text] = now
                    self.emitted_log.append((delta_text, now))
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    def _stream_events(
        self, reply: Step, model: str, input_tokens: int
    ) -> Iterator[tuple[str, dict[str, Any], str | None]]:
        """Yield ``(sse event name, data, text_delta text or None)`` for one reply."""
        has_tool = any(isinstance(b, ToolUseBlock) for b in reply.blocks)
        stop_reason = reply.stop_reason or ("tool_use" if has_tool else "end_turn")
        usage = {
            "input_tokens": input_tokens,
            "output_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        usage.update({k: v for k, v in reply.usage.items() if k != "output_tokens"})
        yield (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": f"msg_{uuid.uuid4().hex[:24]}",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage,
                },
            },
            None,
        )
        output_tokens = 0
        for index, block in enumerate(reply.blocks):
            if isinstance(block, TextBlock):
                yield (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                    None,
                )
                for piece in _chunks(block.text, block.chunk):
                    output_tokens += max(1, len(piece) // 4)
                    delta = {"type": "text_delta", "text": piece}
                    yield (
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                        piece,
                    )
            elif isinstance(block, ThinkingBlock):
                yield (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                    },
                    None,
                )
                for piece in _chunks(block.thinking, block.chunk):
                    output_tokens += max(1, len(piece) // 4)
                    delta = {"type": "thinking_delta", "thinking": piece}
                    yield (
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                        None,
                    )
                delta = {"type": "signature_delta", "signature": block.signature}
                yield (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                    None,
                )
            else:
                tool_id = block.id or f"toolu_{uuid.uuid4().hex[:24]}"
                yield (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {
                            "type": "tool_use",
                            "id": tool_id,
                            "name": block.name,
                            "input": {},
                        },
                    },
                    None,
                )
                encoded = json.dumps(block.input)
                output_tokens += max(1, len(encoded) // 4)
                # Two pieces, so clients really have to join partial JSON.
                half = len(encoded) // 2
                for piece in (encoded[:half], encoded[half:]):
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    yield (
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                        None,
                    )
            yield ("content_block_stop", {"type": "content_block_stop", "index": index}, None)
        yield (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": reply.usage.get("output_tokens", output_tokens)},
            },
            None,
        )
        yield ("message_stop", {"type": "message_stop"}, None)


def _reason(status: int) -> str:
    return {
        200: "OK",
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        429: "Too Many Requests",
        500: "Internal Server Error",
        529: "Overloaded",
    }.get(status, "Error")
