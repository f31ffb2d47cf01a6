"""Routes for a person in the loop: list a session's pending tool approvals, answer one.

An answer is claimed in Redis first (atomically: a second answer is a 409), then sent to the
session's owner as an ``approve`` command; the runner that waits in ``can_use_tool`` applies it
and emits ``approval.resolved``, which this route waits for (bounded).

The command goes the short way first: a core NATS request on the session's ``approve`` RPC
subject, which the owning worker already subscribes to and answers as soon as it has written
the answer to the runner (no JetStream store, no pull consumer between the person and the
tool). When no worker answers (the owner died and another has not adopted the session yet) or
it could not relay, the command is queued on JetStream like every other command and the route
answers 202 if it is not applied in time: it is applied once the session has an owner again.
Should both copies reach the runner, the second (same ``answer_id``) is dropped there.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from typing import Any, Literal

import msgspec
import structlog
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from api.agents.auth import authorize, bearer_key
from api.agents.service import ensure_live
from api.errors import BadRequest, Conflict, NotFound, Unavailable
from api.services import Services, ServicesDep
from broker import subjects
from broker.approvals import ApprovalStore, Claim
from broker.commands import Approve, encode_command
from broker.runner_wire import ApprovalAnswer
from broker.state import SessionRecord

log = structlog.get_logger("agc.api.approvals")

REQUEST_ID_RE = re.compile(r"^apr-[0-9a-f]{8,32}$")
MAX_MESSAGE_CHARS = 10_000
MAX_NAME_CHARS = 100
MAX_INPUT_BYTES = 256 * 1024
# Seconds an answer waits for the runner to apply it before the route says 202 (queued).
APPLY_WAIT = 10.0
# Seconds the owning worker has to confirm the direct path before the answer is queued.
DIRECT_WAIT = 2.0


class AnswerRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A person's answer: allow or deny, what the model is told, the input to run with."""

    decision: Literal["allow", "deny"]
    message: str | None = None
    updated_input: dict[str, Any] | None = None
    scope: Literal["once", "session"] = "once"
    name: str | None = None


class _Outcome(msgspec.Struct):
    type: str
    request_id: str = ""
    answer_id: str = ""
    decision: str = ""
    cause: str = ""
    code: str = ""
    detail: str = ""


_outcome = msgspec.json.Decoder(_Outcome)


def _store(services: Services) -> ApprovalStore:
    return ApprovalStore(services.redis, prefix=services.settings.redis_prefix)


def fingerprint(services: Services, api_key: str) -> str:
    """Who answered, without revealing the key: a prefix of its keyed (HMAC) fingerprint."""
    return f"key:{services.sealer.key_hash(api_key)[:12]}"


def _check(data: AnswerRequest) -> None:
    if data.message is not None and len(data.message) > MAX_MESSAGE_CHARS:
        raise BadRequest(f"`message` is longer than {MAX_MESSAGE_CHARS} characters")
    if data.name is not None and (
        len(data.name) > MAX_NAME_CHARS or not data.name.isprintable() or not data.name.strip()
    ):
        raise BadRequest(f"`name` must be 1-{MAX_NAME_CHARS} printable characters")
    if data.updated_input is not None:
        if data.decision != "allow":
            raise BadRequest("`updated_input` only goes with `decision: allow`")
        if len(msgspec.json.encode(data.updated_input)) > MAX_INPUT_BYTES:
            raise BadRequest(f"`updated_input` is larger than {MAX_INPUT_BYTES} bytes")


