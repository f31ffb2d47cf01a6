"""Read the SDK client's message stream as (typed message, raw frame) pairs.

``ClaudeSDKClient.receive_messages()`` parses frames itself and, in doing so, silently drops
content blocks and message types this SDK version does not model (``redacted_thinking``,
images in user messages, new CLI message types) and raises on a malformed frame, which would
end the stream. The runner must drop nothing, so it reads the raw frames from the client's
query object (SDK pinned at 0.2.184) and parses each one with the SDK's own parser, keeping
the raw dict next to the typed message. If those internals ever move, it falls back to the
public typed stream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from claude_agent_sdk import ClaudeSDKClient, Message
from claude_agent_sdk._errors import MessageParseError
from claude_agent_sdk._internal.message_parser import parse_message

log = logging.getLogger("runner.frames")


@dataclass(frozen=True)
class Frame:
    """One message from the CLI: ``message`` is None when the SDK cannot model the frame."""

    message: Message | None
    raw: dict[str, Any] | None


async def frames(client: ClaudeSDKClient) -> AsyncIterator[Frame]:
    """Yield every frame the client receives until its stream ends; SDK errors propagate."""
    query = getattr(client, "_query", None)
    receive = getattr(query, "receive_messages", None)
    if receive is None:
        log.warning("SDK internals changed: reading typed messages only")
        async for typed in client.receive_messages():
            yield Frame(typed, None)
        return
    async for data in receive():
        if not isinstance(data, dict):
            yield Frame(None, {"value": data})
            continue
        message: Message | None
        try:
            message = parse_message(data)
        except MessageParseError as exc:
            log.warning("unparseable frame kept raw: %s", exc)
            message = None
        yield Frame(message, data)
