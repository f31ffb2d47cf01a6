"""The agent configuration schema: which tools, prompt, MCP servers, sub-agents and resources.

:class:`AgentConfig` is what presets, custom configs and inline launch configs are validated
into; :meth:`AgentConfig.to_wire` is the JSON the worker and the runner receive. Validation is
strict about names (unknown fields, unknown tools and undeclared MCP servers are errors) so a typo
fails at save or launch time with the field named, not silently inside a container.
:func:`field_errors` turns a pydantic ``ValidationError`` into the ``{field, message}`` list the
API returns.
"""

from __future__ import annotations

import difflib
import re
import reprlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from configs.errors import FieldError

# --------------------------------------------------------------------------------------------
# Tool names
# --------------------------------------------------------------------------------------------

#: The Claude Code CLI these names were read from (bundled with claude-agent-sdk 0.2.184).
CLI_VERSION = "2.1.327"

# Canonical built-in tool names of CLI 2.1.327. Source: the CLI's own list of built-in tool names
# (the array that starts "Agent","Artifact","AskUserQuestion","Bash","ClaudeDesign", found with
# `strings .venv/.../claude_agent_sdk/_bundled/claude | grep '"ClaudeDesign","CronCreate"'`),
# plus "DesignSync", which a 2.1.327 session lists in its `system/init` message but that array
# lacks. Not every name is offered in every session (some are feature-gated, Glob/Grep/TodoWrite
# are loaded on demand when allowed), but the CLI recognises all of them in allow rules.
BUILTIN_TOOLS: frozenset[str] = frozenset(
    {
        "Agent",
        "Artifact",
        "AskUserQuestion",
        "Bash",
        "ClaudeDesign",
        "CronCreate",
        "CronDelete",
        "CronList",
        "DesignSync",
        "Edit",
        "EndConversation",
        "EnterPlanMode",
        "EnterWorktree",
        "ExitPlanMode",
        "ExitWorktree",
        "Glob",
        "Grep",
        "ListAgents",
        "ListMcpResourcesTool",
        "LSP",
        "Monitor",
        "NotebookEdit",
        "OfferChromeSetup",
        "PowerShell",
        "Projects",
        "propose_skills",
        "PushNotification",
        "Read",
        "ReadMcpResourceDirTool",
        "ReadMcpResourceTool",
        "ReadNotifications",
        "RemoteTrigger",
        "ReportFindings",
        "ScheduleWakeup",
        "SendFeedback",
        "SendMessage",
        "SendUserFile",
        "SendUserMessage",
        "SetGoal",
        "ShareOnboardingGuide",
        "ShowOnboardingRolePicker",
        "Skill",
        "SubagentHandback",
        "TaskCreate",
        "TaskGet",
        "TaskList",
        "TaskStop",
        "TaskUpdate",
        "TodoWrite",
        "ToolSearch",
        "WaitForMcpServers",
        "WebFetch",
        "WebSearch",
        "Workflow",
        "Write",
    }
)

# Legacy names CLI 2.1.327 still accepts and maps to a canonical one (the object literal right
# after the array above). Configs keep the name they were written with; "Task" is what most
# existing configs use for sub-agent delegation.
TOOL_ALIASES: Mapping[str, str] = {
    "Task": "Agent",
    "KillShell": "TaskStop",
    "KillBash": "TaskStop",
    "ListPeers": "ListAgents",
    "Brief": "SendUserMessage",
    "ListMcpResources": "ListMcpResourcesTool",
    "ReadMcpResource": "ReadMcpResourceTool",
    "ReadMcpResourceDir": "ReadMcpResourceDirTool",
    "ProposeGoal": "SetGoal",
}

# Names of tools earlier CLIs had and 2.1.327 does not: the CLI's set of removed tools
# ("BashOutput", "TaskOutput", ...) plus names that survive only in its legacy permission-rule
# code. Listing one would silently grant nothing, so it is an error with a pointer instead.
REMOVED_TOOLS: Mapping[str, str] = {
    "BashOutput": "it was removed from Claude Code; follow background commands with Monitor",
    "TaskOutput": "it was removed from Claude Code",
    "AgentOutput": "it was removed from Claude Code",
    "MultiEdit": "it was removed from Claude Code; use Edit",
    "NotebookRead": "it was removed from Claude Code; Read reads notebooks",
    "LS": "it was removed from Claude Code; use Glob (or Bash)",
    "SlashCommand": "it was removed from Claude Code; use Skill",
}

