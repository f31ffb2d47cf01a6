"""Every event a session emits, as tagged msgspec Structs in one union with one codec.

Schema evolution follows msgspec's rules: new fields get defaults, existing field types never
change, unknown fields from a newer producer are ignored by older consumers, and an event whose
tag this version does not know decodes to :class:`UnknownEvent` instead of failing.

The runner imports this module inside the agent image, so it depends on msgspec alone.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import msgspec

SCHEMA_VERSION = 1

SessionStatusName = Literal[
    "starting", "running", "busy", "waiting", "idle", "stopping", "stopped", "failed"
]


def _now() -> float:
    return time.time()


class Event(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=False):
    """Base of every event: which session, when, and the schema version that wrote it."""

    session_id: str
    ts: float = msgspec.field(default_factory=_now)
    v: int = SCHEMA_VERSION


class SessionReady(Event, tag="session.ready"):
    """The runner is up and its SDK client connected; chats can be sent."""

    worker_id: str = ""
    config_id: str = ""
    model: str | None = None
    tools: list[str] = msgspec.field(default_factory=list)
    resumed: bool = False


class SessionStatus(Event, tag="session.status"):
    """The session's lifecycle status changed."""

    status: SessionStatusName
    detail: str = ""


class UserMessage(Event, tag="user.message"):
    """A chat message a user sent; recorded so history can be rebuilt from the stream."""

    turn_id: str
    text: str


class TurnStarted(Event, tag="turn.started"):
    """The runner began working on a chat."""

    turn_id: str


class TextDelta(Event, tag="text.delta"):
    """A piece of assistant text as the model streams it."""

    turn_id: str
    text: str
    index: int = 0
    parent_tool_use_id: str | None = None


class ThinkingDelta(Event, tag="thinking.delta"):
    """A piece of the model's thinking as it streams."""

    turn_id: str
    text: str
    index: int = 0
    parent_tool_use_id: str | None = None


class StreamRetry(Event, tag="stream.retry"):
    """The model request that was streaming was cut and is being sent again.

    The CLI retries a model request whose stream broke (e.g. the worker holding the session's
    model gateway died mid-turn). A consumer drops the text and thinking deltas it received
    since the last complete block (``message``, ``thinking``, ``tool.started``) of the same
    ``parent_tool_use_id``: the retry streams them again from the start.
    """

    turn_id: str
    parent_tool_use_id: str | None = None


class AssistantText(Event, tag="message"):
    """A complete assistant text block."""

    turn_id: str
    text: str
    model: str | None = None
    parent_tool_use_id: str | None = None


class Thinking(Event, tag="thinking"):
    """A complete thinking block."""

    turn_id: str
    text: str
    signature: str = ""
    parent_tool_use_id: str | None = None


class ToolStarted(Event, tag="tool.started"):
    """The model called a tool."""

    turn_id: str
    tool_use_id: str
    name: str
    input: dict[str, Any] = msgspec.field(default_factory=dict)
    parent_tool_use_id: str | None = None


class ToolCompleted(Event, tag="tool.completed"):
    """A tool returned; ``output`` is its text, ``result`` the structured result when the CLI gives one."""

    turn_id: str
    tool_use_id: str
    name: str = ""
    output: str = ""
    is_error: bool = False
    result: Any = None
    parent_tool_use_id: str | None = None


class TodoItem(msgspec.Struct, kw_only=True):
    content: str
    status: str = "pending"
    active_form: str = ""


class TodoUpdated(Event, tag="todo.updated"):
    """The agent's todo list, as TodoWrite last set it."""

    turn_id: str
    todos: list[TodoItem] = msgspec.field(default_factory=list)


class Usage(msgspec.Struct, kw_only=True):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class TurnCompleted(Event, tag="turn.completed"):
    """A chat finished (normally, by interruption, or with an error)."""

    turn_id: str
    stop_reason: str | None = None
    subtype: str = "success"
    is_error: bool = False
    interrupted: bool = False
    duration_ms: int = 0
    duration_api_ms: int = 0
    num_turns: int = 0
    usage: Usage = msgspec.field(default_factory=Usage)
    cost_usd: float | None = None
    result: str | None = None
    sdk_session_id: str | None = None


class SystemNotice(Event, tag="system"):
    """A system message from the SDK (``init``, compaction, ...), passed on whole."""

    subtype: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    turn_id: str | None = None


class RawSdkMessage(Event, tag="sdk.raw"):
    """An SDK message or content block this version has no dedicated event for: kept, not dropped."""

    kind: str
    data: Any = None
    turn_id: str | None = None


class ErrorEvent(Event, tag="error"):
    """Something failed. ``detail`` carries the underlying reason (e.g. the CLI's stderr)."""

    code: str
    message: str
    detail: str = ""
    turn_id: str | None = None
    fatal: bool = False


