"""One fold of a session's events into turns: the JSON chat answer and the history both use it.

Events are decoded into the tagged union of :mod:`broker.events` (an event type this version
does not know decodes to ``UnknownEvent`` and is skipped), so a new event field is read in one
place. A tool completion whose start is missing still shows (nothing is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from broker.events import (
    AnyEvent,
    ApprovalRequested,
    ApprovalResolved,
    AssistantText,
    ErrorEvent,
    ToolCompleted,
    ToolStarted,
    TurnCompleted,
    UnknownEvent,
    UserMessage,
    decode_event,
)

Decoded = AnyEvent | UnknownEvent


def as_event(raw: bytes | dict[str, Any] | Decoded) -> Decoded:
    """An event from its JSON bytes, a JSON-ready dict, or as it is.

    An event that does not match its type's schema (it passed through a container, which is
    untrusted) becomes an ``UnknownEvent`` of type ``invalid``: skipped, never a 500.
    """
    if not isinstance(raw, bytes | dict):
        return raw
    data = raw if isinstance(raw, bytes) else msgspec.json.encode(raw)
    try:
        return decode_event(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return UnknownEvent(type="invalid")


@dataclass
class TurnFold:
    """Everything one turn's events say, folded in stream order."""

    turn_id: str
    started_at: float | None = None
    user: str = ""
    texts: list[str] = field(default_factory=list)
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[ErrorEvent] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    completed: TurnCompleted | None = None

    def add(self, ev: Decoded) -> None:
        if self.started_at is None and not isinstance(ev, UnknownEvent):
            self.started_at = ev.ts
        match ev:
            case UserMessage():
                self.user, self.started_at = ev.text, ev.ts
            case AssistantText(parent_tool_use_id=None):
                self.texts.append(ev.text)
            case ToolStarted():
                self.tools[ev.tool_use_id] = {
                    "tool_use_id": ev.tool_use_id,
                    "name": ev.name,
                    "input": ev.input,
                    "output": None,
                    "is_error": False,
                    "parent_tool_use_id": ev.parent_tool_use_id,
                }
            case ToolCompleted():
                entry = self.tools.setdefault(
                    ev.tool_use_id,
                    {
                        "tool_use_id": ev.tool_use_id,
                        "name": ev.name or None,
                        "input": None,
                        "parent_tool_use_id": ev.parent_tool_use_id,
                    },
                )
                entry["output"] = ev.output
                entry["is_error"] = ev.is_error
            case ErrorEvent():
                self.errors.append(ev)
            case ApprovalRequested():
                self.approvals.append(_approval(ev))
            case ApprovalResolved():
                _resolve_approval(self.approvals, ev)
            case TurnCompleted():
                self.completed = ev
            case _:
                pass

    @property
    def text(self) -> str:
        return "\n\n".join(t for t in self.texts if t)

    @property
    def usage(self) -> dict[str, Any]:
        return msgspec.to_builtins(self.completed.usage) if self.completed else {}


def fold_turns(events: list[Any]) -> list[TurnFold]:
    """Every turn of a session, in the order they started."""
    turns: dict[str, TurnFold] = {}
    for raw in events:
        ev = as_event(raw)
        tid = getattr(ev, "turn_id", None)
        if not tid:
            continue
        turns.setdefault(tid, TurnFold(tid)).add(ev)
    return list(turns.values())


def _approval(ev: ApprovalRequested) -> dict[str, Any]:
    return {
        "request_id": ev.request_id,
        "tool": ev.tool,
        "input": ev.input,
        "reason": ev.reason,
        "parent_tool_use_id": ev.parent_tool_use_id,
        "requested_at": ev.ts,
        "decision": None,
        "scope": None,
        "message": "",
        "updated_input": None,
        "cause": None,
        "decided_by": None,
        "decided_by_name": "",
        "resolved_at": None,
    }


def _resolve_approval(approvals: list[dict[str, Any]], ev: ApprovalResolved) -> None:
    entry = next((a for a in approvals if a["request_id"] == ev.request_id), None)
    if entry is None:  # its request aged out of the stream
        entry = _approval(
            ApprovalRequested(session_id=ev.session_id, request_id=ev.request_id, tool=ev.tool)
        )
        entry["requested_at"] = None
        entry["input"] = None
        approvals.append(entry)
    entry.update(
        decision=ev.decision,
        scope=ev.scope,
        message=ev.message,
        updated_input=ev.updated_input,
        cause=ev.cause,
        decided_by=ev.by or None,
        decided_by_name=ev.by_name,
        resolved_at=ev.ts,
    )
