"""Turn SDK messages into platform events: every content block of every message, nothing dropped.

Mapping (``parent_tool_use_id`` is carried wherever the event has the field, so sub-agent
activity can be nested under the tool call that started it):

- ``StreamEvent``: ``text_delta`` → ``text.delta``, ``thinking_delta`` → ``thinking.delta``.
  A ``message_start`` while the same caller's previous message never reached ``message_stop``
  in this turn, or the CLI's ``api_retry`` system message → ``stream.retry`` (the CLI is
  re-sending a request whose stream was cut).
  The structural stream events (``message_start``, ``content_block_start/stop``,
  ``message_delta``, ``message_stop``, ``ping``) and the ``input_json_delta`` /
  ``signature_delta`` / ``citations_delta`` deltas are skipped: the complete block follows in
  an ``AssistantMessage``. Any other stream event → ``sdk.raw``.
- ``AssistantMessage``: text → ``message``, thinking → ``thinking``, tool_use / server_tool_use
  → ``tool.started`` (TodoWrite also → ``todo.updated``), tool results → ``tool.completed``,
  unknown blocks → ``sdk.raw``; an ``error`` on the message (an API failure) is remembered
  for the turn's ``error`` event.
- ``UserMessage``: tool_result → ``tool.completed`` (with the tool's name and the structured
  ``tool_use_result``), text (sub-agent prompts, interruption notes) and unknown blocks →
  ``sdk.raw``.
- ``SystemMessage`` (and its task subclasses) → ``system`` with the raw payload.
- ``ResultMessage`` → ``error`` when the turn failed and was not interrupted (once per turn;
  code = the CLI's API-error category such as ``server_error``/``authentication_failed``,
  else ``api_error`` or the result subtype), then ``turn.completed``.
- anything else (rate limits, conversation resets, frames the SDK cannot parse) → ``sdk.raw``.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    ResultMessage,
    ServerToolResultBlock,
    ServerToolUseBlock,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from claude_agent_sdk import Message as SdkMessage
from claude_agent_sdk.types import ContentBlock

from broker.events import (
    AssistantText,
    ErrorEvent,
    Event,
    RawSdkMessage,
    StreamRetry,
    SystemNotice,
    TextDelta,
    Thinking,
    ThinkingDelta,
    TodoItem,
    TodoUpdated,
    ToolCompleted,
    ToolStarted,
    TurnCompleted,
    Usage,
)

_SKIPPED_STREAM_EVENTS = frozenset(
    {"message_start", "content_block_start", "content_block_stop", "message_delta"}
    | {"message_stop", "ping"}
)
_SKIPPED_DELTAS = frozenset({"input_json_delta", "signature_delta", "citations_delta"})
# Raw block types the SDK parser turns into typed blocks (anything else it drops).
_ASSISTANT_PARSED = frozenset(
    {"text", "thinking", "tool_use", "tool_result", "server_tool_use", "advisor_tool_result"}
)
_USER_PARSED = frozenset({"text", "tool_use", "tool_result"})
_ABORTED_REASONS = frozenset({"aborted_streaming", "aborted_tools"})
_TODO_TOOL = "TodoWrite"


def _no_detail() -> str:
    return ""


@dataclass
class TurnContext:
    """What the translator needs to know, and records, about the turn a message belongs to."""

    turn_id: str | None
    # Set by the session when the user interrupted this turn.
    interrupted: bool = False
    # Set by the translator: an ``error`` event already went out for this turn.
    error_emitted: bool = False
    # Set by the translator: ``turn.completed`` went out.
    completed: bool = False
    # Set by the translator: the CLI reported an API failure (its category, its text); the
    # ``error`` event waits for the result, which adds the HTTP status.
    api_error: tuple[str, str] | None = None
    # Returns the CLI stderr (and other context) to put in ``error.detail``.
    detail: Callable[[], str] = field(default=_no_detail)


class Translator:
    """Stateful SDK → event translation for one session (remembers tool names and turns)."""

    def __init__(self, session_id: str, *, remember: int = 4096) -> None:
        self.session_id = session_id
        self._remember = remember
        # tool_use_id -> (tool name, turn id); bounded so a long session cannot grow it forever.
        self._tools: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
        # parent_tool_use_id -> turn of a model stream that started and has not stopped yet.
        self._open_streams: dict[str | None, str | None] = {}

    def turn_of(self, tool_use_id: str | None) -> str | None:
        """Return the turn whose tool call ``tool_use_id`` was (routes sub-agent messages)."""
        if tool_use_id is None:
            return None
        entry = self._tools.get(tool_use_id)
        return entry[1] if entry else None

    def tool_name(self, tool_use_id: str) -> str:
        entry = self._tools.get(tool_use_id)
        return entry[0] if entry else ""

    def translate(
        self, message: SdkMessage | None, raw: dict[str, Any] | None, ctx: TurnContext
    ) -> list[Event]:
        """Return the events for one SDK message (``raw`` is its wire frame, when known)."""
        if isinstance(message, StreamEvent):
            return self._stream(message, ctx)
        if isinstance(message, AssistantMessage):
            return self._assistant(message, raw, ctx)
        if isinstance(message, UserMessage):
            return self._user(message, raw, ctx)
        if isinstance(message, SystemMessage):
            notice = SystemNotice(
                session_id=self.session_id,
                subtype=message.subtype,
                data=dict(message.data),
                turn_id=ctx.turn_id,
            )
            if message.subtype == "api_retry":
                return [notice, *self._retried(ctx)]
            return [notice]
        if isinstance(message, ResultMessage):
            return self._result(message, ctx)
        if message is None:
            kind = str(raw.get("type", "unknown")) if raw else "unknown"
            return [self._raw(kind, raw, ctx)]
        # RateLimitEvent, ConversationResetMessage and whatever a newer SDK adds.
        data = raw if raw is not None else _plain(message)
        return [self._raw(_kind_of(message), data, ctx)]

    def _retried(self, ctx: TurnContext) -> list[Event]:
        """The CLI says it retries a model request: whatever of it streamed is void.

        The notice does not say whose request it was, so every stream open in this turn is
        marked (the lead's when none is known): a consumer only drops partial text with it.
        """
        parents = [p for p, turn in self._open_streams.items() if turn == ctx.turn_id] or [None]
        for parent in parents:
            self._open_streams.pop(parent, None)  # the retry's message_start opens it again
        return [
            StreamRetry(session_id=self.session_id, turn_id=ctx.turn_id or "", parent_tool_use_id=p)
            for p in parents
        ]

    # ------------------------------------------------------------------ per message type
    def _stream(self, message: StreamEvent, ctx: TurnContext) -> list[Event]:
        ev = message.event
        kind = ev.get("type")
        parent = message.parent_tool_use_id
        if kind == "message_start":
            # Streams of an earlier turn (one interrupted mid-stream never stops) do not count.
            cut = parent in self._open_streams and self._open_streams[parent] == ctx.turn_id
            self._open_streams[parent] = ctx.turn_id
            if cut:
                return [
                    StreamRetry(
                        session_id=self.session_id,
                        turn_id=ctx.turn_id or "",
                        parent_tool_use_id=parent,
                    )
                ]
            return []
        if kind == "message_stop":
            self._open_streams.pop(parent, None)
            return []
        if kind == "content_block_delta":
            delta = ev.get("delta") or {}
            delta_type = delta.get("type")
            index = int(ev.get("index") or 0)
            if delta_type == "text_delta":
                return [
                    TextDelta(
                        session_id=self.session_id,
                        turn_id=ctx.turn_id or "",
                        text=str(delta.get("text", "")),
                        index=index,
                        parent_tool_use_id=message.parent_tool_use_id,
                    )
                ]
            if delta_type == "thinking_delta":
                return [
                    ThinkingDelta(
                        session_id=self.session_id,
                        turn_id=ctx.turn_id or "",
                        text=str(delta.get("thinking", "")),
                        index=index,
                        parent_tool_use_id=message.parent_tool_use_id,
                    )
                ]
            if delta_type in _SKIPPED_DELTAS:
                return []
        elif kind in _SKIPPED_STREAM_EVENTS:
            return []
        return [self._raw(f"stream.{kind}", ev, ctx)]

    def _assistant(
        self, message: AssistantMessage, raw: dict[str, Any] | None, ctx: TurnContext
    ) -> list[Event]:
        parent = message.parent_tool_use_id
        events: list[Event] = []
        for block in _blocks(message.content, raw, _ASSISTANT_PARSED):
            if isinstance(block, TextBlock):
                events.append(
                    AssistantText(
                        session_id=self.session_id,
                        turn_id=ctx.turn_id or "",
                        text=block.text,
                        model=message.model,
                        parent_tool_use_id=parent,
                    )
                )
            elif isinstance(block, ThinkingBlock):
                events.append(
                    Thinking(
                        session_id=self.session_id,
                        turn_id=ctx.turn_id or "",
                        text=block.thinking,
                        signature=block.signature,
                        parent_tool_use_id=parent,
                    )
                )
            elif isinstance(block, ToolUseBlock | ServerToolUseBlock):
                events.extend(self._tool_started(block.id, block.name, block.input, parent, ctx))
            elif isinstance(block, ToolResultBlock):
                events.append(self._tool_completed(block, None, parent, ctx))
            elif isinstance(block, ServerToolResultBlock):
                events.append(
                    ToolCompleted(
                        session_id=self.session_id,
                        turn_id=ctx.turn_id or "",
                        tool_use_id=block.tool_use_id,
                        name=self.tool_name(block.tool_use_id),
                        result=block.content,
                        parent_tool_use_id=parent,
                    )
                )
            else:
                events.append(self._raw(f"assistant.{block.get('type')}", block, ctx))
        if message.error and ctx.api_error is None:
            texts = [b.text for b in message.content if isinstance(b, TextBlock)]
            ctx.api_error = (message.error, "\n".join(texts) or message.error)
        return events

    def _user(
        self, message: UserMessage, raw: dict[str, Any] | None, ctx: TurnContext
    ) -> list[Event]:
        parent = message.parent_tool_use_id
        if isinstance(message.content, str):
            data = {"text": message.content, "parent_tool_use_id": parent}
            return [self._raw("user.text", data, ctx)]
        results = [b for b in message.content if isinstance(b, ToolResultBlock)]
        # The CLI sends one tool result per user message; its structured form rides alongside.
        structured = message.tool_use_result if len(results) == 1 else None
        events: list[Event] = []
        for block in _blocks(message.content, raw, _USER_PARSED):
            if isinstance(block, ToolResultBlock):
                events.append(self._tool_completed(block, structured, parent, ctx))
            elif isinstance(block, TextBlock):
                data = {"text": block.text, "parent_tool_use_id": parent}
                events.append(self._raw("user.text", data, ctx))
            elif isinstance(block, ToolUseBlock):
                events.extend(self._tool_started(block.id, block.name, block.input, parent, ctx))
            elif isinstance(block, dict):
                events.append(self._raw(f"user.{block.get('type')}", block, ctx))
            else:
                events.append(self._raw(f"user.{_kind_of(block)}", _plain(block), ctx))
        return events

    def _result(self, message: ResultMessage, ctx: TurnContext) -> list[Event]:
        self._open_streams.clear()  # the turn is over, however its streams ended
        interrupted = ctx.interrupted or message.terminal_reason in _ABORTED_REASONS
        events: list[Event] = []
        failed = message.is_error or ctx.api_error is not None
        if failed and not interrupted and not ctx.error_emitted:
            code, text = ctx.api_error or (
                "api_error" if message.api_error_status else message.subtype,
                "",
            )
            events.append(
                ErrorEvent(
                    session_id=self.session_id,
                    turn_id=ctx.turn_id,
                    code=code,
                    message=message.result or text or "; ".join(message.errors or []) or code,
                    detail=_result_detail(message, ctx.detail()),
                )
            )
            ctx.error_emitted = True
        usage = message.usage or {}
        events.append(
            TurnCompleted(
                session_id=self.session_id,
                turn_id=ctx.turn_id or "",
                stop_reason=message.stop_reason,
                subtype=message.subtype,
                # An interruption is what the user asked for, not a failure.
                is_error=message.is_error and not interrupted,
                interrupted=interrupted,
                duration_ms=message.duration_ms,
                duration_api_ms=message.duration_api_ms,
                num_turns=message.num_turns,
                usage=Usage(
                    input_tokens=_int(usage.get("input_tokens")),
                    output_tokens=_int(usage.get("output_tokens")),
                    cache_creation_input_tokens=_int(usage.get("cache_creation_input_tokens")),
                    cache_read_input_tokens=_int(usage.get("cache_read_input_tokens")),
                ),
                cost_usd=message.total_cost_usd,
                result=message.result,
                sdk_session_id=message.session_id,
            )
        )
        ctx.completed = True
        return events

    # ------------------------------------------------------------------ helpers
    def _tool_started(
        self,
        tool_use_id: str,
        name: str,
        tool_input: dict[str, Any],
        parent: str | None,
        ctx: TurnContext,
    ) -> list[Event]:
        self._tools[tool_use_id] = (name, ctx.turn_id)
        self._tools.move_to_end(tool_use_id)
        while len(self._tools) > self._remember:
            self._tools.popitem(last=False)
        events: list[Event] = [
            ToolStarted(
                session_id=self.session_id,
                turn_id=ctx.turn_id or "",
                tool_use_id=tool_use_id,
                name=name,
                input=dict(tool_input),
                parent_tool_use_id=parent,
            )
        ]
        if name == _TODO_TOOL:
            events.append(
                TodoUpdated(
                    session_id=self.session_id,
                    turn_id=ctx.turn_id or "",
                    todos=_todos(tool_input.get("todos")),
                )
            )
        return events

    def _tool_completed(
        self,
        block: ToolResultBlock,
        structured: Any,
        parent: str | None,
        ctx: TurnContext,
    ) -> ToolCompleted:
        output, extra = _result_text(block.content)
        return ToolCompleted(
            session_id=self.session_id,
            turn_id=ctx.turn_id or "",
            tool_use_id=block.tool_use_id,
            name=self.tool_name(block.tool_use_id),
            output=output,
            is_error=bool(block.is_error),
            # Non-text parts (images) are kept when the CLI gave no structured result.
            result=structured if structured is not None else extra,
            parent_tool_use_id=parent,
        )

    def _raw(self, kind: str, data: Any, ctx: TurnContext) -> RawSdkMessage:
        return RawSdkMessage(session_id=self.session_id, kind=kind, data=data, turn_id=ctx.turn_id)


def _blocks(
    parsed: list[ContentBlock], raw: dict[str, Any] | None, known: frozenset[str]
) -> list[ContentBlock | dict[str, Any]]:
    """Return the message's blocks in wire order, raw dicts standing in for unparsed ones."""
    raw_blocks = (raw or {}).get("message", {}).get("content") if raw else None
    if not isinstance(raw_blocks, list):
        return list(parsed)
    out: list[ContentBlock | dict[str, Any]] = []
    typed = iter(parsed)
    for block in raw_blocks:
        if isinstance(block, dict) and block.get("type") in known:
            nxt = next(typed, None)
            if nxt is None:  # the frame and the parse disagree: trust the parse
                return list(parsed)
            out.append(nxt)
        elif isinstance(block, dict):
            out.append(block)
    if next(typed, None) is not None:
        return list(parsed)
    return out


def _result_text(content: str | list[dict[str, Any]] | None) -> tuple[str, Any]:
    """Return (the text of a tool result, its non-text parts or None)."""
    if content is None:
        return "", None
    if isinstance(content, str):
        return content, None
    texts: list[str] = []
    others: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text":
            texts.append(str(part.get("text", "")))
        else:
            others.append(part)
    return "\n".join(texts), (content if others else None)


def _todos(value: Any) -> list[TodoItem]:
    if not isinstance(value, list):
        return []
    items: list[TodoItem] = []
    for todo in value:
        if isinstance(todo, dict) and isinstance(todo.get("content"), str):
            items.append(
                TodoItem(
                    content=todo["content"],
                    status=str(todo.get("status") or "pending"),
                    active_form=str(todo.get("activeForm") or todo.get("active_form") or ""),
                )
            )
    return items


def _result_detail(message: ResultMessage, stderr: str) -> str:
    parts: list[str] = []
    if message.api_error_status:
        parts.append(f"api_error_status: {message.api_error_status}")
    if message.terminal_reason:
        parts.append(f"terminal_reason: {message.terminal_reason}")
    if message.errors:
        parts.append("errors: " + "; ".join(message.errors))
    if message.result:
        parts.append(f"result: {message.result}")
    if stderr:
        parts.append(stderr)
    return "\n".join(parts)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _kind_of(obj: object) -> str:
    name = type(obj).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _plain(obj: object) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return repr(obj)
