"""The supervisor's restart policy on real (short-lived) processes, with the clock given to it.

``tick(now)`` takes the time, so backoff and the crash-loop window are checked exactly without
waiting for them; the processes themselves are real and really exit.
"""

from __future__ import annotations

import sys
from pathlib import Path

from agcluster.procs import Service, spawn
from agcluster.supervisor import Child, Policy, Supervisor

POLICY = Policy(backoff=0.2, backoff_max=1.0, loop_exits=5, loop_window=60.0, stop_timeout=5.0)


def dying(tmp: Path, code: int = 3) -> Child:
    """A child whose every run exits at once with ``code``."""

    def start() -> Service:
        svc = spawn("dies", [sys.executable, "-c", f"raise SystemExit({code})"], tmp / "d.log")
        svc.proc.wait(30)
        return svc

    return Child("dies", start, tier=3)


def test_backoff_doubles_from_an_immediate_first_restart_up_to_the_cap() -> None:
    assert [POLICY.delay(n) for n in range(1, 7)] == [0.0, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_exits_are_restarted_with_backoff_until_five_in_a_minute(tmp_path: Path) -> None:
    sup = Supervisor(POLICY)
    child = sup.add(dying(tmp_path))
    t = 1000.0
    waits = []
    for _ in range(4):
        sup.tick(t)  # notices the exit
        assert child.state == "backoff" and child.last_exit == "exit status 3"
        waits.append(round(child.restart_at - t, 3))
        sup.tick(child.restart_at - 0.01)
        assert child.state == "backoff"  # not before its time
        t = child.restart_at
        sup.tick(t)  # restarts it
        assert child.state == "running"
    assert waits == [0.0, 0.2, 0.4, 0.8]
    sup.tick(t)
    assert child.state == "crash-loop" and child.exits == 5 and child.restarts == 4
    pid = child.svc.proc.pid if child.svc else None
    sup.tick(t + 120)
    assert child.state == "crash-loop" and child.svc and child.svc.proc.pid == pid  # given up


def test_exits_spread_over_more_than_a_minute_never_count_as_a_loop(tmp_path: Path) -> None:
    sup = Supervisor(POLICY)
    child = sup.add(dying(tmp_path))
    t = 0.0
    for _ in range(12):
        t += 20.0  # one exit every 20 s: at most three in any 60 s window
        sup.tick(t)
        assert child.state == "backoff"
        sup.tick(child.restart_at)
        assert child.state == "running"
    assert child.exits == 12 and child.restarts == 12


def test_a_restart_that_fails_to_start_counts_as_an_exit(tmp_path: Path) -> None:
    from agcluster.procs import ServiceError

    runs = {"n": 0}
    first = dying(tmp_path)

    def start() -> Service:
        runs["n"] += 1
        if runs["n"] > 1:
            raise ServiceError("port taken")
        return first.start()

    sup = Supervisor(POLICY)
    child = sup.add(Child("flaky", start, tier=1))
    sup.tick(0.0)
    sup.tick(child.restart_at)
    assert child.state == "backoff" and child.exits == 2 and child.last_exit == "failed to start"


def test_stop_all_goes_tier_by_tier_highest_first(tmp_path: Path) -> None:
    order: list[str] = []
    sup = Supervisor(POLICY)

    def sleeper(name: str, tier: int) -> Child:
        def start() -> Service:
            return spawn(
                name, [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "s.log"
            )

        return Child(name, start, tier)

    children = [sup.add(sleeper(n, t)) for n, t in (("nats", 0), ("api", 2), ("worker", 3))]
    sup.on_change = lambda: order.extend(c.name for c in children if c.state == "stopped")
    sup.stop_all()
    assert all(c.state == "stopped" and c.svc and not c.svc.alive() for c in children)
    first_seen = list(dict.fromkeys(order))
    assert first_seen == ["worker", "api", "nats"]
