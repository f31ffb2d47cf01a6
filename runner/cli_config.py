"""What the CLI is started with, read from the agent config, without the SDK.

These parts of the options are read both by :mod:`runner.options` (the SDK's
``ClaudeAgentOptions``) and by :mod:`runner.early`, which starts the CLI before the SDK is
imported: they must not import it (``claude_agent_sdk`` eagerly imports ``mcp``, ~0.3 s).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from broker.runner_wire import Init
from configs.model import AgentConfig, Permissions, field_errors
from runner.errors import ConfigError
from runner.settings import RunnerSettings

# What the CLI calls the MCP resource tools (its init message lists these names); the
# config model may add the shorter names too, which is harmless.
_MCP_RESOURCE_TOOLS = ("ListMcpResourcesTool", "ReadMcpResourceTool")
_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_PATH_RULE_AS_EDIT = frozenset({"Write", "NotebookEdit"})


def agent_config(data: Mapping[str, Any]) -> AgentConfig:
    """Decode the wire config (``AgentConfig.to_wire``) into the typed model.

    Raises :class:`ConfigError` naming every bad field (``permission_mode: ...``), with the
    same field paths and messages the API's 422 gives for the same config.
    """
    if not isinstance(data, Mapping):
        raise ConfigError("config must be an object")
    try:
        return AgentConfig.from_wire(data)
    except ValidationError as exc:
        problems = [f"{e['field'] or 'config'}: {e['message']}" for e in field_errors(exc)]
        raise ConfigError("; ".join(problems)) from exc


def offline_env(
    init: Init, settings: RunnerSettings, config: AgentConfig | None = None
) -> dict[str, str]:
    """Return the CLI's environment: safe defaults, then config ``env``, then ``init.env``.

    The defaults make the CLI quiet and self-contained: no non-essential traffic, every
    directory it writes under ``$HOME`` (a per-session volume) or a per-session scratch dir,
    TodoWrite on, and sub-agents run in the foreground so a turn includes their work (the
    CLI otherwise backgrounds them and reports them after the turn has ended).
    """
    scratch = settings.tmp_root / f"agc-{_UNSAFE_PATH_CHARS.sub('_', init.session_id) or 'x'}"
    env: dict[str, str] = {
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CONFIG_DIR": str(settings.home / ".claude"),
        "CLAUDE_CODE_TMPDIR": str(scratch / "claude"),
        "XDG_CACHE_HOME": str(settings.home / ".cache"),
        "XDG_RUNTIME_DIR": str(scratch / "run"),
        "CLAUDE_CODE_ENABLE_TASKS": "0",
        "CLAUDE_CODE_ENABLE_TODO_TOOLS": "1",
        "CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "1",
    }
    env.update((config if config is not None else agent_config(init.config)).env)
    env.update(str_map(init.env, "init.env"))
    if init.api_key:
        env["ANTHROPIC_API_KEY"] = init.api_key
    return env


def prepare_dirs(env: Mapping[str, str]) -> None:
    """Create the directories the CLI is pointed at (XDG_RUNTIME_DIR must be private)."""
    for key in ("CLAUDE_CONFIG_DIR", "CLAUDE_CODE_TMPDIR", "XDG_CACHE_HOME"):
        if env.get(key):
            Path(env[key]).mkdir(parents=True, exist_ok=True)
    if env.get("XDG_RUNTIME_DIR"):
        run = Path(env["XDG_RUNTIME_DIR"])
        run.mkdir(parents=True, exist_ok=True)
        os.chmod(run, 0o700)


def permission_rules(permissions: Permissions) -> tuple[dict[str, list[str]], bool]:
    """The config's ``permissions`` as Claude Code settings rules, and whether a person is asked.

    ``Write(path)`` and ``NotebookEdit(path)`` become ``Edit(path)``: CLI 2.1.327 matches file
    paths only in Read and Edit rules, and its Edit rules cover every file-writing tool.
    """
    rules: dict[str, list[str]] = {}
    for kind, listed in (
        ("allow", permissions.allow),
        ("ask", permissions.ask),
        ("deny", permissions.deny),
    ):
        if listed:
            rules[kind] = list(dict.fromkeys(_cli_rule(r) for r in listed))
    return rules, bool(rules.get("ask")) or permissions.otherwise == "ask"


def _cli_rule(rule: str) -> str:
    name, paren, rest = rule.partition("(")
    if paren and name in _PATH_RULE_AS_EDIT:
        return f"Edit({rest}"
    return rule


def allowed_tools(tools: list[str], mcp_servers: Iterable[str]) -> list[str]:
    """The config's tools plus what its MCP servers (named in ``mcp_servers``) imply."""
    tools = list(tools)
    names = list(mcp_servers)
    implied: list[str] = []
    if names:
        implied.extend(_MCP_RESOURCE_TOOLS)
        for name in names:
            implied.append(f"mcp__{name}__*")
    for tool in implied:
        if tool not in tools:
            tools.append(tool)
    return tools


def str_map(value: Mapping[str, str] | None, name: str) -> dict[str, str]:
    """``value`` checked as a map of strings (init.env and mcp_env come from the worker, not
    through the config model)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be an object of strings")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str | int | float | bool):
            raise ConfigError(f"{name}[{key!r}] must be a string")
        out[key] = str(item)
    return out