#: Every plain tool name an allow rule may start with.
KNOWN_TOOL_NAMES: frozenset[str] = BUILTIN_TOOLS | frozenset(TOOL_ALIASES)

#: Tools added to ``allowed_tools`` whenever a config declares MCP servers.
MCP_RESOURCE_TOOLS: tuple[str, ...] = ("ListMcpResources", "ReadMcpResource")

# A plain tool name, optionally with an allow-rule specifier: "Bash", "Bash(git status:*)".
_TOOL_RULE_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(?:\((.+)\))?$", re.DOTALL)
_MCP_TOOL_PART_RE = re.compile(r"^(?:[A-Za-z0-9_-]+|\*)$")
_MCP_PREFIX = "mcp__"

# --------------------------------------------------------------------------------------------
# Environment variables
# --------------------------------------------------------------------------------------------

#: Variables the platform sets in an agent's container or the runner sets for the CLI. Neither a
#: config's ``env``, an MCP server's ``env`` nor a launch's ``mcp_env`` may set them: they carry
#: the caller's credentials, tell the runner who it is, or keep the container's tooling working.
CORE_ENV_VARS: frozenset[str] = frozenset(
    {
        # credentials and endpoint: supplied per launch, never by a stored config
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "CLAUDE_CODE_OAUTH_TOKEN",
        # the platform's own knobs (seed names kept so old configs fail loudly, not subtly)
        "AGENT_CONFIG_JSON",
        "AGENT_ID",
        "SESSION_ID",
        # set by the SDK when it starts the CLI
        "CLAUDE_CONFIG_DIR",
        "CLAUDE_CODE_ENTRYPOINT",
        "CLAUDE_AGENT_SDK_VERSION",
        # the container's runtime: the runner lives on PYTHONPATH, the tools on PATH
        "HOME",
        "PATH",
        "USER",
        "LOGNAME",
        "SHELL",
        "PWD",
        "PYTHONPATH",
        "PYTHONHOME",
        "VIRTUAL_ENV",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "NODE_OPTIONS",
    }
)
#: Prefixes reserved like :data:`CORE_ENV_VARS` (the platform's ``AGC_*`` settings).
CORE_ENV_PREFIXES: tuple[str, ...] = ("AGC_",)

_ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def is_core_env_var(name: str) -> bool:
    """Whether ``name`` is reserved for the platform (see :data:`CORE_ENV_VARS`)."""
    return name in CORE_ENV_VARS or name.startswith(CORE_ENV_PREFIXES)


# --------------------------------------------------------------------------------------------
# Sizes and limits
# --------------------------------------------------------------------------------------------