class SessionStopped(Event, tag="session.stopped"):
    """The session ended; no event follows."""

    reason: str = ""


ApprovalDecision = Literal["allow", "deny"]
ApprovalScope = Literal["once", "session"]


class ApprovalRequested(Event, tag="approval.requested"):
    """A tool call waits for a person: answer it with ``POST /api/agents/{sid}/approvals/{id}``.

    ``reason`` says why it needs asking (``reason_kind``: ``rule`` when one of the config's
    ``permissions.ask`` rules matched, ``unlisted`` when nothing allowed it, ``path`` when it
    touches a path outside the workspace); ``expires_at`` is when it is denied unanswered.
    """

    request_id: str
    tool: str
    turn_id: str | None = None
    tool_use_id: str = ""
    input: dict[str, Any] = msgspec.field(default_factory=dict)
    parent_tool_use_id: str | None = None
    agent_id: str | None = None
    reason: str = ""
    reason_kind: str = ""
    description: str = ""
    expires_at: float = 0.0


class ApprovalResolved(Event, tag="approval.resolved"):
    """How a request ended and who decided: a person (``by`` is the key's fingerprint,
    ``by_name`` what they called themselves), or ``cause`` ``timeout``/``interrupted``/``stopped``.
    """

    request_id: str
    decision: ApprovalDecision
    turn_id: str | None = None
    tool_use_id: str = ""
    tool: str = ""
    scope: ApprovalScope = "once"
    message: str = ""
    updated_input: dict[str, Any] | None = None
    cause: str = "answer"
    by: str = ""
    by_name: str = ""
    answer_id: str = ""


class EgressDenied(Event, tag="egress.denied"):
    """The sandbox's egress proxy refused a destination (the session's ``egress`` policy, or a
    non-public address); the tool that asked sees the refusal as a proxy error."""

    host: str
    port: int
    reason: str
    policy: str = ""
    method: str = ""
    turn_id: str | None = None


class UnknownEvent(msgspec.Struct, kw_only=True):
    """An event whose ``type`` this version does not know (from a newer producer)."""

    type: str
    session_id: str = ""
    ts: float = 0.0
    raw: dict[str, Any] = msgspec.field(default_factory=dict)


AnyEvent = (
    SessionReady
    | SessionStatus
    | UserMessage
    | TurnStarted
    | TextDelta
    | ThinkingDelta
    | StreamRetry
    | AssistantText
    | Thinking
    | ToolStarted
    | ToolCompleted
    | TodoUpdated
    | TurnCompleted
    | SystemNotice
    | RawSdkMessage
    | ErrorEvent
    | SessionStopped
    | ApprovalRequested
    | ApprovalResolved
    | EgressDenied
)

EVENT_TYPES: dict[str, type[Event]] = {cls.__struct_config__.tag: cls for cls in AnyEvent.__args__}

# Events after which a turn is over (a client streaming a chat stops at these).
TURN_END_TYPES = frozenset({"turn.completed"})


class EventHead(msgspec.Struct):
    """Just enough of an event to route it (type, turn, and the session it claims to be of)
    without decoding all of it."""

    type: str
    turn_id: str | None = None
    session_id: str = ""


_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)
_head_decoder = msgspec.json.Decoder(EventHead)


def peek_event(data: bytes | str) -> EventHead:
    """Decode only an event's head: ``type``, ``turn_id``, ``session_id`` (hot paths route on
    these; everything else is read from :func:`decode_event`'s typed event)."""
    return _head_decoder.decode(data)


def encode_event(event: Event) -> bytes:
    """Serialise an event to JSON bytes."""
    return _encoder.encode(event)


def decode_event(data: bytes | str) -> AnyEvent | UnknownEvent:
    """Parse JSON bytes into the matching event class.

    An unknown ``type`` yields :class:`UnknownEvent`; malformed JSON or a known type with wrong
    field types raises ``msgspec.DecodeError``/``msgspec.ValidationError``.
    """
    try:
        return _decoder.decode(data)
    except msgspec.ValidationError:
        raw = msgspec.json.decode(data)
        if (
            isinstance(raw, dict)
            and isinstance(raw.get("type"), str)
            and (raw["type"] not in EVENT_TYPES)
        ):
            return UnknownEvent(
                type=raw["type"],
                session_id=str(raw.get("session_id", "")),
                ts=float(raw.get("ts", 0.0) or 0.0),
                raw=raw,
            )
        raise


def event_type(event: Event | UnknownEvent) -> str:
    """Return the wire tag (``type``) of an event."""
    if isinstance(event, UnknownEvent):
        return event.type
    return str(type(event).__struct_config__.tag)


def to_builtins(event: Event | UnknownEvent) -> dict[str, Any]:
    """Return the event as a JSON-ready dict, ``type`` included."""
    if isinstance(event, UnknownEvent):
        return dict(event.raw)
    out: dict[str, Any] = msgspec.to_builtins(event)
    return out
