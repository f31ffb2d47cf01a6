"""The CLI started while the SDK imports (runner.early): exactly as the SDK would start it.

The equivalence is checked against the SDK itself: its own transport spawns a stand-in CLI
that records its command line, environment and directory, for each preset the early start
covers and for configs that use every option it mirrors (with and without a sandbox link,
as the runner's uid and as the agent's). The real runner then adopts the early CLI, and a
runner stopped before the SDK finished importing leaves no CLI behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport
from claude_agent_sdk.types import CanUseToolShadowedWarning, _configure_can_use_tool

from broker.runner_wire import Init
from configs.store import load_presets
from runner import early
from runner.cli_config import agent_config, permission_rules
from runner.options import build_options
from runner.sandbox import SandboxLink, confine, private_scratch
from runner.settings import RunnerSettings
from runner.transport import sdk_launch
from tests.modelserver.script import text
from tests.modelserver.server import ModelServer
from tests.runner.conftest import StartRunner
from tests.runner.harness import base_config
from tests.support.wait import until

TOKEN = "session-token-0123456789abcdef"
RECORDER = """#!{python}
import json, os, sys
with open({out!r}, "w") as f:
    json.dump({{"argv": sys.argv, "env": dict(os.environ), "cwd": os.getcwd()}}, f)
"""


def configs() -> list[tuple[str, dict[str, Any]]]:
    """Every preset without MCP servers, and configs using each option the early start mirrors."""
    out = [(name, p.to_wire()) for name, p in sorted(load_presets().items()) if not p.mcp_servers]
    assert len(out) >= 2
    out.append(("base", base_config()))
    out.append(
        (
            "every-option",
            base_config(
                system_prompt="You are terse; commas, 'quotes' and\nnewlines survive.",
                model="claude-sonnet-4-5",
                max_turns=7,
                permission_mode="acceptEdits",
                allowed_tools=["Read", "Bash(git *)"],
                setting_sources=["project"],
                env={"FOO": "bar"},
                permissions={
                    "allow": ["Read"],
                    "ask": ["Bash(rm *)"],
                    "deny": ["Write(//etc/**)"],
                    "otherwise": "deny",
                },
            ),
        )
    )
    out.append(
        (
            "preset-prompt",
            base_config(
                system_prompt={"type": "preset", "preset": "claude_code", "append": "Be brief."}
            ),
        )
    )
    return out


def settings_for(tmp: Path, *, agent_uid: int | None, link: bool) -> RunnerSettings:
    sandbox = tmp / "run-agc"
    sandbox.mkdir(exist_ok=True)
    if link:
        (sandbox / "gw.sock").touch()  # only its existence decides; nothing connects here
    return RunnerSettings(
        workspace=tmp, home=tmp / "home", tmp_root=tmp, agent_uid=agent_uid, sandbox_dir=sandbox
    )


async def sdk_spawn(
    init: Init, settings: RunnerSettings, plan: early.Plan, recorder: Path
) -> dict[str, Any]:
    """Build the session's options as runner.session does, let the SDK's own transport start
    ``recorder`` with them, and return what it recorded."""
    cfg = agent_config(init.config)
    _rules, asks = permission_rules(cfg.permissions)

    async def gate(*_a: Any) -> Any:
        raise AssertionError("never asked")

    options = build_options(
        init, settings, resume=None, stderr=lambda _l: None, can_use_tool=gate, config=cfg
    )
    assert (options.can_use_tool is not None) == asks
    link = (
        SandboxLink.for_init(init, settings)
        if init.gateway_token
        else SandboxLink.for_prestart(settings)
    )
    if link is not None:
        link.listeners, plan.listeners = plan.listeners, {}
        await link.start([])
    try:
        options = confine(options, link, settings, private_scratch(settings))
        # The session's own check: what the SDK would start is what was started.
        assert sdk_launch(options) == (plan.argv, plan.env, plan.cwd)
        with warnings.catch_warnings():
            # As runner.session: whole-tool allow rules shadowing can_use_tool are intended.
            warnings.simplefilter("ignore", CanUseToolShadowedWarning)
            spawn = _configure_can_use_tool(options)
        spawn = dataclasses.replace(spawn, cli_path=str(recorder))
        transport = SubprocessCLITransport(prompt="", options=spawn)
        await transport.connect()
        await until(lambda: recorder.with_suffix(".json").exists(), what="the recorder")
        await transport.close()
    finally:
        if link is not None:
            await link.close()
    recorded: dict[str, Any] = json.loads(recorder.with_suffix(".json").read_text())
    return recorded


@pytest.mark.parametrize(
    ("agent_uid", "link"), [(None, False), (None, True), (os.getuid(), True)], ids=str
)
@pytest.mark.parametrize(("name", "config"), configs(), ids=[name for name, _ in configs()])
async def test_the_early_cli_is_started_as_the_sdk_starts_it(
    tmp_path: Path, name: str, config: dict[str, Any], agent_uid: int | None, link: bool
) -> None:
    settings = settings_for(tmp_path, agent_uid=agent_uid, link=link)
    init = Init(
        session_id=f"conv-{name}",
        config=config,
        env={"EXTRA": "1"},
        worker_id="w",
        gateway_token=TOKEN if link else "",
    )
    plan = early.plan(init, settings)
    assert plan is not None
    assert bool(plan.listeners) == link
    # The session's token stays in the runner: never in the CLI's environment or argv.
    assert TOKEN not in json.dumps(plan.env) and TOKEN not in json.dumps(plan.argv)
    recorder = tmp_path / "recorder"
    recorder.write_text(RECORDER.format(python=sys.executable, out=str(recorder) + ".json"))
    recorder.chmod(0o755)
    try:
        got = await sdk_spawn(init, settings, plan, recorder)
    finally:
        for sock in plan.listeners.values():
            sock.close()
    assert got["argv"][1:] == plan.argv[1:]
    assert got["env"] == plan.env
    assert got["cwd"] == plan.cwd


def test_what_the_early_start_leaves_to_the_sdk(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, agent_uid=None, link=False)
    mcp = base_config(mcp_servers={"x": {"type": "http", "url": "https://example.com/mcp"}})
    assert early.plan(Init(session_id="s", config=mcp), settings) is None
    assert early.plan(Init(session_id="s", config=base_config(), resume="abc"), settings) is None


async def test_the_runner_adopts_the_cli_started_early(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    marker = model_server.add_script("early", [[text("started early")]])
    await runner.ready(model_server.base_url)
    turn = runner.chat(f"hello {marker}")
    events = await runner.turn(turn)
    assert [e.data.get("text") for e in events if e.type == "message"] == ["started early"]
    log = "\n".join(runner.stderr_lines)
    assert "start-up: CLI started early" in log
    assert "adopting the CLI started early" in log


def cli_children(pid: int) -> list[int]:
    """Pids of processes whose parent is ``pid`` and whose command line names the CLI."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"claude" in cmdline:
            out.append(int(entry.name))
    return out


async def test_a_runner_stopped_while_the_sdk_imports_leaves_no_cli(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    assert runner.proc is not None
    runner.init(model_server.base_url)
    # Stopped as soon as its CLI runs: most often while the SDK is still importing.
    pid = runner.proc.pid
    children = await until(lambda: cli_children(pid), what="the early CLI")
    runner.proc.send_signal(signal.SIGTERM)
    assert await runner.wait_exit(30.0) == 0

    def gone() -> bool:
        return all(not alive(child) for child in children)

    await until(gone, what="the early CLI to end")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