CPU_QUOTA_PER_CPU = 100_000  # docker's default cpu_period: quota / period = CPUs
CPU_QUOTA_MIN = 10_000
CPU_QUOTA_MAX = 1_600_000
PIDS_MIN = 32
PIDS_MAX = 65_536
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# The CLI alone peaks at ~220 MiB RSS while starting (measured, 2.1.327); below 512 MiB a
# session would be killed for memory as soon as the agent runs anything.
MEMORY_MIN_BYTES = 512 << 20
MEMORY_MAX_BYTES = 256 << 30
STORAGE_MIN_BYTES = 256 << 20
STORAGE_MAX_BYTES = 4 << 40
# docker-style: "4g", "512m", "1.5G", "2GiB", "1048576" (bytes); units are powers of 1024.
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in a docker-style size (``"4g"``, ``"512m"``); ``ValueError`` if malformed."""
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(text)
    number, unit = match.group(1), (match.group(2) or "").lower()
    return int(float(number) * _UNITS[unit])


def format_size(n: int) -> str:
    """The shortest exact docker-style spelling of ``n`` bytes (``4294967296`` → ``"4g"``)."""
    for unit in ("t", "g", "m", "k"):
        if n and n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]}{unit}"
    return str(n)


# --------------------------------------------------------------------------------------------
# Field validators (each raises PydanticCustomError so the message reaches the user verbatim)
# --------------------------------------------------------------------------------------------

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SERVER_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_AGENT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")
_MODEL_RE = re.compile(r"^\S{1,200}$")
_HEADER_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token


def _fail(kind: str, message: str) -> PydanticCustomError:
    # The message is passed through the context so braces in user input are never formatted.
    return PydanticCustomError(kind, "{message}", {"message": message})


def is_valid_id(config_id: str) -> bool:
    """Whether ``config_id`` is a valid config id (and so a safe file name)."""
    return _ID_RE.fullmatch(config_id) is not None


def _check_id(value: str) -> str:
    if not _ID_RE.fullmatch(value):
        raise _fail(
            "config_id",
            f"{value!r} is not a valid id: use 1-64 lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit",
        )
    return value


def _check_not_blank(value: str) -> str:
    if not value.strip():
        raise _fail("blank", "must not be empty")
    return value


def _version_to_str(value: Any) -> Any:
    # YAML reads `version: 1.0` as a float; accept it as the string the author meant.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _check_version(value: str) -> str:
    if not _VERSION_RE.fullmatch(value):
        raise _fail("version", f"{value!r} is not a version string such as '1.0.0'")
    return value


def _check_model_name(value: str) -> str:
    if not _MODEL_RE.fullmatch(value):
        raise _fail("model", "must be a model alias or id without spaces, such as 'sonnet'")
    return value


def _check_server_name(value: str) -> str:
    if not _SERVER_NAME_RE.fullmatch(value):
        raise _fail(
            "mcp_server_name",
            f"{value!r} is not a valid MCP server name: use letters, digits, '-' and '_'",
        )
    return value


def _check_agent_name(value: str) -> str:
    if not _AGENT_NAME_RE.fullmatch(value):
        raise _fail(
            "agent_name",
            f"{value!r} is not a valid sub-agent name: use 1-64 letters, digits, '-' and '_'",
        )
    return value


def _check_env_name(value: str) -> str:
    if not _ENV_NAME_RE.fullmatch(value):
        raise _fail(
            "env_name",
            f"{value!r} is not a valid variable name: use A-Z, 0-9 and '_', not starting "
            "with a digit",
        )
    if is_core_env_var(value):
        raise _fail(
            "core_env_var",
            f"{value!r} is set by the platform and cannot be overridden",
        )
    return value


def _check_header_name(value: str) -> str:
    if not _HEADER_RE.fullmatch(value):
        raise _fail("header_name", f"{value!r} is not a valid HTTP header name")
    return value


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in value):
        raise _fail("url", f"{value!r} is not an http:// or https:// URL")
    return value


# The MCP server names declared by the config being validated. Tool patterns are validated item
# by item (so an error names e.g. `agents.frontend.tools.2`), but whether `mcp__x__y` is valid
# depends on a sibling field; AgentConfig's wrap validator publishes the names here for the
# duration of its own validation. None means "not validating inside an AgentConfig": then only
# the pattern's syntax is checked.
_DECLARED_MCP_SERVERS: ContextVar[frozenset[str] | None] = ContextVar(
    "agc_declared_mcp_servers", default=None
)


@contextmanager
def _declared_servers(names: frozenset[str] | None) -> Iterator[None]:
    token = _DECLARED_MCP_SERVERS.set(names)
    try:
        yield
    finally:
        _DECLARED_MCP_SERVERS.reset(token)


def canonical_tool(name: str) -> str:
    """The canonical name of a built-in tool or alias (``"Task"`` → ``"Agent"``)."""
    return TOOL_ALIASES.get(name, name)


def tool_problem(tool: str, mcp_servers: Iterable[str] | None = None) -> str | None:
    """Why ``tool`` is not a valid allow rule, or ``None`` if it is.

    Valid: a built-in tool name (or legacy alias), optionally with a rule specifier
    (``Bash(git status:*)``); ``mcp__<server>``, ``mcp__<server>__<tool>`` or
    ``mcp__<server>__*``. With ``mcp_servers`` given, the server must be one of them.
    """
    if not tool or tool != tool.strip():
        return f"{tool!r} is not a tool name (empty or surrounded by spaces)"
    if tool.startswith(_MCP_PREFIX):
        return _mcp_pattern_problem(tool, None if mcp_servers is None else set(mcp_servers))
    match = _TOOL_RULE_RE.fullmatch(tool)
    name = match.group(1) if match else tool.split("(", 1)[0].strip()
    if name in KNOWN_TOOL_NAMES:
        if match:
            return None
        return f"{tool!r} is not a valid allow rule; use Name or Name(rule), e.g. Bash(git diff:*)"
    if name in REMOVED_TOOLS:
        return f"{name!r} is not a tool in Claude Code {CLI_VERSION}: {REMOVED_TOOLS[name]}"
    hint = _close_tools(name)
    return (
        f"unknown tool {name!r}"
        + (f"; did you mean {_or_list(hint)}?" if hint else ".")
        + f" A tool is a Claude Code {CLI_VERSION} built-in (see configs/README.md)"
        " or an MCP pattern mcp__<server>__<tool>"
    )


def _mcp_pattern_problem(tool: str, servers: set[str] | None) -> str | None:
    rest = tool[len(_MCP_PREFIX) :]
    if servers is not None:
        # Server names may themselves contain "__", so match declared names rather than split.
        for server in servers:
            if rest == server:
                return None
            if rest.startswith(server + "__") and _MCP_TOOL_PART_RE.fullmatch(
                rest[len(server) + 2 :]
            ):
                return None
    server, sep, part = rest.partition("__")
    if not _SERVER_NAME_RE.fullmatch(server) or (sep and not _MCP_TOOL_PART_RE.fullmatch(part)):
        return (
            f"{tool!r} is not a valid MCP tool pattern; use mcp__<server>__<tool> "
            "or mcp__<server>__*"
        )
    if servers is None:
        return None
    declared = ", ".join(sorted(servers)) if servers else "none"
    return (
        f"{tool!r} refers to MCP server {server!r}, which is not declared in mcp_servers "
        f"(declared: {declared})"
    )


def _close_tools(name: str) -> list[str]:
    by_lower = {n.lower(): n for n in sorted(KNOWN_TOOL_NAMES)}
    exact = by_lower.get(name.lower())
    if exact:
        return [exact]
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    return [by_lower[c] for c in close]


def _or_list(items: list[str]) -> str:
    quoted = [repr(i) for i in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _check_tool(value: str) -> str:
    problem = tool_problem(value, _DECLARED_MCP_SERVERS.get())
    if problem:
        raise _fail("unknown_tool", problem)
    return value


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


ConfigId = Annotated[str, AfterValidator(_check_id)]
NonBlank = Annotated[str, AfterValidator(_check_not_blank)]
ToolRule = Annotated[str, AfterValidator(_check_tool)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
ServerName = Annotated[str, AfterValidator(_check_server_name)]
AgentName = Annotated[str, AfterValidator(_check_agent_name)]
HeaderName = Annotated[str, AfterValidator(_check_header_name)]
SizeText = Annotated[str, Field(description="docker-style size: '512m', '4g'")]
PermissionMode = Literal["default", "acceptEdits", "plan", "bypassPermissions"]
SettingSource = Literal["user", "project", "local"]
SubAgentModel = Literal["sonnet", "opus", "haiku", "inherit"]


class _Strict(BaseModel):
    # extra="forbid" so a misspelt key is an error rather than a silently ignored setting.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# --------------------------------------------------------------------------------------------
# System prompt
# --------------------------------------------------------------------------------------------


class SystemPromptPreset(_Strict):
    """Claude Code's own system prompt, optionally with text appended."""

    type: Literal["preset"]
    preset: Literal["claude_code"]
    append: str | None = None


