"""``agcluster up`` through the real command, without agents: crash loops and a second ``up``.

A process that keeps dying is given up on alone (the rest of the stack stays up and says so);
a second ``up`` over a running or stopping one explains what holds the state dir or the ports
instead of failing on a bind error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.support.up import REPO, Up, wait_until


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Up]:
    """NATS, Redis and the API under ``up``, no workers (so no Docker)."""
    stack = Up.make(tmp_path, "--workers", "0")
    try:
        stack.start(healthy=False)
        wait_until(lambda: stack.health() in (200, 503), 60, "the API answers")
        yield stack
    finally:
        stack.close()


def second_up(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agcluster.cli", "up", "--workers", "0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_worker_that_keeps_dying_is_given_up_on_alone(tmp_path: Path) -> None:
    # The worker refuses its settings and exits at once, every time; the API accepts them.
    stack = Up.make(tmp_path, "--workers", "1", AGC_MAX_SESSIONS="lots")
    try:
        stack.start(healthy=False)
        wait_until(lambda: stack.process("worker-1")["state"] == "crash-loop", 90, "a loop")
        out = stack.output()
        assert "worker-1 is crash-looping" in out and "exited 5 times within 60 s" in out
        assert "max_sessions" in out.lower()  # the reason, from the end of the worker's log
        # Everything else keeps running and keeps answering.
        assert all(
            p["state"] == "running" for p in stack.status()["processes"] if p["name"] != "worker-1"
        )
        assert stack.proc is not None and stack.proc.poll() is None
        assert stack.health() == 503  # no worker: degraded, not down
        assert stack.metric("agc_supervisor_crash_loop", "worker-1") == 1.0
        assert stack.metric("agc_supervisor_exits_total", "worker-1") == 5.0
        assert stack.metric("agc_supervisor_restarts_total", "worker-1") == 4.0
        assert stack.metric("agc_supervisor_crash_loop", "api") == 0.0
        # It is never started again by itself...
        assert out.count("worker-1 restarted") == 4
        assert f"kill -HUP {stack.proc.pid}` retries it" in out
        # ...but SIGHUP (after a fix; here, none) gives it a fresh round of five.
        os.kill(stack.proc.pid, signal.SIGHUP)
        wait_until(lambda: stack.process("worker-1")["exits"] == 10, 90, "a second round")
        assert stack.process("worker-1")["state"] == "crash-loop"
        assert stack.output().count("worker-1 restarted") == 9
        assert stack.stop() == 0
    finally:
        stack.close()


def test_killed_servers_come_back_on_their_ports_and_the_api_recovers(bare: Up) -> None:
    before = bare.status()
    for name in ("redis", "nats"):
        pid = bare.kill(name)
        wait_until(partial(bare.restarted, name, pid), 10, f"{name} back")
    wait_until(lambda: bare.health() == 503 and _deps_ok(bare), 15, "NATS and Redis ok again")
    after = bare.status()
    assert after["nats_url"] == before["nats_url"] and after["redis_url"] == before["redis_url"]
    assert bare.metric("agc_supervisor_restarts_total", "redis") == 1.0
    assert bare.metric("agc_supervisor_restarts_total", "nats") == 1.0


def _deps_ok(up: Up) -> bool:
    import httpx

    body = httpx.get(f"{up.base_url}/health", timeout=2).json()
    return bool(body["nats"]["ok"] and body["redis"]["ok"])


def test_a_second_up_on_the_same_state_dir_says_what_is_running(bare: Up) -> None:
    status = bare.status()
    r = second_up(bare.env)
    assert r.returncode == 1
    assert f"another `agcluster up` (pid {status['pid']}) is running" in r.stderr
    assert f"state dir {bare.state}" in r.stderr
    assert status["api_url"] in r.stderr and status["nats_url"] in r.stderr
    assert "address already in use" not in r.stderr and "Traceback" not in r.stderr
    # The running stack was not disturbed.
    assert bare.status()["processes"] == status["processes"]
    assert bare.health() in (200, 503)


def test_a_second_up_on_another_state_dir_names_who_holds_its_ports(
    bare: Up, tmp_path: Path
) -> None:
    status = bare.status()
    api_port = status["api_url"].rsplit(":", 1)[1]
    nats_port = status["nats_url"].rsplit(":", 1)[1]
    env = {
        **bare.env,
        "AGC_STATE_DIR": str(tmp_path / "other"),
        "AGC_PORT": api_port,
        "AGC_NATS_PORT": nats_port,
    }
    r = second_up(env)
    assert r.returncode == 1, r.stderr
    assert "ports this stack needs are taken" in r.stderr
    api_pid = bare.process("api")["pid"]
    nats_pid = bare.process("nats")["pid"]
    assert f"127.0.0.1:{api_port} (API): pid {api_pid}" in r.stderr
    assert f"127.0.0.1:{nats_port} (NATS): pid {nats_pid}" in r.stderr
    assert f"state dir {bare.state}" in r.stderr
    assert "Traceback" not in r.stderr
    # Nothing of the second stack was left running.
    assert not (tmp_path / "other" / "up.json").exists()


def test_a_second_up_while_the_first_is_still_stopping_says_so(bare: Up) -> None:
    api_pid = int(bare.process("api")["pid"])
    os.kill(api_pid, signal.SIGSTOP)  # it cannot act on SIGTERM until continued
    try:
        assert bare.proc is not None
        bare.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: bare.status()["phase"] == "stopping", 30, "stopping")
        r = second_up(bare.env)
        assert r.returncode == 1
        assert "is still stopping" in r.stderr and f"state dir {bare.state}" in r.stderr
        assert "wait for it to finish stopping" in r.stderr
    finally:
        os.kill(api_pid, signal.SIGCONT)
    assert bare.stop() == 0
    # Once stopped, the same state dir and ports start again.
    again = Up(state=bare.state, env=bare.env, args=["--workers", "0"])
    try:
        again.start(healthy=False)
        wait_until(lambda: again.health() in (200, 503), 60, "the API answers again")
    finally:
        again.close()


def test_ctrl_c_stops_everything_in_order_and_frees_the_state_dir(bare: Up) -> None:
    pids = {p["name"]: p["pid"] for p in bare.status()["processes"]}
    bare.ctrl_c()
    assert bare.stop() == 0  # already signalled: only waits
    out = bare.output()
    order = [out.index(f"{name} stopped") for name in ("api", "redis", "nats")]
    assert order == sorted(order), out[-2000:]
    assert "exited unexpectedly" not in out  # nobody was restarted on the way down
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists(), f"{name} (pid {pid}) still runs"
    assert not (bare.state / "up.json").exists()


def test_a_killed_up_takes_its_children_with_it(bare: Up) -> None:
    pids = [int(p["pid"]) for p in bare.status()["processes"]]
    assert bare.proc is not None
    bare.proc.kill()  # no chance to stop anything itself
    bare.proc.wait(10)
    # Each child got SIGTERM from the kernel when its parent died, and stops by itself.
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids), 60, "children gone")
    again = Up(state=bare.state, env=bare.env, args=["--workers", "0"])
    try:
        again.start(healthy=False)
        wait_until(lambda: again.health() in (200, 503), 60, "a new stack on the same state dir")
    finally:
        again.close()


def test_sync_interval_reaches_every_nats_node_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    bad = Up.make(tmp_path, AGC_NATS_SYNC_INTERVAL="sometimes")
    r = second_up(bad.env)
    assert r.returncode == 2 and "invalid AGC_NATS_SYNC_INTERVAL" in r.stderr
    assert "use `always` or a duration" in r.stderr
    assert "Traceback" not in r.stderr and not (bad.state / "up.json").exists()
    good = Up.make(tmp_path, "--workers", "0", AGC_NATS_SYNC_INTERVAL="always")
    try:
        good.start(healthy=False)
        conf = good.state / "nats.conf"
        assert "sync_interval: always" in conf.read_text()
        log = (good.state / "logs" / "nats.log").read_text()
        assert f"Using configuration file: {conf}" in log
    finally:
        good.close()


def test_transactions_survive_a_redis_restart_under_the_acl(bare: Up) -> None:
    # Redis replays its AOF as `default`; with `default` unable to run them, EXEC used to drop
    # every transaction on restart (session records lost their fields; the API answered 500).
    from redis import Redis

    env = dict(
        line.split("=", 1)
        for line in (bare.state / "credentials" / "api.env").read_text().splitlines()
        if "=" in line
    )
    url = bare.status()["redis_url"]
    auth = {"username": env["AGC_REDIS_USER"], "password": env["AGC_REDIS_PASSWORD"]}
    r = Redis.from_url(url, **auth)
    pipe = r.pipeline(transaction=True)
    pipe.hset("agc:probe:tx", mapping={"a": "1", "b": "2"})
    pipe.set("agc:probe:plain", "3")
    pipe.execute()
    r.close()
    pid = bare.kill("redis")
    wait_until(partial(bare.restarted, "redis", pid), 10, "redis back")
    r = Redis.from_url(url, **auth)
    try:
        assert r.hgetall("agc:probe:tx") == {b"a": b"1", b"b": b"2"}
        assert r.get("agc:probe:plain") == b"3"
    finally:
        r.close()
    log = (bare.state / "logs" / "redis.log").read_text()
    assert "NOPERM" not in log
    # And still nobody gets in without the platform's credentials.
    anon = Redis.from_url(url)
    try:
        with pytest.raises(Exception, match=r"(?i)auth"):
            anon.ping()
    finally:
        anon.close()
