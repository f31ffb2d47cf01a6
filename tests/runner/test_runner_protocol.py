"""The runner process's stdin/stdout protocol and lifecycle (no model turns needed)."""

from __future__ import annotations

import asyncio
import signal

from tests.modelserver.server import ModelServer
from tests.runner.conftest import StartRunner
from tests.runner.harness import base_config


async def test_chat_before_init_gets_an_error_and_a_completed_turn(
    start_runner: StartRunner,
) -> None:
    runner = await start_runner()
    turn_id = runner.chat("hello?")
    error = await runner.wait_for("error")
    done = await runner.wait_for("turn.completed")
    assert (error.data["code"], error.data["turn_id"]) == ("not_initialized", turn_id)
    assert (done.data["turn_id"], done.data["is_error"]) == (turn_id, True)
    assert await runner.stop("bye") == 0
    stopped = runner.received[-1]
    assert (stopped.type, stopped.data["reason"]) == ("session.stopped", "bye")
    # stdout carries protocol lines only, numbered from 1 under one boot id
    assert runner.bad_lines == []
    assert [r.envelope.seq for r in runner.received] == list(range(1, len(runner.received) + 1))
    assert len({r.envelope.boot_id for r in runner.received}) == 1


async def test_bad_lines_are_reported_and_the_runner_keeps_going(start_runner: StartRunner) -> None:
    runner = await start_runner()
    runner.send_raw(b"this is not json\n")
    runner.send_raw(b'{"type": "launch-missiles"}\n')
    runner.send_raw(b"\n")
    first = await runner.wait_for("error")
    second = await runner.wait_for("error")
    assert first.data["code"] == second.data["code"] == "bad_command"
    assert "not json" in first.data["detail"]
    runner.interrupt()  # no session, no turn: a no-op
    runner.attach(second.envelope.seq)
    notice = await runner.wait_for("system")
    assert notice.data["subtype"] == "runner.attached"
    assert notice.data["data"]["initialized"] is False
    assert notice.data["data"]["replayed"] == 0
    assert runner.types() == ["error", "error", "system"]
    assert await runner.stop() == 0


async def test_attach_replays_buffered_envelopes_byte_for_byte(start_runner: StartRunner) -> None:
    runner = await start_runner(AGC_REPLAY_BUFFER="4")
    for _ in range(3):
        runner.chat("early")  # each yields error + turn.completed: 6 envelopes
    await runner.wait_for("turn.completed", lambda r: r.envelope.seq == 6)
    originals = [r.line for r in runner.received]
    runner.attach(3)
    notice = await runner.wait_for("system")
    replayed = runner.received[6 : len(runner.received) - 1]
    assert [r.line for r in replayed] == originals[3:]
    assert [r.envelope.seq for r in replayed] == [4, 5, 6]
    data = notice.data["data"]
    assert (data["replayed"], data["last_seq"], data["after_seq"]) == (3, 6, 3)
    assert data["boot_id"] == runner.received[0].envelope.boot_id
    # older than the buffer (4 envelopes): replay starts at the oldest one kept
    runner.attach(0)
    # (the replay itself holds the previous notice, seq 7)
    notice = await runner.wait_for("system", lambda r: r.envelope.seq == 8)
    assert notice.data["data"]["first_buffered_seq"] == 4
    assert notice.data["data"]["replayed"] == 4
    assert await runner.stop() == 0


async def test_eof_exits_only_when_asked(start_runner: StartRunner) -> None:
    eager = await start_runner()
    assert eager.proc is not None and eager.proc.stdin is not None
    eager.proc.stdin.close()
    assert await eager.wait_exit(20) == 0
    assert (eager.received[-1].type, eager.received[-1].data["reason"]) == (
        "session.stopped",
        "eof",
    )

    patient = await start_runner(AGC_EXIT_ON_EOF="0")
    assert patient.proc is not None and patient.proc.stdin is not None
    patient.proc.stdin.close()
    # The runner says it saw the EOF and stays; it must still be running after saying so.
    await patient.wait_stderr("stdin closed; still running")
    assert patient.proc.returncode is None, "EOF must not end a runner in a container"
    patient.signal(signal.SIGTERM)
    assert await patient.wait_exit(20) == 0
    assert patient.received[-1].data["reason"] == "sigterm"


async def test_bad_config_is_a_fatal_error(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    runner.init(model_server.base_url, base_config(permission_mode="anything-goes"))
    error = await runner.wait_for("error")
    assert error.data["code"] == "bad_config"
    assert error.data["fatal"] is True
    assert "permission_mode" in error.data["message"]
    runner.chat("hi")
    assert (await runner.wait_for("error")).data["code"] == "not_initialized"
    assert await runner.stop() == 0


async def test_connect_failure_is_reported_and_retried_per_chat(
    start_runner: StartRunner, model_server: ModelServer, tmp_path: object
) -> None:
    runner = await start_runner(AGC_WORKSPACE="/nonexistent/agc-workspace")
    runner.init(model_server.base_url)
    error = await runner.wait_for("error")
    assert error.data["code"] == "connect_failed"
    assert "/nonexistent/agc-workspace" in error.data["message"]
    turn_id = runner.chat("hello")
    events = await runner.turn(turn_id)
    assert runner.types(events) == ["user.message", "turn.started", "error", "turn.completed"]
    assert events[2].data["code"] == "connect_failed"
    assert events[3].data["is_error"] is True
    assert await runner.stop() == 0


async def test_a_signal_during_start_up_ends_the_runner_cleanly(start_runner: StartRunner) -> None:
    runner = await start_runner()
    assert runner.proc is not None
    # Wait until the handler is installed (the first thing the runner does), then signal it
    # while it is still importing the SDK (it has not logged its start yet).
    deadline = asyncio.get_running_loop().time() + 20
    while not runner.handles(signal.SIGTERM):
        assert asyncio.get_running_loop().time() < deadline, "no SIGTERM handler installed"
        await asyncio.sleep(0.005)
    runner.signal(signal.SIGTERM)
    assert await runner.wait_exit(20) == 0
    assert not any("runner starting" in line for line in runner.stderr_lines)
    assert "before start-up finished" in runner.stderr_text()