# Union tags are written "<...>" because pydantic puts them in error locations;
# field_errors() drops exactly these, and no field or key can be spelt that way.
_TAG_TEXT, _TAG_PRESET = "<text>", "<preset>"


def _prompt_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return _TAG_TEXT
    if isinstance(value, dict | SystemPromptPreset):
        return _TAG_PRESET
    return None


SystemPrompt = Annotated[
    Annotated[NonBlank, Tag(_TAG_TEXT)] | Annotated[SystemPromptPreset, Tag(_TAG_PRESET)],
    Discriminator(
        _prompt_kind,
        custom_error_type="system_prompt",
        custom_error_message=(
            "must be a string or {type: preset, preset: claude_code, append: <optional text>}"
        ),
    ),
]


def _claude_code_preset() -> SystemPromptPreset:
    return SystemPromptPreset(type="preset", preset="claude_code")


# --------------------------------------------------------------------------------------------
# MCP servers
# --------------------------------------------------------------------------------------------


class StdioMcpServer(_Strict):
    """An MCP server the CLI starts as a child process in the agent's container.

    An ``env`` entry with an empty value declares a credential that is supplied at launch
    (``mcp_env``) and never stored.
    """

    type: Literal["stdio"] = "stdio"
    command: NonBlank
    args: list[str] = Field(default_factory=list)
    env: dict[EnvName, str] = Field(default_factory=dict)