async def answer(
    services: Services, record: SessionRecord, request_id: str, data: AnswerRequest, by: str
) -> tuple[int, dict[str, Any]]:
    """Claim, send and (bounded) await one answer; return the status and body to reply with."""
    sid = record.session_id
    if not REQUEST_ID_RE.fullmatch(request_id):
        raise NotFound(f"no approval request {request_id!r}")
    _check(data)
    answer_id = f"ans-{uuid.uuid4().hex[:16]}"
    store = _store(services)
    # Subscribed before the claim: the resolution cannot slip past between send and wait.
    sub = await services.nc.subscribe(subjects.events(sid))
    try:
        claim, tool = await store.claim(sid, request_id, f"{answer_id} {by}")
        if claim is Claim.UNKNOWN:
            raise NotFound(f"no pending approval request {request_id!r} in session {sid}")
        if claim is Claim.TAKEN:
            raise Conflict(f"approval request {request_id!r} has already been answered or ended")
        command = Approve(
            session_id=sid,
            answer=ApprovalAnswer(
                request_id=request_id,
                decision=data.decision,
                scope=data.scope,
                message=data.message or "",
                updated_input=data.updated_input,
                by=by,
                by_name=(data.name or "").strip(),
                answer_id=answer_id,
            ),
            tool=tool,
        )
        wire = encode_command(command)
        if not await _send_direct(services, sid, wire):
            try:
                await services.js.publish(
                    subjects.session_cmd(sid, "approve"),
                    wire,
                    headers={"Nats-Msg-Id": f"{sid}:approve:{request_id}"},
                )
            except Exception as exc:
                await store.unclaim(sid, request_id, f"{answer_id} {by}")
                raise Unavailable(f"cannot send the answer: {exc}") from exc
        outcome = await _await_outcome(sub, request_id)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    body: dict[str, Any] = {
        "session_id": sid,
        "request_id": request_id,
        "answer_id": answer_id,
        "decision": data.decision,
        "scope": data.scope,
        "decided_by": by,
    }
    if outcome is None:
        log.info("approval answer queued", session_id=sid, request_id=request_id)
        return HTTP_202_ACCEPTED, {**body, "status": "queued"}
    if outcome.type == "approval.resolved" and outcome.answer_id == answer_id:
        return HTTP_200_OK, {**body, "status": "applied"}
    how = outcome.cause if outcome.type == "approval.resolved" else "no longer pending"
    raise Conflict(f"approval request {request_id!r} ended before the answer arrived ({how})")


class _Relayed(msgspec.Struct):
    ok: bool = False


_relayed = msgspec.json.Decoder(_Relayed)


async def _send_direct(services: Services, sid: str, data: bytes) -> bool:
    """Hand the command to the owning worker over core NATS; True once it reached the runner.

    False (no worker serves the session, it timed out or could not relay) sends the caller to
    the durable path.
    """
    try:
        reply = await services.nc.request(
            subjects.session_rpc(sid, "approve"), data, timeout=DIRECT_WAIT
        )
        ok = _relayed.decode(reply.data).ok
    except Exception as exc:  # no responders, timeout, a connection blip, a worker's error
        log.info("direct answer path unavailable", session_id=sid, error=type(exc).__name__)
        return False
    if not ok:
        log.info("worker could not relay the answer", session_id=sid, reply=reply.data[:200])
    return ok


async def _await_outcome(sub: Any, request_id: str) -> _Outcome | None:
    deadline = time.monotonic() + APPLY_WAIT
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            msg = await sub.next_msg(timeout=remaining)
        except TimeoutError:  # nats-py's own timeout subclasses it
            return None
        try:
            out = _outcome.decode(msg.data)
        except msgspec.DecodeError:
            continue
        if out.type == "approval.resolved" and out.request_id == request_id:
            return out
        if out.type == "error" and out.code == "approval_not_pending" and out.detail == request_id:
            return out
    return None


class ApprovalsController(Controller):
    path = "/api/agents/{session_id:str}/approvals"
    tags = ["approvals"]

    @get("/", summary="Pending tool approvals of a session")
    async def list_pending(
        self, request: Request[Any, Any, Any], session_id: FromPath[str], services: ServicesDep
    ) -> dict[str, Any]:
        """The `approval.requested` events still waiting for an answer, oldest first, and the
        tools a person allowed for the rest of the session (`grants`), which are not asked
        about again."""
        await authorize(request, services, session_id)
        store = _store(services)
        pending = await store.pending(session_id)
        grants = await store.grants(session_id)
        return {
            "session_id": session_id,
            "approvals": pending,
            "total": len(pending),
            "grants": grants,
        }

    @post("/{request_id:str}", status_code=HTTP_200_OK, summary="Answer a tool approval")
    async def answer(
        self,
        request: Request[Any, Any, Any],
        session_id: FromPath[str],
        request_id: FromPath[str],
        data: JSONBody[AnswerRequest],
        services: ServicesDep,
    ) -> Response[dict[str, Any]]:
        """Allow or deny one pending call, once or for the rest of the session.

        `message` is what the model is told on a denial; `updated_input` (with allow) runs
        the call with that input instead; `name` is recorded beside the key's fingerprint.
        200 when applied, 202 when queued for a session whose worker is being replaced, 409
        when it was already answered or ended (timed out, interrupted).
        """
        record = await authorize(request, services, session_id)
        ensure_live(record)
        by = fingerprint(services, bearer_key(request))
        status, body = await answer(services, record, request_id, data, by)
        return Response(body, status_code=status)
