"""The JSON-lines protocol between a worker and the runner in its container.

Worker → runner (stdin): one :data:`RunnerCommand` per line.
Runner → worker (stdout): one :class:`Envelope` per line, ``seq`` counting from 1 for the
life of the runner process, ``event`` a :mod:`broker.events` event as raw JSON so the worker
can publish it without decoding it again.

It sits in ``broker/`` beside the event schema because both ends speak it: the runner (inside
the agent image) and the worker (which never imports ``runner/``). It depends on msgspec alone.
"""

from __future__ import annotations

from typing import Any

import msgspec


class RunnerCommand(msgspec.Struct, tag_field="type", kw_only=True):
    pass


class Init(RunnerCommand, tag="init"):
    """First line a fresh runner reads: who it is, what to run, and the secrets to run it with.

    Secrets arrive here rather than in the container's environment, so they never show in
    ``docker inspect``. A worker with a model gateway sends no model key at all (``api_key``
    empty): only ``gateway_token``, which the runner keeps to itself (:mod:`runner.sandbox`).
    """

    session_id: str
    # ``AgentConfig.to_wire()``; the runner decodes it with ``AgentConfig.from_wire``.
    config: dict[str, Any]
    # The model key, for a runner outside a sandbox (host tests); "" behind a gateway.
    api_key: str = ""
    mcp_env: dict[str, dict[str, str]] = msgspec.field(default_factory=dict)
    # Extra environment for the SDK/CLI (ANTHROPIC_BASE_URL, test knobs); never secrets' keys.
    env: dict[str, str] = msgspec.field(default_factory=dict)
    resume: str | None = None
    worker_id: str = ""
    # Seconds a tool call waits for a person's answer before it is denied (AGC_APPROVAL_TIMEOUT).
    approval_timeout: float = 600.0
    # The session's token for the sandbox's gateway and egress sockets (broker.sandbox_wire).
    gateway_token: str = ""
    # Tools a person allowed "for this session" before this runner started (a restarted
    # runner's session); from the platform's record, never from a container.
    session_grants: list[str] = msgspec.field(default_factory=list)


class Prestart(RunnerCommand, tag="prestart"):
    """A warm-pool runner starts and initialises the CLI for ``config`` before any session.

    ``session_id`` is the id the slot was minted with (the session that claims it gets it).
    The CLI is started exactly as an :class:`Init` with the same ``config`` and ``env``, no
    model key, no MCP credentials and no resume would start it, so a matching ``init`` only
    binds (worker id, gateway token, approval timeout) and ``session.ready`` follows at once;
    any other ``init`` replaces the pre-started CLI. The runner answers with a
    ``system`` notice ``runner.prestarted`` (``data.ok``, ``data.seconds``, ``data.error``).
    """

    session_id: str
    config: dict[str, Any]
    env: dict[str, str] = msgspec.field(default_factory=dict)
    worker_id: str = ""


class Attach(RunnerCommand, tag="attach"):
    """A (re)attached worker asks for every buffered event with ``seq > after_seq``."""

    after_seq: int = 0


class ChatIn(RunnerCommand, tag="chat"):
    turn_id: str
    message: str


class InterruptIn(RunnerCommand, tag="interrupt"):
    pass


class StopIn(RunnerCommand, tag="stop"):
    reason: str = ""


class ApprovalAnswer(msgspec.Struct, kw_only=True):
    """A person's answer to a pending ``approval.requested``: the API sends it to the worker
    (:class:`broker.commands.Approve`), the worker hands it to the runner (:class:`ApproveIn`).
    """

    request_id: str
    decision: str  # "allow" | "deny"
    scope: str = "once"  # "once" | "session" (this tool for the rest of the session)
    message: str = ""  # what the model is told (a denial's reason)
    updated_input: dict[str, Any] | None = None  # run the call with this input instead
    by: str = ""  # fingerprint of the key that answered
    by_name: str = ""  # what the person called themselves
    answer_id: str = ""  # echoed in approval.resolved, so the API knows its answer won


class ApproveIn(RunnerCommand, tag="approve"):
    """Apply ``answer`` to the pending request it names."""

    answer: ApprovalAnswer


AnyRunnerCommand = Init | Prestart | Attach | ChatIn | InterruptIn | StopIn | ApproveIn


class Envelope(msgspec.Struct, kw_only=True):
    seq: int
    event: msgspec.Raw
    # Identifies the runner process: ``seq`` starts again at 1 when it changes (a restart).
    boot_id: str = ""


_encoder = msgspec.json.Encoder()
_cmd_decoder: msgspec.json.Decoder[AnyRunnerCommand] = msgspec.json.Decoder(AnyRunnerCommand)
_env_decoder: msgspec.json.Decoder[Envelope] = msgspec.json.Decoder(Envelope)


def encode_line(msg: RunnerCommand | Envelope) -> bytes:
    """One protocol line, newline included."""
    return _encoder.encode(msg) + b"\n"


def decode_command(line: bytes) -> AnyRunnerCommand:
    return _cmd_decoder.decode(line)


def decode_envelope(line: bytes) -> Envelope:
    return _env_decoder.decode(line)