class SseMcpServer(_Strict):
    """A remote MCP server reached over server-sent events."""

    type: Literal["sse"]
    url: Annotated[str, AfterValidator(_check_url)]
    headers: dict[HeaderName, str] = Field(default_factory=dict)


class HttpMcpServer(_Strict):
    """A remote MCP server reached over streamable HTTP."""

    type: Literal["http"]
    url: Annotated[str, AfterValidator(_check_url)]
    headers: dict[HeaderName, str] = Field(default_factory=dict)


_MCP_TAGS = {"stdio": "<stdio>", "sse": "<sse>", "http": "<http>"}


def _mcp_kind(value: Any) -> str | None:
    if isinstance(value, StdioMcpServer | SseMcpServer | HttpMcpServer):
        return _MCP_TAGS[value.type]
    if isinstance(value, dict):
        kind = value.get("type")
        if kind is None and "command" in value:
            return _MCP_TAGS["stdio"]  # the SDK's own default for a server with a command
        if isinstance(kind, str):
            return _MCP_TAGS.get(kind)
    return None


McpServer = Annotated[
    Annotated[StdioMcpServer, Tag(_MCP_TAGS["stdio"])]
    | Annotated[SseMcpServer, Tag(_MCP_TAGS["sse"])]
    | Annotated[HttpMcpServer, Tag(_MCP_TAGS["http"])],
    Discriminator(
        _mcp_kind,
        custom_error_type="mcp_server_type",
        custom_error_message=(
            "an MCP server needs type 'stdio' (with command), 'sse' or 'http' (with url)"
        ),
    ),
]

_UNION_TAGS = frozenset({_TAG_TEXT, _TAG_PRESET, *_MCP_TAGS.values()})


# --------------------------------------------------------------------------------------------
# Sub-agents and resources
# --------------------------------------------------------------------------------------------


class SubAgent(_Strict):
    """A sub-agent the main agent can delegate to with the Task (Agent) tool."""

    description: NonBlank = Field(description="When the main agent should use this sub-agent.")
    prompt: NonBlank = Field(description="The sub-agent's system prompt.")
    tools: list[ToolRule] | None = Field(
        None, description="Tools the sub-agent may use; None inherits the main agent's."
    )
    model: SubAgentModel | None = None

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _dedupe(value)


class ResourceLimits(_Strict):
    """Container limits: CPU (docker quota per 100 ms period), memory, workspace size, pids."""

    # The original AgCluster's defaults; the API replaces the ones a config leaves unset with
    # its CONTAINER_* settings (AgentConfig.with_default_limits).
    cpu_quota: int = Field(
        2 * CPU_QUOTA_PER_CPU, strict=True, description="100000 = 1 CPU (docker cpu_quota)."
    )
    memory_limit: SizeText = "4g"
    storage_limit: SizeText = "10g"
    pids_limit: int = Field(256, strict=True)

    @field_validator("cpu_quota")
    @classmethod
    def _cpu_in_range(cls, value: int) -> int:
        if not CPU_QUOTA_MIN <= value <= CPU_QUOTA_MAX:
            raise _fail(
                "cpu_quota",
                f"must be between {CPU_QUOTA_MIN} (0.1 CPU) and {CPU_QUOTA_MAX} "
                f"({CPU_QUOTA_MAX // CPU_QUOTA_PER_CPU} CPUs); 100000 = 1 CPU",
            )
        return value

    @field_validator("pids_limit")
    @classmethod
    def _pids_in_range(cls, value: int) -> int:
        if not PIDS_MIN <= value <= PIDS_MAX:
            raise _fail("pids_limit", f"must be between {PIDS_MIN} and {PIDS_MAX}")
        return value

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, value: str) -> str:
        return _check_size(value, MEMORY_MIN_BYTES, MEMORY_MAX_BYTES)

    @field_validator("storage_limit")
    @classmethod
    def _storage(cls, value: str) -> str:
        return _check_size(value, STORAGE_MIN_BYTES, STORAGE_MAX_BYTES)

    @property
    def cpus(self) -> float:
        """CPUs as a float (``cpu_quota / 100000``), e.g. for docker's ``nano_cpus``."""
        return self.cpu_quota / CPU_QUOTA_PER_CPU

    @property
    def memory_bytes(self) -> int:
        return parse_size(self.memory_limit)

    @property
    def storage_bytes(self) -> int:
        return parse_size(self.storage_limit)


