"""Commands the API sends to workers over JetStream, as tagged msgspec Structs.

Secrets never travel in the clear: ``sealed_api_key`` and ``sealed_mcp_env`` are sealed with
:mod:`broker.sealing` using the key the API and the workers share.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from broker.runner_wire import ApprovalAnswer


def _now() -> float:
    return time.time()


class Command(msgspec.Struct, tag_field="type", kw_only=True):
    session_id: str
    ts: float = msgspec.field(default_factory=_now)
    v: int = 1


class Launch(Command, tag="launch"):
    """Start a session: create its container and runner, then emit ``session.ready``."""

    agent_id: str
    config_id: str
    # The fully resolved agent configuration: ``configs.model.AgentConfig.to_wire()``, read
    # back with ``AgentConfig.from_wire`` (worker: limits; runner: everything). JSON here, so
    # the bus contract needs msgspec alone and a session's stored config stays readable.
    config: dict[str, Any]
    sealed_api_key: str
    sealed_mcp_env: str | None = None


class Chat(Command, tag="chat"):
    """Run one turn with ``message``; events carry ``turn_id``."""

    turn_id: str
    message: str


class Interrupt(Command, tag="interrupt"):
    """Stop the running turn, keep the session."""


class Stop(Command, tag="stop"):
    """End the session: stop the runner, remove its container and workspace."""

    reason: str = "deleted"


class Approve(Command, tag="approve"):
    """Answer a pending ``approval.requested`` (the API has already claimed it, once).

    The API sends it straight to the owning worker (core request on the session's ``approve``
    RPC subject) and falls back to this command stream when no worker answers.
    """

    answer: ApprovalAnswer
    # The claimed request's tool as the platform recorded it: what a session-scoped allow
    # grants (the worker persists it once the runner applied the answer).
    tool: str = ""


AnyCommand = Launch | Chat | Interrupt | Stop | Approve

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[AnyCommand] = msgspec.json.Decoder(AnyCommand)


def encode_command(command: Command) -> bytes:
    """Serialise a command to JSON bytes."""
    return _encoder.encode(command)


def decode_command(data: bytes | str) -> AnyCommand:
    """Parse a command; raises ``msgspec.DecodeError``/``ValidationError`` on a bad message."""
    return _decoder.decode(data)
