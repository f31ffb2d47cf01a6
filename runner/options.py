"""Turn an ``init`` command (agent config + secrets) into ``ClaudeAgentOptions``.

The config arrives as a plain dict (the pydantic model lives with the API, not in the agent
image). Every field the platform defines is passed on; anything malformed raises
:class:`~runner.errors.ConfigError` with a message naming the field.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast, get_args

from claude_agent_sdk import AgentDefinition, ClaudeAgentOptions
from claude_agent_sdk.types import (
    CanUseTool,
    HookContext,
    HookEvent,
    HookInput,
    HookJSONOutput,
    HookMatcher,
    McpHttpServerConfig,
    McpServerConfig,
    McpSSEServerConfig,
    McpStdioServerConfig,
    PermissionMode,
    SettingSource,
    SystemPromptPreset,
)

from broker.runner_wire import Init
from runner.errors import ConfigError
from runner.settings import RunnerSettings

_PERMISSION_MODES = frozenset(get_args(PermissionMode))
_SETTING_SOURCES = frozenset(get_args(SettingSource))
# What the CLI calls the MCP resource tools (its init message lists these names); the
# config model may add the shorter names too, which is harmless.
_MCP_RESOURCE_TOOLS = ("ListMcpResourcesTool", "ReadMcpResourceTool")
_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_PATH_RULE_AS_EDIT = frozenset({"Write", "NotebookEdit"})


def offline_env(init: Init, settings: RunnerSettings) -> dict[str, str]:
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
    env.update(_str_map(init.config.get("env"), "env"))
    env.update(_str_map(init.env, "init.env"))
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


def build_options(
    init: Init,
    settings: RunnerSettings,
    *,
    resume: str | None,
    stderr: Callable[[str], None],
    can_use_tool: CanUseTool | None = None,
) -> ClaudeAgentOptions:
    """Return the SDK options for this session's config; raise ConfigError when malformed.

    ``can_use_tool`` (the approval gate) is installed only when the config's permissions can
    ask a person; otherwise the CLI refuses what nothing allows, as a headless agent always did.
    """
    cfg = init.config
    if not isinstance(cfg, dict):
        raise ConfigError("config must be an object")
    mcp_servers = _mcp_servers(cfg.get("mcp_servers"), init.mcp_env)
    max_turns = cfg.get("max_turns")
    if max_turns is not None and (
        isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1
    ):
        raise ConfigError(f"max_turns must be a positive integer or null, not {max_turns!r}")
    model = cfg.get("model")
    if model is not None and not isinstance(model, str):
        raise ConfigError(f"model must be a string or null, not {model!r}")
    allowed_tools = _allowed_tools(cfg.get("allowed_tools"), mcp_servers)
    agents = _agents(cfg.get("agents"))
    rules, asks = permission_rules(cfg.get("permissions"))
    return ClaudeAgentOptions(
        system_prompt=_system_prompt(cfg.get("system_prompt")),
        allowed_tools=allowed_tools,
        permission_mode=_permission_mode(cfg.get("permission_mode")),
        hooks=sub_agent_hooks(agents, allowed_tools),
        mcp_servers=mcp_servers,
        agents=agents,
        max_turns=max_turns,
        model=model or None,
        setting_sources=_setting_sources(cfg.get("setting_sources")),
        env=offline_env(init, settings),
        cwd=str(settings.workspace),
        include_partial_messages=True,
        # Sub-agent text and thinking are content blocks too: nothing is dropped.
        forward_subagent_text=True,
        resume=resume,
        stderr=stderr,
        # Claude Code matches the rules itself: passed as its settings (deny > ask > allow).
        settings=json.dumps({"permissions": rules}) if rules else None,
        can_use_tool=can_use_tool if asks else None,
    )


def permission_rules(value: Any) -> tuple[dict[str, list[str]], bool]:
    """The config's ``permissions`` as Claude Code settings rules, and whether a person is asked.

    ``Write(path)`` and ``NotebookEdit(path)`` become ``Edit(path)``: CLI 2.1.327 matches file
    paths only in Read and Edit rules, and its Edit rules cover every file-writing tool.
    """
    if value is None:
        return {}, False
    if not isinstance(value, dict):
        raise ConfigError("permissions must be an object")
    rules: dict[str, list[str]] = {}
    for kind in ("allow", "ask", "deny"):
        listed = [_cli_rule(r) for r in _str_list(value.get(kind), f"permissions.{kind}")]
        if listed:
            rules[kind] = list(dict.fromkeys(listed))
    otherwise = value.get("otherwise", "deny")
    if otherwise not in ("deny", "ask"):
        raise ConfigError(f"permissions.otherwise must be deny or ask, not {otherwise!r}")
    return rules, bool(rules.get("ask")) or otherwise == "ask"


def _cli_rule(rule: str) -> str:
    name, paren, rest = rule.partition("(")
    if paren and name in _PATH_RULE_AS_EDIT:
        return f"Edit({rest}"
    return rule


def sub_agent_hooks(
    agents: Mapping[str, AgentDefinition] | None, allowed_tools: list[str]
) -> dict[HookEvent, list[HookMatcher]] | None:
    """Let each sub-agent use the tools its definition lists, without opening them to the lead.

    ``allowed_tools`` is the lead agent's list (e.g. an orchestrator with only Task and Read);
    a sub-agent's Bash would otherwise need a permission prompt that nobody can answer, and
    be refused. A PreToolUse hook knows which sub-agent type is calling (``agent_type``), so it
    approves exactly the tools that sub-agent's definition names, and nothing for the lead.
    """
    tools_by_agent = {name: set(a.tools or []) for name, a in (agents or {}).items()}
    if not any(tools - set(allowed_tools) for tools in tools_by_agent.values()):
        return None

    async def approve(
        data: HookInput, _tool_use_id: str | None, _context: HookContext
    ) -> HookJSONOutput:
        if data["hook_event_name"] != "PreToolUse" or not data.get("agent_id"):
            return {}
        if data["tool_name"] not in tools_by_agent.get(data.get("agent_type") or "", set()):
            return {}
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "allow",
                "permissionDecisionReason": "listed in the sub-agent's tools",
            }
        }

    return {"PreToolUse": [HookMatcher(matcher=None, hooks=[approve])]}


def _str_map(value: Any, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be an object of strings")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str | int | float | bool):
            raise ConfigError(f"{name}[{key!r}] must be a string")
        out[key] = str(item)
    return out


def _str_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name} must be a list of strings")
    return list(value)


def _system_prompt(value: Any) -> str | SystemPromptPreset:
    if value is None:
        # No prompt configured: Claude Code's own (the SDK would otherwise send an empty one).
        return SystemPromptPreset(type="preset", preset="claude_code")
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("type") == "preset":
        if value.get("preset", "claude_code") != "claude_code":
            raise ConfigError(f"unknown system_prompt preset {value.get('preset')!r}")
        preset = SystemPromptPreset(type="preset", preset="claude_code")
        append = value.get("append")
        if append is not None and not isinstance(append, str):
            raise ConfigError("system_prompt.append must be a string")
        if append:
            preset["append"] = append
        return preset
    raise ConfigError("system_prompt must be a string or {type: 'preset', preset: 'claude_code'}")


def _permission_mode(value: Any) -> PermissionMode | None:
    if value is None:
        return None
    if value not in _PERMISSION_MODES:
        raise ConfigError(
            f"permission_mode must be one of {sorted(_PERMISSION_MODES)}, not {value!r}"
        )
    return cast(PermissionMode, value)


def _setting_sources(value: Any) -> list[SettingSource]:
    # Default [] so host/user settings files never change an agent's behaviour.
    sources = _str_list(value, "setting_sources")
    bad = [s for s in sources if s not in _SETTING_SOURCES]
    if bad:
        raise ConfigError(f"setting_sources: unknown source(s) {bad}")
    return [cast(SettingSource, s) for s in sources]


def _mcp_servers(
    value: Any, mcp_env: Mapping[str, Mapping[str, str]]
) -> dict[str, McpServerConfig]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("mcp_servers must be an object")
    out: dict[str, McpServerConfig] = {}
    for name, spec in value.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"mcp_servers[{name!r}] must be an object")
        kind = spec.get("type") or "stdio"
        if kind == "stdio":
            command = spec.get("command")
            if not isinstance(command, str) or not command:
                raise ConfigError(f"mcp_servers[{name!r}].command must be a non-empty string")
            env = _str_map(spec.get("env"), f"mcp_servers[{name!r}].env")
            # Launch-time credentials win over the preset's placeholders.
            env.update(_str_map(mcp_env.get(name), f"mcp_env[{name!r}]"))
            out[name] = McpStdioServerConfig(
                type="stdio",
                command=command,
                args=_str_list(spec.get("args"), f"mcp_servers[{name!r}].args"),
                env=env,
            )
        elif kind in ("sse", "http"):
            url = spec.get("url")
            if not isinstance(url, str) or not url:
                raise ConfigError(f"mcp_servers[{name!r}].url must be a non-empty string")
            headers = _str_map(spec.get("headers"), f"mcp_servers[{name!r}].headers")
            if kind == "sse":
                out[name] = McpSSEServerConfig(type="sse", url=url, headers=headers)
            else:
                out[name] = McpHttpServerConfig(type="http", url=url, headers=headers)
        else:
            raise ConfigError(f"mcp_servers[{name!r}].type must be stdio, sse or http")
    return out


def _allowed_tools(value: Any, mcp_servers: Mapping[str, McpServerConfig]) -> list[str]:
    tools = _str_list(value, "allowed_tools")
    implied: list[str] = []
    if mcp_servers:
        implied.extend(_MCP_RESOURCE_TOOLS)
        for name in mcp_servers:
            implied.append(f"mcp__{name}__*")
    for tool in implied:
        if tool not in tools:
            tools.append(tool)
    return tools


def _agents(value: Any) -> dict[str, AgentDefinition] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError("agents must be an object")
    out: dict[str, AgentDefinition] = {}
    for name, spec in value.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"agents[{name!r}] must be an object")
        description, prompt = spec.get("description"), spec.get("prompt")
        if not isinstance(description, str) or not isinstance(prompt, str):
            raise ConfigError(f"agents[{name!r}] needs string description and prompt")
        model = spec.get("model")
        if model is not None and not isinstance(model, str):
            raise ConfigError(f"agents[{name!r}].model must be a string")
        tools = spec.get("tools")
        out[name] = AgentDefinition(
            description=description,
            prompt=prompt,
            tools=None if tools is None else _str_list(tools, f"agents[{name!r}].tools"),
            model=model or None,
        )
    return out or None