# --------------------------------------------------------------------------------------------
# Permission rules (allow / ask / deny) and a person in the loop
# --------------------------------------------------------------------------------------------

# Tools whose rule specifier is a file path (gitignore-style, as Claude Code reads it).
_PATH_RULE_TOOLS = frozenset({"Read", "Edit", "Write", "NotebookEdit"})


def _check_permission_rule(value: str) -> str:
    problem = tool_problem(value, _DECLARED_MCP_SERVERS.get())
    if problem:
        problem = problem.replace("allow rule", "permission rule")
        # The error names the rule as written, not only the tool inside it.
        raise _fail("permission_rule", problem if value in problem else f"{value!r}: {problem}")
    name, _, spec = value.partition("(")
    if name in _PATH_RULE_TOOLS and spec.startswith("/") and not spec.startswith("//"):
        # Claude Code reads one leading "/" as relative to its settings, not the filesystem
        # root: such a rule silently matches nothing, which for a deny rule is dangerous.
        path = spec[:-1]
        raise _fail(
            "permission_rule",
            f"{value!r}: a path starting with one '/' is not absolute in Claude Code rules; "
            f"write '{name}(/{path})' for the absolute path {path!r}, or a path relative to "
            "the workspace such as 'secrets/**'",
        )
    return value


PermissionRule = Annotated[str, AfterValidator(_check_permission_rule)]


class Permissions(_Strict):
    """Which tool calls run, which a person approves first, and which are refused.

    Rules are Claude Code's own (``Bash(git push:*)``, ``Edit(/workspace/secrets/**)``,
    ``mcp__github__create_issue``) and are matched by the CLI itself: deny beats ask beats
    allow, and ``ask`` applies even under ``bypassPermissions``.
    """

    allow: list[PermissionRule] = Field(
        default_factory=list, description="Calls that run without asking (added to allowed_tools)."
    )
    ask: list[PermissionRule] = Field(
        default_factory=list, description="Calls a person must approve over the API first."
    )
    deny: list[PermissionRule] = Field(
        default_factory=list, description="Calls that are always refused."
    )
    otherwise: Literal["deny", "ask"] = Field(
        "deny",
        description=(
            "A call Claude Code would have to ask about that no rule or mode allows (an "
            "unlisted tool, a path outside the workspace): refused, or put to a person."
        ),
    )

    @field_validator("allow", "ask", "deny")
    @classmethod
    def _unique_rules(cls, value: list[str]) -> list[str]:
        return _dedupe(value)

    @model_validator(mode="after")
    def _one_list_per_rule(self) -> Self:
        seen: dict[str, str] = {}
        for kind in ("deny", "ask", "allow"):
            for rule in getattr(self, kind):
                if rule in seen:
                    raise _fail(
                        "permission_rule",
                        f"rule {rule!r} is in both {seen[rule]} and {kind}; keep it in one list",
                    )
                seen[rule] = kind
        return self

    @property
    def asks(self) -> bool:
        """Whether any call can need a person's answer (so the session takes approvals)."""
        return bool(self.ask) or self.otherwise == "ask"


# --------------------------------------------------------------------------------------------
# Network egress
# --------------------------------------------------------------------------------------------

_DOMAIN_RE = re.compile(
    r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(:[0-9]{1,5})?"
)


def _check_domain(value: str) -> str:
    domain = value.strip().lower().rstrip(".")
    if not _DOMAIN_RE.fullmatch(domain) or len(domain) > 260:
        raise _fail(
            "domain",
            f"{value!r} is not a domain pattern: use example.com, *.example.com or host:port",
        )
    return domain


DomainPattern = Annotated[str, AfterValidator(_check_domain)]


