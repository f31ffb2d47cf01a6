"""A warm-pool runner: ``prestart`` starts the real CLI before any session; ``init`` binds it.

Real runner subprocess, real SDK and CLI, the scripted model server.
"""

from __future__ import annotations

from broker.runner_wire import Init, Prestart
from tests.modelserver.script import text
from tests.modelserver.server import ModelServer
from tests.runner.conftest import StartRunner
from tests.runner.harness import RunnerProcess, base_config


def _env(model_server: ModelServer) -> dict[str, str]:
    # Outside a sandbox the CLI's key comes from env here; in a sandbox it is the gateway's
    # placeholder, which is what makes a preset's CLI start the same for every session.
    return {
        "ANTHROPIC_BASE_URL": model_server.base_url,
        "ANTHROPIC_API_KEY": "placeholder",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }


def _bind(runner: RunnerProcess, config: dict[str, object], env: dict[str, str]) -> None:
    runner.send(
        Init(
            session_id=runner.session_id,
            config=config,
            env=env,
            worker_id="worker-claimer",
            approval_timeout=30.0,
        )
    )


def _cli_count(runner: RunnerProcess) -> int:
    return len(runner.cli_pids())


async def test_init_binds_the_prestarted_cli(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    config, env = base_config(), _env(model_server)
    runner.send(Prestart(session_id=runner.session_id, config=config, env=env, worker_id="w-pool"))
    notice = await runner.wait_for("system", lambda r: r.data.get("subtype") == "runner.prestarted")
    assert notice.data["data"]["ok"] is True
    # Held: no session.ready before a session binds the slot.
    assert "session.ready" not in runner.types()
    cli_before = runner.cli_pids()
    assert len(cli_before) == 1

    _bind(runner, config, env)
    ready = await runner.wait_for("session.ready")
    assert ready.data["session_id"] == runner.session_id
    assert ready.data["worker_id"] == "worker-claimer"
    assert ready.data["config_id"] == "runner-test"
    # Bound, not restarted: the same CLI process serves the session.
    assert runner.cli_pids() == cli_before

    marker = model_server.add_script("warm", [[text("warm hello")]])
    turn_id = runner.chat(f"hi {marker}")
    events = await runner.turn(turn_id)
    assert events[-1].type == "turn.completed"
    assert {e.data["session_id"] for e in events} == {runner.session_id}
    assert any(e.type == "message" and "warm hello" in e.data["text"] for e in events)


async def test_init_for_another_config_replaces_the_prestarted_cli(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    env = _env(model_server)
    runner.send(Prestart(session_id=runner.session_id, config=base_config(), env=env))
    await runner.wait_for("system", lambda r: r.data.get("subtype") == "runner.prestarted")
    cli_before = runner.cli_pids()

    other = base_config(id="other-config", system_prompt="Another prompt.")
    _bind(runner, other, env)
    ready = await runner.wait_for("session.ready")
    assert ready.data["config_id"] == "other-config"
    assert runner.cli_pids() and runner.cli_pids() != cli_before

    marker = model_server.add_script("other", [[text("fresh cli")]])
    events = await runner.turn(runner.chat(f"hi {marker}"))
    assert any(e.type == "message" and "fresh cli" in e.data["text"] for e in events)
    # The model saw the new config's prompt, not the pre-started one's.
    assert "Another prompt." in model_server.requests_for("other")[-1].system_text


async def test_a_prestart_whose_cli_cannot_start_says_so(start_runner: StartRunner) -> None:
    runner = await start_runner()
    bad = base_config(permission_mode="not-a-mode")
    runner.send(Prestart(session_id=runner.session_id, config=bad, env={}))
    notice = await runner.wait_for("system", lambda r: r.data.get("subtype") == "runner.prestarted")
    assert notice.data["data"]["ok"] is False
    assert "permission_mode" in notice.data["data"]["error"]
