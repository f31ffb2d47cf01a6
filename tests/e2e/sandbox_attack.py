# ruff: noqa  (an attack script run inside a sandbox, not platform code)
"""The attack an agent runs inside its sandbox (tests/e2e/test_sandbox.py has the model write
it to /workspace and run it with Bash, as the agent's uid).

It tries every way out it knows and prints one JSON report on stdout; everything it could read
from other processes goes to ``/workspace/attack-dump.bin`` so the test (on the host) can look
for the session's key in it without the key ever being given to the sandbox.
Usage: ``python3 attack.py '{"host_ports": [...], "allowed": "...", "denied": "..."}'``.
"""

import contextlib
import errno
import glob
import json
import os
import select
import socket
import sys
import urllib.error
import urllib.request
from typing import Any

args = json.loads(sys.argv[1])
report: dict[str, Any] = {"uid": os.getuid(), "euid": os.geteuid()}
dump = open("/workspace/attack-dump.bin", "wb")  # noqa: SIM115


def err(exc: BaseException) -> str:
    return type(exc).__name__ + ":" + str(getattr(exc, "errno", "") or "")


# 1. every process's environment and command line
readable: list[str] = []
runner_pids: list[str] = []
for proc in sorted(glob.glob("/proc/[0-9]*")):
    pid = proc.rsplit("/", 1)[1]
    try:
        cmdline = open(proc + "/cmdline", "rb").read()  # noqa: SIM115
        dump.write(b"\n--cmdline " + pid.encode() + b"\n" + cmdline)
        if b"-m\x00runner" in cmdline:
            runner_pids.append(pid)
    except OSError:
        pass
    try:
        env = open(proc + "/environ", "rb").read()  # noqa: SIM115
        dump.write(b"\n--environ " + pid.encode() + b"\n" + env)
        readable.append(pid)
    except OSError:
        pass
report["environ_readable"] = readable
report["runner_pids"] = runner_pids
report["env_key"] = os.environ.get("ANTHROPIC_API_KEY", "")

# 2. the runner's memory and fds, PID 1's stdio (the worker's channel), a 2 MB line
writes: dict[str, str] = {}
for pid in ["1", *runner_pids]:
    for fd in ("0", "1", "2"):
        path = f"/proc/{pid}/fd/{fd}"
        try:
            with open(path, "wb") as f:
                f.write(b"x" * (2 << 20) + b"\n")
            writes[path] = "WROTE"
        except OSError as exc:
            writes[path] = err(exc)
    for name in ("mem", "environ"):
        try:
            open(f"/proc/{pid}/{name}", "rb").read(16)  # noqa: SIM115
            writes[f"/proc/{pid}/{name}"] = "READ"
        except OSError as exc:
            writes[f"/proc/{pid}/{name}"] = err(exc)
report["runner_access"] = writes

# 3. the mounted sockets, the Docker socket, privilege
sockets: dict[str, str] = {}
for path in (
    "/run/agc/gw.sock",
    "/run/agc/egress.sock",
    "/var/run/docker.sock",
    "/run/docker.sock",
):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        sockets[path] = "CONNECTED"
    except OSError as exc:
        sockets[path] = err(exc)
    finally:
        s.close()
try:
    os.listdir("/run/agc")
    sockets["/run/agc (list)"] = "LISTED"
except OSError as exc:
    sockets["/run/agc (list)"] = err(exc)
try:
    os.setuid(0)
    report["setuid0"] = "BECAME ROOT"
except OSError as exc:
    report["setuid0"] = err(exc)
report["sockets"] = sockets
report["cap_eff"] = next(
    line.split()[1]
    for line in open("/proc/self/status")
    if line.startswith("CapEff")  # noqa: SIM115
)

# 4. the network: interfaces, DNS, the platform's ports, every port of its own loopback
report["interfaces"] = sorted(os.listdir("/sys/class/net"))
try:
    socket.getaddrinfo("example.com", 443)
    report["dns"] = "RESOLVED"
except OSError as exc:
    report["dns"] = err(exc)
host_ports: dict[str, str] = {}
for port in args["host_ports"]:
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        host_ports[str(port)] = "CONNECTED"
    except OSError as exc:
        host_ports[str(port)] = err(exc)
    finally:
        s.close()
report["host_ports"] = host_ports
open_ports: list[int] = []
for start in range(1, 65536, 512):
    batch: list[tuple[int, socket.socket]] = []
    for port in range(start, min(start + 512, 65536)):
        s = socket.socket()
        s.setblocking(False)
        rc = s.connect_ex(("127.0.0.1", port))
        if rc in (0, errno.EINPROGRESS):
            batch.append((port, s))
        else:
            s.close()
    if batch:
        _, ready, _ = select.select([], [s for _, s in batch], [], 2)
        for port, s in batch:
            if s in ready and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                # a socket whose own ephemeral port is the one it dials connects to itself
                with contextlib.suppress(OSError):
                    if s.getsockname()[1] != port:
                        open_ports.append(port)
            s.close()
report["loopback_open"] = open_ports
# who listens on them (uid per socket, from the kernel's table)
listeners: dict[str, int] = {}
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    with contextlib.suppress(OSError):
        for line in open(table).read().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A":  # LISTEN
                listeners[str(int(cols[1].rsplit(":", 1)[1], 16))] = int(cols[7])
report["listeners"] = listeners
report["forwarder_ports"] = sorted(
    int(os.environ[v].rsplit(":", 1)[1]) for v in ("ANTHROPIC_BASE_URL", "HTTPS_PROXY")
)

# 5. egress through the proxy the sandbox was given
egress: dict[str, str] = {}
for label, url in (
    ("allowed_http", f"http://{args['allowed']}/health"),
    ("denied_http", f"http://{args['denied']}/"),
    ("denied_https", f"https://{args['denied']}/"),
    ("metadata", "http://169.254.169.254/latest/meta-data/"),
    ("host_loopback", f"http://127.0.0.1:{args['host_ports'][0]}/"),
):
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            egress[label] = f"{resp.status}:{resp.read(200).decode(errors='replace')}"
    except urllib.error.HTTPError as exc:
        egress[label] = f"HTTPError:{exc.code}:{exc.read(300).decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as exc:
        egress[label] = err(exc) + ":" + str(getattr(exc, "reason", exc))[:200]
report["egress"] = egress

dump.close()
with contextlib.suppress(OSError):
    os.chmod("/workspace/attack-dump.bin", 0o644)
print("ATTACK-REPORT " + json.dumps(report, sort_keys=True))