class Egress(_Strict):
    """Where the agent's tools may connect; enforced outside the container by the egress proxy.

    ``none``: nothing but the model (no remote MCP servers either); ``model`` (default): the
    model and the config's own remote MCP servers; ``allowlist``: also ``domains``; ``open``:
    any public host on ports 80/443. No policy reaches a private, loopback or link-local address.
    """

    policy: Literal["none", "model", "allowlist", "open"] = Field(
        "model", description="none, model (default), allowlist or open."
    )
    domains: list[DomainPattern] = Field(
        default_factory=list,
        description="For allowlist: example.com, *.example.com (sub-domains), host:port.",
    )

    @model_validator(mode="before")
    @classmethod
    def _policy_name_alone(cls, data: Any) -> Any:
        return {"policy": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _domains_with_allowlist(self) -> Self:
        if self.policy == "allowlist" and not self.domains:
            raise _fail("egress", "an allowlist needs at least one domain")
        if self.policy != "allowlist" and self.domains:
            raise _fail("egress", f"domains apply to the allowlist policy, not {self.policy!r}")
        self.domains = _dedupe(self.domains)
        return self


def _check_size(value: str, low: int, high: int) -> str:
    try:
        n = parse_size(value)
    except ValueError:
        raise _fail(
            "size", f"{value!r} is not a size: use a number with k, m, g or t, e.g. '512m', '4g'"
        ) from None
    if not low <= n <= high:
        raise _fail("size", f"must be between {format_size(low)} and {format_size(high)}")
    # Normalised so stored configs and docker see one spelling ("4GB" → "4g").
    match = _SIZE_RE.fullmatch(value.strip())
    assert match is not None  # parse_size accepted it
    return f"{match.group(1)}{(match.group(2) or '').lower()}"


# --------------------------------------------------------------------------------------------
# The agent configuration
# --------------------------------------------------------------------------------------------


class AgentConfig(_Strict):
    """One agent configuration: a preset, a stored custom config or an inline launch config."""

    id: ConfigId
    name: Annotated[NonBlank, Field(max_length=200)]
    description: str = ""
    version: Annotated[str, BeforeValidator(_version_to_str), AfterValidator(_check_version)] = (
        "1.0.0"
    )
    system_prompt: SystemPrompt = Field(default_factory=_claude_code_preset)
    allowed_tools: list[ToolRule] = Field(default_factory=list)
    permission_mode: PermissionMode = "acceptEdits"
    mcp_servers: dict[ServerName, McpServer] = Field(default_factory=dict)
    agents: dict[AgentName, SubAgent] = Field(default_factory=dict)
    resource_limits: ResourceLimits = Field(default_factory=ResourceLimits)
    max_turns: int | None = Field(None, strict=True, ge=1)
    model: Annotated[str, AfterValidator(_check_model_name)] | None = None
    env: dict[EnvName, str] = Field(default_factory=dict)
    setting_sources: list[SettingSource] | None = None
    permissions: Permissions = Field(default_factory=Permissions)
    egress: Egress = Field(default_factory=Egress)

    @model_validator(mode="wrap")
    @classmethod
    def _with_declared_servers(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        with _declared_servers(_server_names(data)):
            return handler(data)

    @field_validator("allowed_tools")
    @classmethod
    def _unique_tools(cls, value: list[str]) -> list[str]:
        return _dedupe(value)

    @model_validator(mode="after")
    def _add_mcp_tools(self) -> Self:
        # An agent with MCP servers but without these rules would be asked for permission on
        # every MCP call, which a headless session cannot answer; so declaring a server allows
        # its tools. Idempotent: a config that went through here once is unchanged the next time.
        if not self.mcp_servers:
            return self
        present = set(self.allowed_tools)
        canonical = {canonical_tool(t) for t in self.allowed_tools}
        extra = [t for t in MCP_RESOURCE_TOOLS if canonical_tool(t) not in canonical]
        for server in self.mcp_servers:
            if f"mcp__{server}__*" not in present and f"mcp__{server}" not in present:
                extra.append(f"mcp__{server}__*")
        if extra:
            self.allowed_tools = [*self.allowed_tools, *extra]
        return self

    # -- helpers --------------------------------------------------------------------------

    def declared_mcp_env(self, server: str) -> set[str]:
        """Names of the variables MCP server ``server`` declares in its ``env``.

        Empty for sse/http servers. ``KeyError`` if the config has no such server.
        """
        spec = self.mcp_servers[server]
        return set(spec.env) if isinstance(spec, StdioMcpServer) else set()

    def mcp_credentials(self) -> dict[str, list[str]]:
        """Per stdio server, the variables declared with an empty value: supplied at launch."""
        out: dict[str, list[str]] = {}
        for name, spec in self.mcp_servers.items():
            if isinstance(spec, StdioMcpServer):
                needed = sorted(k for k, v in spec.env.items() if v == "")
                if needed:
                    out[name] = needed
        return out

    def resolved_mcp_servers(
        self, mcp_env: Mapping[str, Mapping[str, str]] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The MCP servers as the SDK's ``mcp_servers`` dicts, with launch credentials filled in.

        ``mcp_env[server][VAR]`` overrides the config's value for a stdio server. Callers
        validate ``mcp_env`` first (the API rejects core and undeclared names); this only merges.
        """
        supplied = mcp_env or {}
        out: dict[str, dict[str, Any]] = {}
        for name, spec in self.mcp_servers.items():
            data = spec.model_dump(mode="json")
            if isinstance(spec, StdioMcpServer):
                data["env"] = {**spec.env, **supplied.get(name, {})}
            out[name] = data
        return out

    def summary(self) -> dict[str, Any]:
        """The short form used in listings: names and limits, no prompts."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "allowed_tools": list(self.allowed_tools),
            "permission_mode": self.permission_mode,
            "model": self.model,
            "has_mcp_servers": bool(self.mcp_servers),
            "has_sub_agents": bool(self.agents),
            "mcp_servers": list(self.mcp_servers),
            "sub_agents": list(self.agents),
            "resource_limits": self.resource_limits.model_dump(mode="json"),
            "mcp_credentials": self.mcp_credentials(),
            "asks_approval": self.permissions.asks,
            "egress": self.egress.model_dump(mode="json"),
        }

    def with_default_limits(
        self, *, cpu_quota: int, memory_limit: str, storage_limit: str
    ) -> AgentConfig:
        """This config with the given limits wherever its ``resource_limits`` set none."""
        limits = self.resource_limits
        given = limits.model_fields_set
        defaults = {
            "cpu_quota": cpu_quota,
            "memory_limit": memory_limit,
            "storage_limit": storage_limit,
        }
        fill = {k: v for k, v in defaults.items() if k not in given}
        if not fill:
            return self
        merged = ResourceLimits.model_validate(
            {**limits.model_dump(include=given), **fill, "pids_limit": limits.pids_limit}
        )
        return self.model_copy(update={"resource_limits": merged})

    def to_wire(self) -> dict[str, Any]:
        """The JSON-able dict the worker and the runner receive (``Launch.config``).

        Unset optional fields (``None``) are left out, so the runner can pass values straight
        to the SDK (``agents[x]`` maps onto ``AgentDefinition``, ``system_prompt`` onto the SDK's
        preset dict). :meth:`from_wire` reads it back.
        """
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> AgentConfig:
        """Validate a dict made by :meth:`to_wire` (or any config dict) back into a config."""
        return cls.model_validate(data)


def _server_names(data: Any) -> frozenset[str] | None:
    if isinstance(data, AgentConfig):
        return frozenset(data.mcp_servers)
    if isinstance(data, Mapping):
        servers = data.get("mcp_servers")
        if servers is None:
            return frozenset()
        if isinstance(servers, Mapping):
            return frozenset(str(k) for k in servers)
    return None  # malformed: mcp_servers reports its own error, tool patterns get syntax checks


# --------------------------------------------------------------------------------------------
# Errors for people
# --------------------------------------------------------------------------------------------

_MODELS: tuple[type[BaseModel], ...] = (
    AgentConfig,
    SystemPromptPreset,
    StdioMcpServer,
    SseMcpServer,
    HttpMcpServer,
    SubAgent,
    ResourceLimits,
    Permissions,
)
_FIELD_NAMES: tuple[str, ...] = tuple(sorted({f for m in _MODELS for f in m.model_fields}))


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Every problem in ``exc`` as ``{"field": "allowed_tools.2", "message": ...}``.

    ``field`` is the dotted path into the config as the user wrote it (union tags and pydantic's
    internal location parts removed); ``""`` means the config as a whole.
    """
    out: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if p not in _UNION_TAGS and p != "[key]"]
        field = ".".join(str(p) for p in loc)
        message = _message(err["type"], err["msg"], loc, err.get("input"))
        if (field, message) not in seen:
            seen.add((field, message))
            out.append({"field": field, "message": message})
    return out


def _message(kind: str, msg: str, loc: list[int | str], value: Any) -> str:
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else "?"
        close = difflib.get_close_matches(name, _FIELD_NAMES, n=1, cutoff=0.7)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown field {name!r}{hint}"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        return f"{msg}, not {_short_repr(value)}"
    return msg.removeprefix("Value error, ")


_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60


def _short_repr(value: Any) -> str:
    # Bounded: the input may be a large (or YAML-alias-multiplied) structure.
    return _repr.repr(value)
