"""The script vocabulary of the scripted model server: blocks, steps and HTTP errors.

A *script* is a list of steps; step ``i`` answers the ``i``-th model request of a turn (the
number of assistant messages that follow the user message carrying the marker). A step is a
list of blocks, a :class:`Step` (blocks plus streaming knobs), or an :class:`HttpError`::

    server.add_script("files", [
        [thinking("plan"), tool_use("Write", {"file_path": "a.txt", "content": "hi"})],
        step(text("Wrote it."), delay=0.05),
        http_error(500, "api_error", "boom"),
    ])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MARKER_RE = re.compile(r"\[\[script:([A-Za-z0-9_.:\-]+)\]\]")


def marker(name: str) -> str:
    """Return the text that selects script ``name`` when it appears in a user message."""
    return f"[[script:{name}]]"


@dataclass(frozen=True)
class TextBlock:
    text: str
    # Characters per text_delta; 0 streams the whole text as one delta.
    chunk: int = 0


@dataclass(frozen=True)
class ThinkingBlock:
    thinking: str
    signature: str = "sig-scripted"
    chunk: int = 0


@dataclass(frozen=True)
class ToolUseBlock:
    name: str
    input: dict[str, Any]
    # None: the server makes a fresh ``toolu_...`` id for every response.
    id: str | None = None


Block = TextBlock | ThinkingBlock | ToolUseBlock


@dataclass(frozen=True)
class HttpError:
    """Answer with an HTTP error status and an Anthropic error body instead of a stream."""

    status: int
    type: str
    message: str


@dataclass(frozen=True)
class Step:
    blocks: tuple[Block, ...]
    # Seconds to sleep before each SSE chunk: makes streaming observable and interruptible.
    delay: float = 0.0
    # None: "tool_use" when the step calls a tool, else "end_turn".
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


StepSpec = Step | HttpError | Sequence[Block]


def text(value: str, *, chunk: int = 0) -> TextBlock:
    """Return a text block, streamed in ``chunk``-character deltas (0: one delta)."""
    return TextBlock(value, chunk)


def thinking(value: str, *, signature: str = "sig-scripted", chunk: int = 0) -> ThinkingBlock:
    """Return a thinking block (thinking_delta chunks, then one signature_delta)."""
    return ThinkingBlock(value, signature, chunk)


def tool_use(name: str, input: dict[str, Any], *, id: str | None = None) -> ToolUseBlock:
    """Return a tool_use block; its input is streamed as input_json_delta chunks."""
    return ToolUseBlock(name, dict(input), id)


def step(
    *blocks: Block,
    delay: float = 0.0,
    stop_reason: str | None = None,
    usage: dict[str, int] | None = None,
) -> Step:
    """Return a step with streaming knobs: ``delay`` seconds before every SSE chunk."""
    return Step(tuple(blocks), delay, stop_reason, dict(usage or {}))


def http_error(status: int, type: str, message: str) -> HttpError:
    """Return a step that fails the request with ``status`` and an Anthropic error body."""
    return HttpError(status, type, message)


def normalize(spec: StepSpec) -> Step | HttpError:
    """Turn a step given in any accepted form into a :class:`Step` or :class:`HttpError`."""
    if isinstance(spec, Step | HttpError):
        return spec
    return Step(tuple(spec))
