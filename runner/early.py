"""Start the Claude Code CLI while the runner imports the SDK: a cold launch's two slow parts at once.

On a cold launch the worker sends ``init`` right after the container starts, while the runner
is still importing ``claude_agent_sdk`` (which eagerly imports ``mcp``: ~0.3-0.8 s on 2
cores), and the CLI then needs ~0.25 s to start before it answers the SDK's ``initialize``.
Both are CPU-bound and independent, so ``python -m runner`` reads the first command here, from
modules that do not import the SDK, and when it is an ``init`` (or a pool slot's ``prestart``)
it starts the CLI at once, with the command line and environment the SDK would give it. The
SDK imports on one core while the CLI starts on the other.

The session adopts that process only if the SDK, once imported, builds exactly the same
command line and environment (``AgentSession``; :class:`runner.transport.StartedProcessTransport`
then speaks to it); otherwise the process is killed and the SDK starts its own, as before. So
a difference between this module and the SDK costs time, never behaviour. Not covered here (the
SDK path starts those): a config with MCP servers (their configuration file and forwarders),
``resume``, and a first line that is not an init.

Same boundary as the SDK's start: the CLI runs as the agent's uid through runner/bin/agent-cli,
its model and egress URLs are this runner's forwarders (their listening sockets are made here
and served once the event loop runs; a connection waits in the backlog until then), and the
session's token never reaches its environment.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from broker.runner_wire import Init, Prestart, decode_command
from broker.sandbox_wire import GATEWAY_SOCKET, ROUTE_EGRESS, ROUTE_MODEL
from configs.model import AgentConfig
from runner.cli_config import (
    agent_config,
    allowed_tools,
    offline_env,
    permission_rules,
    prepare_dirs,
)
from runner.forwarder import listen, url_of
from runner.sandbox import AGENT_CLI, as_agent, bundled_cli, link_env
from runner.settings import RunnerSettings

# How long start-up waits for the first command before importing the SDK without a CLI
# started: a cold launch's init is there within milliseconds of the process starting (the
# worker sends it as soon as the container started); a re-attaching worker sends ``attach``.
FIRST_COMMAND_WAIT = 0.3
_READ_CHUNK = 1 << 16


@dataclass
class EarlyCli:
    """A CLI process started for ``session_id`` before the SDK was imported."""

    session_id: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    process: subprocess.Popen[bytes]
    # The forwarders' listening sockets, by route (runner.sandbox.SandboxLink serves them).
    listeners: dict[str, socket.socket] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)

    def discard(self) -> None:
        """Kill the process and close the sockets (it was not adopted)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        for sock in self.listeners.values():
            sock.close()
        self.listeners.clear()


@dataclass
class StartUp:
    """What start-up did before the SDK was imported, for the runner to carry on from."""

    # Bytes read from stdin already (the first command, maybe more), and whether it ended.
    stdin: bytes = b""
    eof: bool = False
    cli: EarlyCli | None = None
    # What happened, logged once logging is configured.
    note: str = ""


def begin(settings: RunnerSettings, fd: int = 0, wait: float = FIRST_COMMAND_WAIT) -> StartUp:
    """Read the first command from ``fd`` (up to ``wait`` seconds); start its CLI if it can."""
    t0 = time.monotonic()
    out = _begin(settings, fd, wait)
    # Since the interpreter started: what a cold launch pays before the CLI starts.
    now = time.monotonic()
    since, here = round(now - _process_start(), 3), round(now - t0, 3)
    out.note += f" ({since} s after the process started, {here} s here)"
    return out


def _process_start() -> float:
    """This process's start on the monotonic clock (Linux: /proc/self/stat, in clock ticks)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.monotonic()


def _begin(settings: RunnerSettings, fd: int, wait: float) -> StartUp:
    data, eof = _first_line(fd, wait)
    out = StartUp(stdin=data, eof=eof)
    line = data.split(b"\n", 1)[0] if b"\n" in data else b""
    if not line:
        out.note = "no command yet: the CLI starts once the SDK is imported"
        return out
    try:
        command = decode_command(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        out.note = "the first command does not decode: the runner reports it"
        return out
    prestart = isinstance(command, Prestart)
    if isinstance(command, Prestart):
        command = Init(
            session_id=command.session_id,
            config=command.config,
            env=command.env,
            worker_id=command.worker_id,
        )
    if not isinstance(command, Init):
        out.note = f"the first command is {type(command).__name__}: no CLI started early"
        return out
    try:
        out.cli = start(command, settings, prestart=prestart)
    except Exception as exc:
        # The session reports a bad config or a CLI that cannot start, with its own words.
        out.note = f"CLI not started early: {type(exc).__name__}: {exc}"
        return out
    if out.cli is None:
        out.note = "CLI not started early: the SDK starts this config's CLI"
    else:
        out.note = f"CLI started early (pid {out.cli.process.pid})"
    return out


@dataclass
class Plan:
    """How the SDK will start the CLI for an init: command line, environment, directory."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    # Sockets listening for the forwarders whose URLs ``env`` holds, by route.
    listeners: dict[str, socket.socket] = field(default_factory=dict)


