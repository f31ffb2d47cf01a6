"""Agent config + init secrets → ClaudeAgentOptions, without a CLI."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import AgentDefinition

from broker.runner_wire import Init
from runner.errors import ConfigError
from runner.options import build_options, offline_env, prepare_dirs
from runner.settings import RunnerSettings
from tests.runner.harness import base_config


def settings(tmp_path: Path) -> RunnerSettings:
    return RunnerSettings(
        workspace=tmp_path / "ws", home=tmp_path / "home", tmp_root=tmp_path / "tmp"
    )


def init(config: dict[str, Any], **kw: Any) -> Init:
    return Init(session_id="sess/1", config=config, api_key="sk-secret", **kw)


def noop(_: str) -> None:
    pass


def test_every_config_field_reaches_the_options(tmp_path: Path) -> None:
    config = base_config(
        allowed_tools=["Bash", "Read"],
        system_prompt={"type": "preset", "preset": "claude_code", "append": "Be terse."},
        permission_mode="plan",
        mcp_servers={
            "calc": {"command": "python3", "args": ["calc.py"], "env": {"A": "1", "TOKEN": "x"}},
            "remote": {"type": "http", "url": "http://127.0.0.1:9/mcp", "headers": {"H": "v"}},
            "events": {"type": "sse", "url": "http://127.0.0.1:9/sse"},
        },
        agents={
            "researcher": {
                "description": "Finds things",
                "prompt": "You research.",
                "tools": ["Read"],
                "model": "haiku",
            },
            "plain": {"description": "d", "prompt": "p"},
        },
        max_turns=7,
        model="claude-test-1",
        env={"FROM_CONFIG": "1", "SHARED": "config"},
        setting_sources=["project"],
    )
    opts = build_options(
        init(config, mcp_env={"calc": {"TOKEN": "real"}}, env={"SHARED": "init"}),
        settings(tmp_path),
        resume="sdk-123",
        stderr=noop,
    )
    assert opts.system_prompt == {"type": "preset", "preset": "claude_code", "append": "Be terse."}
    assert opts.permission_mode == "plan"
    assert opts.max_turns == 7
    assert opts.model == "claude-test-1"
    assert opts.setting_sources == ["project"]
    assert opts.resume == "sdk-123"
    assert opts.cwd == str(tmp_path / "ws")
    assert opts.include_partial_messages is True
    assert opts.stderr is noop
    assert isinstance(opts.mcp_servers, dict)
    # launch-time MCP credentials are merged into that server's env and win
    assert opts.mcp_servers["calc"] == {
        "type": "stdio",
        "command": "python3",
        "args": ["calc.py"],
        "env": {"A": "1", "TOKEN": "real"},
    }
    assert opts.mcp_servers["remote"] == {
        "type": "http",
        "url": "http://127.0.0.1:9/mcp",
        "headers": {"H": "v"},
    }
    assert opts.mcp_servers["events"] == {
        "type": "sse",
        "url": "http://127.0.0.1:9/sse",
        "headers": {},
    }
    assert opts.agents == {
        "researcher": AgentDefinition(
            description="Finds things", prompt="You research.", tools=["Read"], model="haiku"
        ),
        "plain": AgentDefinition(description="d", prompt="p"),
    }
    # configured tools first, then what each MCP server implies
    assert opts.allowed_tools[:2] == ["Bash", "Read"]
    assert {"mcp__calc__*", "mcp__remote__*", "mcp__events__*"} <= set(opts.allowed_tools)
    assert {"ListMcpResourcesTool", "ReadMcpResourceTool"} <= set(opts.allowed_tools)
    assert opts.env["FROM_CONFIG"] == "1"
    assert opts.env["SHARED"] == "init"
    assert opts.env["ANTHROPIC_API_KEY"] == "sk-secret"


def test_defaults_isolate_the_cli(tmp_path: Path) -> None:
    config = base_config(system_prompt=None, setting_sources=None, mcp_servers=None, agents=None)
    opts = build_options(init(config), settings(tmp_path), resume=None, stderr=noop)
    # host settings files are ignored unless the config asks for them
    assert opts.setting_sources == []
    assert opts.system_prompt == {"type": "preset", "preset": "claude_code"}
    assert opts.resume is None
    assert opts.agents is None
    assert opts.mcp_servers == {}
    env = opts.env
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert env["CLAUDE_CONFIG_DIR"] == str(tmp_path / "home" / ".claude")
    assert env["XDG_CACHE_HOME"] == str(tmp_path / "home" / ".cache")
    # the session id is made path-safe for the scratch dir
    assert env["CLAUDE_CODE_TMPDIR"] == str(tmp_path / "tmp" / "agc-sess_1" / "claude")
    assert env["XDG_RUNTIME_DIR"] == str(tmp_path / "tmp" / "agc-sess_1" / "run")
    assert env["CLAUDE_CODE_ENABLE_TASKS"] == "0"
    assert env["CLAUDE_CODE_ENABLE_TODO_TOOLS"] == "1"
    assert env["CLAUDE_CODE_DISABLE_BACKGROUND_TASKS"] == "1"


def test_init_env_overrides_defaults_and_api_key_comes_last(tmp_path: Path) -> None:
    # (a config cannot set ANTHROPIC_API_KEY at all: the model refuses it)
    config = base_config(env={"CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "from-config"})
    env = offline_env(
        init(
            config,
            env={
                "ANTHROPIC_API_KEY": "from-init-env",
                "ANTHROPIC_BASE_URL": "http://127.0.0.1:1",
                "CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "0",
            },
        ),
        settings(tmp_path),
    )
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:1"
    assert env["CLAUDE_CODE_DISABLE_BACKGROUND_TASKS"] == "0"
    assert env["ANTHROPIC_API_KEY"] == "sk-secret"


def test_prepare_dirs_creates_a_private_runtime_dir(tmp_path: Path) -> None:
    env = offline_env(init(base_config()), settings(tmp_path))
    prepare_dirs(env)
    for key in ("CLAUDE_CONFIG_DIR", "CLAUDE_CODE_TMPDIR", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"):
        assert Path(env[key]).is_dir()
    assert stat.S_IMODE(os.stat(env["XDG_RUNTIME_DIR"]).st_mode) == 0o700


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"permission_mode": "yolo"}, "permission_mode"),
        ({"system_prompt": {"type": "preset", "preset": "other"}}, "preset"),
        ({"system_prompt": 3}, "system_prompt"),
        ({"allowed_tools": "Bash"}, "allowed_tools"),
        ({"mcp_servers": {"x": {"type": "stdio"}}}, "command"),
        ({"mcp_servers": {"x": {"type": "ws", "url": "u"}}}, "type"),
        ({"mcp_servers": {"x": {"type": "http"}}}, "url"),
        ({"agents": {"a": {"description": "d"}}}, "agents.a.prompt"),
        ({"resource_limits": {"memory": "1g"}}, "resource_limits.memory"),
        ({"max_turns": 0}, "max_turns"),
        ({"max_turns": True}, "max_turns"),
        ({"setting_sources": ["everything"]}, "setting_sources"),
        ({"env": {"A": ["list"]}}, "env"),
    ],
)
def test_malformed_config_names_the_field(
    tmp_path: Path, override: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        build_options(init(base_config(**override)), settings(tmp_path), resume=None, stderr=noop)
    assert fragment in str(info.value)


def test_settings_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AGC_WORKSPACE": str(tmp_path),
        "HOME": "/home/x",
        "TMPDIR": "/scratch",
        "AGC_EXIT_ON_EOF": "1",
        "AGC_REPLAY_BUFFER": "10",
        "AGC_INTERRUPT_GRACE": "2.5",
        "AGC_CLI_STDERR_LINES": "7",
        "AGC_LOG_LEVEL": "debug",
        "AGC_AGENT_UID": "",  # empty counts as unset
    }.items():
        monkeypatch.setenv(name, value)
    s = RunnerSettings.from_env()
    assert (s.workspace, s.home, s.tmp_root) == (tmp_path, Path("/home/x"), Path("/scratch"))
    assert s.exit_on_eof is True
    assert (s.replay_buffer, s.interrupt_grace, s.stderr_lines) == (10, 2.5, 7)
    assert (s.log_level, s.agent_uid) == ("DEBUG", None)
    for name in ("AGC_WORKSPACE", "AGC_EXIT_ON_EOF", "AGC_REPLAY_BUFFER", "AGC_INTERRUPT_GRACE"):
        monkeypatch.delenv(name)
    default = RunnerSettings.from_env()
    assert default.workspace == Path("/workspace")
    assert default.exit_on_eof is False
    assert default.replay_buffer == 5000
