"""The sandbox boundary, tested as an attacker would: the scripted model makes a real agent in a
real container run tests/e2e/sandbox_attack.py, which tries every way out it knows.

Each attempt is refused; the session keeps working; another session sees nothing of it; the
session's key is nowhere in the container (its filesystem diff, its volumes and tmpfs, every
process's environment and argv); usage and cost are the gateway's, exactly the model's numbers.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.modelserver.script import step, text, tool_use
from tests.modelserver.server import ModelServer
from tests.support.sse import iter_sse
from tests.support.stack import Stack, running_stack
from workers.sandbox.pricing import ModelUsage, cost_usd

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

ATTACK = (Path(__file__).parent / "sandbox_attack.py").read_text()
ALLOWED, DENIED = "allowed.example.test", "denied.example.test"
PLACEHOLDER = "agc-sandbox-gateway-holds-the-key"


def new_key() -> str:
    return f"sk-ant-api03-e2e-{uuid.uuid4().hex}{uuid.uuid4().hex}"


def attacker_config(cid: str) -> dict[str, Any]:
    return {
        "id": cid,
        "name": "Attacker",
        "allowed_tools": ["Bash", "Write", "Read"],
        "permission_mode": "bypassPermissions",
        "system_prompt": "You are scripted.",
        "egress": {"policy": "allowlist", "domains": [ALLOWED]},
    }


@pytest.fixture(scope="module")
def sandbox_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    model = ModelServer("127.0.0.1", 0).start()
    extra = {
        "AGC_EGRESS_TEST_HOSTS": f"{ALLOWED}=127.0.0.1:{model.port}",
        # A launch lost while Redis is away answers 504 sooner (the failure-path test).
        "AGC_LAUNCH_TIMEOUT": "40",
    }
    try:
        with running_stack(tmp_path_factory.mktemp("sbx"), model.base_url, extra_env=extra) as s:
            s.model = model  # type: ignore[attr-defined]
            yield s
    finally:
        model.stop()


def launch(stack: Stack, api_key: str) -> str:
    with stack.client() as c:
        r = c.post(
            "/api/agents/launch",
            json={"api_key": api_key, "config": attacker_config(f"atk-{uuid.uuid4().hex[:6]}")},
        )
    assert r.status_code == 200, f"{r.status_code} {r.text}\n{stack.all_logs()}"
    return str(r.json()["session_id"])


def chat(stack: Stack, sid: str, api_key: str, message: str) -> dict[str, Any]:
    with stack.client(api_key) as c:
        r = c.post(f"/api/agents/{sid}/chat", json={"message": message})
    assert r.status_code == 200, r.text
    return dict(r.json())


def run_as_both(container: Any, cmd: str) -> bytes:
    """Run ``cmd`` as the runner's uid and as the agent's: between them they can read every
    file and process of the container (no-new-privileges rules out a privileged exec, and
    neither uid alone may read the other's /proc entries or private directories)."""
    out = b""
    for user in ("0", "1000"):
        code, chunk = container.exec_run(["sh", "-c", cmd], user=user)
        assert code == 0, chunk[-2000:]
        out += bytes(chunk)
    return out


def key_anywhere_in(container: Any, key: str, workspace: Path) -> list[str]:
    """Every place of the container where ``key`` is found (empty when nowhere)."""
    needle = key.encode()
    found: list[str] = []
    for change in container.diff() or []:
        path = change["Path"]
        if change["Kind"] == 2:  # deleted
            continue
        try:
            stream, _ = container.get_archive(path)
        except docker.errors.APIError:
            continue
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            for member in tar.getmembers():
                f = tar.extractfile(member) if member.isfile() else None
                if f is not None and needle in f.read():
                    found.append(f"diff:{path}/{member.name}")
    # tmpfs and volumes are not in the diff: read them as they are
    for mount in ("/tmp", "/home/agent", "/workspace", "/run/agc"):
        if needle in run_as_both(container, f"tar -C {mount} -cf - . 2>/dev/null || true"):
            found.append(f"mount:{mount}")
    for p in workspace.rglob("*"):
        if p.is_file() and needle in p.read_bytes():
            found.append(f"volume:{p}")
    procs = run_as_both(
        container,
        "for p in /proc/[0-9]*; do cat $p/environ $p/cmdline 2>/dev/null; echo; done",
    )
    # Both uids together read every process (the runner's environment among them).
    assert b"AGC_AGENT_UID=1000" in procs and b"-m\x00runner" in procs
    if needle in procs:
        found.append("proc environ/cmdline")
    return found


def workspace_of(sid: str) -> Path:
    """Host path of the session's workspace (a volume, or the worker's fixed-size filesystem)."""
    container = docker.from_env().containers.get(f"agc-{sid}")
    [mount] = [m for m in container.attrs["Mounts"] if m["Destination"] == "/workspace"]
    return Path(mount["Source"])


def egress_denials(
    stack: Stack, sid: str, api_key: str, timeout: float = 30
) -> list[dict[str, Any]]:
    """Read the session's event stream until its egress.denied events (two) have arrived."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with (
        stack.client(api_key, timeout=timeout) as c,
        c.stream("GET", f"/api/agents/{sid}/events", headers={"Accept": "text/event-stream"}) as r,
    ):
        for ev in iter_sse(r):
            if ev.event == "egress.denied":
                found.append(ev.data)
            if len(found) >= 2 or time.monotonic() > deadline:
                break
    return found


def test_an_agent_cannot_get_out(sandbox_stack: Stack) -> None:
    stack = sandbox_stack
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    key_a, key_b = new_key(), new_key()
    sid_a = launch(stack, key_a)
    sid_b = launch(stack, key_b)
    assert stack.nats is not None
    host_ports = [int(stack.nats.extra["port"]), stack.port]
    usage = {
        "input_tokens": 2345,
        "output_tokens": 67,
        "cache_creation_input_tokens": 89,
        "cache_read_input_tokens": 10,
    }
    marker = model.add_script(
        f"attack-{sid_a}",
        [
            step(
                tool_use("Write", {"file_path": "/workspace/attack.py", "content": ATTACK}),
                usage=usage,
            ),
            step(
                tool_use(
                    "Bash",
                    {
                        "command": "python3 /workspace/attack.py '"
                        + json.dumps(
                            {"host_ports": host_ports, "allowed": ALLOWED, "denied": DENIED}
                        )
                        + "'",
                        "timeout": 120000,
                    },
                ),
                usage=usage,
            ),
            step(text("attack done"), usage=usage),
        ],
    )
    before = len(model.model_requests())
    done = chat(stack, sid_a, key_a, f"attack {marker}")
    assert done["text"].endswith("attack done"), done
    [call] = [t for t in done["tool_calls"] if t["name"] == "Bash"]
    output = call["output"]
    report = json.loads(output.split("ATTACK-REPORT ", 1)[1].splitlines()[0])

    # the agent is uid 1000 with no capabilities and cannot become root
    assert (report["uid"], report["euid"], report["cap_eff"]) == (1000, 1000, "0000000000000000")
    assert report["setuid0"].startswith("PermissionError")
    # it holds no key: a placeholder; the runner's environment, memory and stdio are closed
    assert report["env_key"] == PLACEHOLDER
    assert report["runner_pids"], report
    for pid in ["1", *report["runner_pids"]]:
        assert pid not in report["environ_readable"]
    assert all(v.startswith("PermissionError") for v in report["runner_access"].values()), report
    # the mounted sockets are the runner's alone; there is no Docker socket
    assert report["sockets"]["/run/agc/gw.sock"].startswith("PermissionError")
    assert report["sockets"]["/run/agc (list)"].startswith("PermissionError")
    assert report["sockets"]["/var/run/docker.sock"].startswith("FileNotFoundError")
    # no network but its own loopback; no DNS; the host's ports are not there
    assert report["interfaces"] == ["lo"]
    assert report["dns"].startswith("gaierror")
    assert all(not v.startswith("CONNECTED") for v in report["host_ports"].values()), report
    # the only listeners on its loopback not its own are the runner's two forwarders
    listeners = {int(p): uid for p, uid in report["listeners"].items()}
    assert set(report["loopback_open"]) <= set(listeners), report
    assert sorted(p for p, uid in listeners.items() if uid != 1000) == report["forwarder_ports"]
    # egress: the allowlisted name works, everything else is refused with a reason
    egress = report["egress"]
    assert egress["allowed_http"].startswith("200:"), egress
    assert egress["denied_http"].startswith("HTTPError:403:"), egress
    assert "egress denied" in egress["denied_http"]
    assert "403" in egress["denied_https"], egress
    assert egress["metadata"].startswith("HTTPError:403:"), egress
    assert not egress["host_loopback"].startswith("200"), egress

    # nothing the agent read holds the key; the key is nowhere in the container
    ws = workspace_of(sid_a)
    dump = (ws / "attack-dump.bin").read_bytes()
    assert len(dump) > 1000 and PLACEHOLDER.encode() in dump
    assert key_a.encode() not in dump and key_b.encode() not in dump
    container_a = docker.from_env().containers.get(f"agc-{sid_a}")
    assert key_anywhere_in(container_a, key_a, ws) == []

    # the refusals were events of the session (and only of that session)
    denials = egress_denials(stack, sid_a, key_a)
    assert {(d["host"], d["policy"]) for d in denials} == {(DENIED, "allowlist")}
    # the model saw the real key, never the placeholder; usage is the model's own numbers
    seen = model.model_requests()[before:]
    assert seen and all(r.headers.get("x-api-key") == key_a for r in seen)
    expected = ModelUsage(**usage)
    steps = 3
    with stack.client(key_a) as c:
        info = c.get(f"/api/agents/sessions/{sid_a}").json()
    assert info["usage"]["input_tokens"] == expected.input_tokens * steps
    assert info["usage"]["output_tokens"] == expected.output_tokens * steps
    total_cost = cost_usd(seen[0].body.get("model", ""), expected) * steps
    assert info["cost_usd"] == pytest.approx(total_cost, abs=1e-6)
    assert done["usage"]["input_tokens"] == expected.input_tokens * steps
    assert done["cost_usd"] == pytest.approx(total_cost, abs=1e-9)

    # the session still works, and so does the other one, which saw none of this
    assert chat(stack, sid_a, key_a, "still there?")["text"] == "Echo: still there?"
    assert chat(stack, sid_b, key_b, "and you?")["text"] == "Echo: and you?"
    with stack.client(key_b) as c:
        hist = c.get(f"/api/agents/{sid_b}/history").json()
    assert "attack" not in json.dumps(hist)
    with stack.client(key_b) as c:
        assert c.get(f"/api/agents/sessions/{sid_a}").status_code in (403, 404)
    stack.delete(sid_a, key_a)
    stack.delete(sid_b, key_b)


def test_a_huge_event_arrives_cut_and_the_session_goes_on(sandbox_stack: Stack) -> None:
    stack = sandbox_stack
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    api_key = new_key()
    sid = launch(stack, api_key)
    # Just under the SDK's own 1 MiB message limit, over the runner's 900 KiB event limit.
    marker = model.add_script(f"huge-{sid}", [[text("z" * 960_000)]])
    events = stack.chat_sse(sid, api_key, f"huge {marker}")
    kinds = [e.event for e in events]
    assert kinds[-1] == "turn.completed", kinds
    cut = [e for e in events if e.event in ("text.delta", "message")]
    assert cut and all(e.data.get("truncated") is True for e in cut), "\n".join(
        f"{e.event} {str(e.data)[:400]}" for e in events
    )
    assert all("[truncated " in e.data["text"] for e in cut)
    assert chat(stack, sid, api_key, "after")["text"] == "Echo: after"
    stack.delete(sid, api_key)


def test_a_stopped_sessions_sandbox_is_gone(sandbox_stack: Stack) -> None:
    stack = sandbox_stack
    api_key = new_key()
    sid = launch(stack, api_key)
    container = docker.from_env().containers.get(f"agc-{sid}")
    name = container.labels["agc.sandbox"]
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    host_dir = Path(mounts["/run/agc"]["Source"])
    assert (host_dir / "gw.sock").exists() and mounts["/run/agc"]["RW"] is False
    host_cfg = container.attrs["HostConfig"]
    assert host_cfg["NetworkMode"] == "none"
    assert sorted(host_cfg["CapAdd"]) == ["CAP_KILL", "CAP_SETGID", "CAP_SETUID"] or sorted(
        host_cfg["CapAdd"]
    ) == ["KILL", "SETGID", "SETUID"]
    assert host_cfg["CapDrop"] == ["ALL"] and host_cfg["ReadonlyRootfs"] is True
    assert name and host_dir.name == name
    stack.delete(sid, api_key)
    deadline = time.monotonic() + 30
    while host_dir.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not host_dir.exists()


def test_failure_paths_log_no_key(sandbox_stack: Stack) -> None:
    """Redis gone during a launch and a runner that cannot be restarted both log; no log
    of any process holds a session's key."""
    import threading

    stack = sandbox_stack
    dc = docker.from_env()
    keys = [new_key(), new_key()]
    # 1. Redis goes away while a launch is in flight (the launch may fail or get through)
    before = {
        c.id
        for c in dc.containers.list(all=True, filters={"label": f"agc.cluster={stack.cluster}"})
    }
    outcome: dict[str, Any] = {}

    def launch_in_background() -> None:
        with stack.client(timeout=120) as c:
            r = c.post(
                "/api/agents/launch",
                json={"api_key": keys[0], "config": attacker_config(f"rg-{uuid.uuid4().hex[:6]}")},
            )
        outcome["status"] = r.status_code

    t = threading.Thread(target=launch_in_background)
    t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = {
            c.id
            for c in dc.containers.list(all=True, filters={"label": f"agc.cluster={stack.cluster}"})
        }
        if now - before:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the launch never created a container")
    stack.restart_redis(downtime=3.0)
    t.join(150)
    assert outcome.get("status") is not None
    stack.wait_workers(1, timeout=60)
    # 2. a runner that cannot be restarted: its container is killed, then removed
    sid = launch(stack, keys[1])
    # Killed and removed in one call: a kill first would let the worker restart it in between.
    dc.containers.get(f"agc-{sid}").remove(force=True)
    with stack.client(keys[1]) as c:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if c.get(f"/api/agents/sessions/{sid}").json().get("status") == "failed":
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the session never failed:\n{stack.all_logs()}")
    logs = {p.name: p.read_bytes() for p in stack.tmp.glob("*.log")}
    assert logs and any(b"Traceback" in v or b"failed" in v for v in logs.values())
    for name, content in logs.items():
        for k in keys:
            assert k.encode() not in content, f"{name} holds a session key"