def plan(init: Init, settings: RunnerSettings, *, prestart: bool = False) -> Plan | None:
    """How the SDK will start the CLI for ``init``; None for what only the SDK does.

    ``prestart``: ``init`` stands for a pool slot's ``prestart`` (no token yet). Mirrors
    runner.options.build_options, runner.sandbox.confine and the SDK's transport.
    """
    cfg = agent_config(init.config)
    if init.resume or cfg.mcp_servers:
        return None
    env = offline_env(init, settings, cfg)
    listeners: dict[str, socket.socket] = {}
    try:
        if has_link(init, settings, prestart=prestart):
            listeners = {ROUTE_MODEL: listen(), ROUTE_EGRESS: listen()}
            env.pop("ANTHROPIC_AUTH_TOKEN", None)
            env.update(link_env(url_of(listeners[ROUTE_MODEL]), url_of(listeners[ROUTE_EGRESS])))
        cli = bundled_cli()
        if settings.agent_uid is not None:
            env.update(as_agent(settings, cli))
            cli = str(AGENT_CLI)
        cwd = str(settings.workspace)
        return Plan(command_line(cli, cfg), sdk_process_env(env, cwd), cwd, listeners)
    except BaseException:
        for sock in listeners.values():
            sock.close()
        raise


def start(init: Init, settings: RunnerSettings, *, prestart: bool = False) -> EarlyCli | None:
    """Start the CLI as the SDK will start it for ``init``; None for what only the SDK does."""
    how = plan(init, settings, prestart=prestart)
    if how is None:
        return None
    try:
        if settings.agent_uid is None:
            # As the agent's uid, runner/bin/agent-cli makes them (as runner.session does).
            prepare_dirs(how.env)
        process = subprocess.Popen(  # argv as the SDK builds it, no shell
            how.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=how.cwd or None,
            env=how.env,
        )
    except BaseException:
        for sock in how.listeners.values():
            sock.close()
        raise
    return EarlyCli(init.session_id, how.argv, how.env, how.cwd, process, how.listeners)


def has_link(init: Init, settings: RunnerSettings, *, prestart: bool) -> bool:
    """Whether the session will have a sandbox link, as runner.sandbox.SandboxLink.for_init
    and for_prestart decide: the worker's sockets are mounted, and a token came (an init)."""
    mounted = (settings.sandbox_dir / GATEWAY_SOCKET).exists()
    return mounted and (prestart or bool(init.gateway_token))


def command_line(cli: str, cfg: AgentConfig) -> list[str]:
    """The SDK's command line (SubprocessCLITransport._build_command) for the options
    runner.options.build_options makes of ``cfg`` when it has no MCP servers and no resume."""
    argv = [cli, "--output-format", "stream-json", "--verbose"]
    prompt = cfg.system_prompt
    if isinstance(prompt, str):
        argv += ["--system-prompt", prompt]
    elif prompt.append:
        argv += ["--append-system-prompt", prompt.append]
    tools = allowed_tools(cfg.allowed_tools, [])
    if tools:
        argv += ["--allowedTools", ",".join(tools)]
    if cfg.max_turns:
        argv += ["--max-turns", str(cfg.max_turns)]
    if cfg.model:
        argv += ["--model", cfg.model]
    rules, asks = permission_rules(cfg.permissions)
    if asks:
        # can_use_tool is set: the SDK routes permission prompts over stdio.
        argv += ["--permission-prompt-tool", "stdio"]
    if cfg.permission_mode:
        argv += ["--permission-mode", cfg.permission_mode]
    if rules:
        argv += ["--settings", json.dumps({"permissions": rules})]
    argv.append("--include-partial-messages")
    argv.append(f"--setting-sources={','.join(cfg.setting_sources or [])}")
    argv += ["--input-format", "stream-json"]
    return argv


def sdk_process_env(env: dict[str, str], cwd: str) -> dict[str, str]:
    """The environment SubprocessCLITransport.connect gives the CLI for ``options.env``."""
    out = {k: v for k, v in os.environ.items() if k != "CLAUDECODE"}
    out["CLAUDE_CODE_ENTRYPOINT"] = "sdk-py"
    out.update(env)
    out["CLAUDE_AGENT_SDK_VERSION"] = sdk_version()
    # The SDK drops an inherited derived app label and derives none for a CLI that is not
    # its bundled one (ours is runner/bin/agent-cli) or is older than it needs.
    out.pop("CLAUDE_AGENT_SDK_DERIVED_CLIENT_APP", None)
    if not any(k.upper() == "CLAUDE_CODE_SDK_READS_SESSION_STATE" for k in out):
        out["CLAUDE_CODE_SDK_READS_SESSION_STATE"] = "1"
    if cwd:
        out["PWD"] = cwd
    return out


def sdk_version() -> str:
    """The installed SDK's version, read from its _version.py without importing the package."""
    from importlib.util import find_spec

    spec = find_spec("claude_agent_sdk")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        text = (Path(folder) / "_version.py").read_text()
        for line in text.splitlines():
            if line.startswith("__version__"):
                return line.split("=", 1)[1].strip().strip("\"'")
    raise ValueError("cannot read the SDK's version")


def _first_line(fd: int, wait: float) -> tuple[bytes, bool]:
    """Bytes read from ``fd`` until a newline, EOF or ``wait`` seconds; and whether EOF."""
    data = bytearray()
    deadline = time.monotonic() + wait
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            ready, _, _ = select.select([fd], [], [], left)
        except InterruptedError:
            continue
        except (OSError, ValueError):
            break  # not a selectable descriptor: the runner's reader takes it as it is
        if not ready:
            break
        try:
            chunk = os.read(fd, _READ_CHUNK)
        except InterruptedError:
            continue
        except OSError:
            break
        if not chunk:
            return bytes(data), True
        data += chunk
    return bytes(data), False
