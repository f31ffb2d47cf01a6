"""A stand-in for the AgCluster API, for developing the dashboard without the real stack.

Serves web/dist and fakes the public REST/SSE contract in memory: configs, validation, launch,
sessions, a scripted agent turn (text, TodoWrite, Bash, Write, Read, a sub-agent, thinking),
interrupt, the resumable events stream, files (tree, preview, raw, upload, zip).

    python3 web/dev/mock_api.py [--port 8000]

A message containing "slow" runs a long Bash step (interruptible); "fail" ends with an error.
Stdlib only. Not a test of the real API: the browser test in tests/browser runs against that.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import mimetypes
import re
import threading
import time
import uuid
import zipfile
from email.parser import BytesParser
from email.policy import HTTP as HTTP_POLICY
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

DIST = Path(__file__).resolve().parents[1] / "dist"

CONFIGS = {
    "code-assistant": {
        "id": "code-assistant",
        "name": "Code Assistant",
        "description": "A full-stack coding agent: reads, writes and runs code in its workspace, plans with todos.",
        "version": "1.0.0",
        "allowed_tools": ["Bash", "Read", "Write", "Edit", "Glob", "Grep", "TodoWrite", "Task"],
        "system_prompt": {"type": "preset", "preset": "claude_code", "append": "Work in /workspace. Keep answers short."},
        "permission_mode": "acceptEdits",
        "mcp_servers": {},
        "agents": {"reviewer": {"description": "Reviews diffs", "prompt": "You review code.", "tools": ["Read", "Grep"]}},
        "resource_limits": {"cpu_quota": 200000, "memory_limit": "4g", "storage_limit": "10g", "pids_limit": 512},
        "max_turns": 50,
        "model": "claude-sonnet-4-5",
        "source": "preset",
    },
    "data-analyst": {
        "id": "data-analyst",
        "name": "Data Analyst",
        "description": "Explores CSV and JSON data with Python, writes charts and a short report.",
        "version": "1.0.0",
        "allowed_tools": ["Bash", "Read", "Write", "Glob", "TodoWrite"],
        "system_prompt": "You are a careful data analyst. Explain findings plainly.",
        "permission_mode": "acceptEdits",
        "mcp_servers": {},
        "agents": {},
        "resource_limits": {"cpu_quota": 100000, "memory_limit": "2g", "storage_limit": "5g", "pids_limit": 256},
        "max_turns": None,
        "model": None,
        "source": "preset",
    },
    "github-triage": {
        "id": "github-triage",
        "name": "GitHub Triage",
        "description": "Triages issues through the GitHub MCP server.",
        "version": "1.0.0",
        "allowed_tools": ["Read", "Grep", "mcp__github__list_issues", "mcp__github__add_labels"],
        "system_prompt": {"type": "preset", "preset": "claude_code"},
        "permission_mode": "default",
        "mcp_servers": {"github": {"type": "stdio", "command": "github-mcp", "args": [], "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}}},
        "agents": {},
        "resource_limits": {"cpu_quota": 50000, "memory_limit": "1g", "storage_limit": "2g", "pids_limit": 128},
        "max_turns": 20,
        "model": None,
        "source": "preset",
    },
}

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAAMklEQVR4nGNkYPj/n4EBFTAyMqIKwJhYFcAUIkvAFWGTQFeIrBirCZgSmApGFWAqAAB1VxwR4qdvUQAAAABJRU5ErkJggg=="
)


class Session:
    def __init__(self, sid: str, key: str, cfg: dict) -> None:
        self.sid = sid
        self.key = key
        self.cfg = cfg
        self.status = "running"
        self.created = time.time()
        self.last_active = time.time()
        self.events: list[dict] = []
        self.cond = threading.Condition()
        self.turns = 0
        self.usage = {"input_tokens": 0, "output_tokens": 0}
        self.cost = 0.0
        self.interrupt = threading.Event()
        self.busy = False
        self.files: dict[str, bytes] = {
            "README.md": b"# Workspace\n\nFiles the agent writes show up here.\n",
            "data/sample.csv": b"city,temp\nOslo,4\nLisbon,19\n",
            "img/dot.png": PNG,
        }
        self.emit({"type": "session.status", "status": "starting", "detail": ""})
        self.emit({"type": "system", "subtype": "init", "data": {"model": cfg.get("model") or "claude-sonnet-4-5", "tools": cfg["allowed_tools"]}})
        self.emit({"type": "session.ready", "config_id": cfg["id"], "tools": cfg["allowed_tools"]})
        self.emit({"type": "session.status", "status": "idle", "detail": ""})

    def emit(self, ev: dict) -> None:
        ev = {"session_id": self.sid, "ts": time.time(), "v": 1, **ev}
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()
        self.last_active = time.time()

    def public(self) -> dict:
        return {
            "session_id": self.sid,
            "agent_id": "agent-" + self.sid[5:13],
            "config_id": self.cfg["id"],
            "config_name": self.cfg["name"],
            "status": self.status,
            "created_at": self.created,
            "last_active": self.last_active,
            "owner_worker": "local-w1",
            "turns": self.turns,
            "usage": dict(self.usage),
            "cost_usd": round(self.cost, 6),
            "limits": self.cfg["resource_limits"],
            "error": None,
        }

    def sleep(self, s: float) -> bool:
        """Sleep; True when interrupted."""
        return self.interrupt.wait(s)

    def run_turn(self, message: str) -> dict:
        tid = "turn-" + uuid.uuid4().hex[:10]
        self.busy = True
        self.interrupt.clear()
        self.status = "busy"
        self.emit({"type": "user.message", "turn_id": tid, "text": message})
        self.emit({"type": "session.status", "status": "busy", "detail": ""})
        self.emit({"type": "turn.started", "turn_id": tid})
        start = time.time()
        interrupted = False
        t = lambda **kw: self.emit({"turn_id": tid, **kw})  # noqa: E731

        def stream(text: str, index: int = 0, parent: str | None = None) -> bool:
            for word in re.findall(r"\S+\s*", text):
                t(type="text.delta", text=word, index=index, parent_tool_use_id=parent)
                if self.sleep(0.03):
                    return True
            t(type="message", text=text, model="claude-sonnet-4-5", parent_tool_use_id=parent)
            return False

        def tool(name: str, inp: dict, out: str, secs: float = 0.3, is_error: bool = False, parent: str | None = None) -> bool:
            tu = "toolu_" + uuid.uuid4().hex[:12]
            t(type="tool.started", tool_use_id=tu, name=name, input=inp, parent_tool_use_id=parent)
            if name == "TodoWrite":
                t(type="todo.updated", todos=[{"content": x["content"], "status": x["status"], "active_form": x.get("activeForm", "")} for x in inp["todos"]])
            stopped = self.sleep(secs)
            if stopped:
                return True
            t(type="tool.completed", tool_use_id=tu, name=name, output=out, is_error=is_error, result=None, parent_tool_use_id=parent)
            return False

        todos = [
            {"content": "Inspect the workspace", "status": "in_progress", "activeForm": "Inspecting the workspace"},
            {"content": "Write hello.py", "status": "pending", "activeForm": "Writing hello.py"},
            {"content": "Run it", "status": "pending", "activeForm": "Running it"},
        ]
        steps = []
        steps.append(lambda: (t(type="thinking.delta", text="The user wants a script. ", index=0), t(type="thinking", text="The user wants a script. I'll plan with todos, write it and run it."), False)[-1])
        steps.append(lambda: stream("I'll set up a plan, write the script and run it."))
        steps.append(lambda: tool("TodoWrite", {"todos": todos}, "Todos have been modified successfully."))
        steps.append(lambda: tool("Bash", {"command": "ls -la", "description": "List files"}, "total 12\ndrwxr-xr-x 4 agent agent 4096 .\n-rw-r--r-- 1 agent agent   52 README.md\ndrwxr-xr-x 2 agent agent 4096 data\ndrwxr-xr-x 2 agent agent 4096 img"))
        steps.append(lambda: tool("Glob", {"pattern": "**/*.csv"}, "data/sample.csv"))

        def write():
            todos[0]["status"] = "completed"
            todos[1]["status"] = "in_progress"
            if tool("TodoWrite", {"todos": todos}, "ok", 0.1):
                return True
            content = 'import csv\n\n\ndef main() -> None:\n    """Print each city and its temperature."""\n    with open("data/sample.csv") as f:\n        for row in csv.DictReader(f):\n            print(f"{row[\'city\']}: {row[\'temp\']}°C")\n\n\nif __name__ == "__main__":\n    main()\n'
            stop = tool("Write", {"file_path": "/workspace/hello.py", "content": content}, "File created successfully at: /workspace/hello.py", 0.4)
            self.files["hello.py"] = content.encode()
            return stop

        steps.append(write)
        steps.append(lambda: tool("Edit", {"file_path": "/workspace/README.md", "old_string": "Files the agent writes show up here.", "new_string": "Files the agent writes show up here.\nRun `python3 hello.py`."}, "The file has been updated."))

        def run():
            todos[1]["status"] = "completed"
            todos[2]["status"] = "in_progress"
            if tool("TodoWrite", {"todos": todos}, "ok", 0.1):
                return True
            if "slow" in message:
                return tool("Bash", {"command": "python3 -c 'import time; time.sleep(30)'", "description": "A slow step"}, "", 30)
            return tool("Bash", {"command": "python3 hello.py"}, "Oslo: 4°C\nLisbon: 19°C", 0.5)

        steps.append(run)

        def sub():
            tu = "toolu_" + uuid.uuid4().hex[:12]
            t(type="tool.started", tool_use_id=tu, name="Task", input={"subagent_type": "reviewer", "description": "Review hello.py", "prompt": "Review hello.py for bugs."}, parent_tool_use_id=None)
            if tool("Read", {"file_path": "/workspace/hello.py"}, "     1\timport csv\n     2\t\n     3\t\n     4\tdef main() -> None:", 0.2, parent=tu):
                return True
            if tool("Grep", {"pattern": "open\\(", "path": "/workspace"}, "hello.py:6:    with open(\"data/sample.csv\") as f:", 0.2, parent=tu):
                return True
            if stream("Looks fine; consider `encoding=\"utf-8\"`.", parent=tu):
                return True
            t(type="tool.completed", tool_use_id=tu, name="Task", output="The script is correct. Consider passing `encoding=\"utf-8\"` to `open()`.", is_error=False)
            return False

        steps.append(sub)
        if "fail" in message:
            steps.append(lambda: tool("Bash", {"command": "cat missing.txt"}, "cat: missing.txt: No such file or directory", 0.2, is_error=True))

        def finish():
            todos[2]["status"] = "completed"
            if tool("TodoWrite", {"todos": todos}, "ok", 0.1):
                return True
            return stream("Done. **hello.py** prints each city:\n\n```\nOslo: 4°C\nLisbon: 19°C\n```\n\n| City | Temp |\n|---|---|\n| Oslo | 4 |\n| Lisbon | 19 |", index=0)

        steps.append(finish)
        for s in steps:
            if s():
                interrupted = True
                break
        usage = {"input_tokens": 3120, "output_tokens": 412, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1800}
        cost = 0.0214
        self.turns += 1
        self.usage["input_tokens"] += usage["input_tokens"] + usage["cache_read_input_tokens"]
        self.usage["output_tokens"] += usage["output_tokens"]
        self.cost += cost
        summary = {
            "type": "turn.completed", "turn_id": tid, "stop_reason": None if interrupted else "end_turn",
            "subtype": "error_during_execution" if interrupted else "success", "is_error": False, "interrupted": interrupted,
            "duration_ms": int((time.time() - start) * 1000), "num_turns": 9, "usage": usage, "cost_usd": cost, "result": "Done.",
        }
        self.emit(summary)
        self.busy = False
        self.status = "idle"
        self.emit({"type": "session.status", "status": "idle", "detail": ""})
        return {"session_id": self.sid, "turn_id": tid, "text": "Done.", "tool_calls": [], "usage": usage, "cost_usd": cost,
                "duration_ms": summary["duration_ms"], "stop_reason": summary["stop_reason"], "is_error": False, "interrupted": interrupted}

    def stop(self) -> None:
        self.interrupt.set()
        self.status = "stopped"
        self.emit({"type": "session.status", "status": "stopped", "detail": "stopped by the user"})
        self.emit({"type": "session.stopped", "reason": "deleted"})


SESSIONS: dict[str, Session] = {}
CUSTOM: dict[str, dict] = {}
STATE = {"workers": 1}


def summary(c: dict) -> dict:
    creds: dict[str, list[str]] = {}
    for name, s in (c.get("mcp_servers") or {}).items():
        names = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", json.dumps(s))
        if names:
            creds[name] = sorted(set(names))
    return {
        **{k: c.get(k) for k in ("id", "name", "description", "version", "allowed_tools", "permission_mode", "model", "resource_limits", "source")},
        "has_mcp_servers": bool(c.get("mcp_servers")),
        "has_sub_agents": bool(c.get("agents")),
        "mcp_servers": list((c.get("mcp_servers") or {}).keys()),
        "sub_agents": list((c.get("agents") or {}).keys()),
        "mcp_credentials": creds,
    }


def validate(c: dict) -> list[dict]:
    errs = []
    if not isinstance(c, dict):
        return [{"field": "", "message": "config must be an object"}]
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", str(c.get("id", ""))):
        errs.append({"field": "id", "message": "lowercase letters, digits, - and _ only"})
    if not str(c.get("name", "")).strip():
        errs.append({"field": "name", "message": "must not be empty"})
    rl = c.get("resource_limits") or {}
    if "memory_limit" in rl and not re.fullmatch(r"\d+[kmg]?", str(rl["memory_limit"])):
        errs.append({"field": "resource_limits.memory_limit", "message": "a size like 512m or 4g"})
    if "cpu_quota" in rl and (not isinstance(rl["cpu_quota"], int) or rl["cpu_quota"] < 10000):
        errs.append({"field": "resource_limits.cpu_quota", "message": "at least 10000 (0.1 CPU)"})
    if c.get("permission_mode") not in ("default", "acceptEdits", "plan", "bypassPermissions"):
        errs.append({"field": "permission_mode", "message": "unknown permission mode"})
    for name, a in (c.get("agents") or {}).items():
        if not name:
            errs.append({"field": "agents", "message": "every sub-agent needs a name"})
        elif not a.get("description"):
            errs.append({"field": f"agents.{name}.description", "message": "required"})
    return errs


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args) -> None:  # quieter
        pass

    # -- helpers
    def send_json(self, status: int, body: object, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status: int, code: str, detail: str, **extra) -> None:
        self.send_json(status, {"error": code, "detail": detail, "status_code": status, **extra})

    def body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def session(self, sid: str) -> Session | None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            self.error(401, "unauthorized", "missing bearer key")
            return None
        s = SESSIONS.get(sid)
        if not s:
            self.error(404, "not_found", f"no session {sid}")
            return None
        if auth[7:] != s.key:
            self.error(403, "forbidden", "this key did not launch this session")
            return None
        return s

    def send_bytes(self, data: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    # -- routing
    def do_DELETE(self) -> None:
        p = urlparse(self.path).path
        if m := re.fullmatch(r"/api/agents/sessions/([^/]+)", p):
            if s := self.session(m[1]):
                s.stop()
                self.send_json(200, {"session_id": s.sid, "status": "stopped"})
            return
        if m := re.fullmatch(r"/api/configs/custom/([^/]+)", p):
            CUSTOM.pop(m[1], None)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.error(404, "not_found", "no route")

    def do_POST(self) -> None:
        u = urlparse(self.path)
        p = u.path
        if p == "/api/configs/validate":
            c = json.loads(self.body() or b"null")
            errs = validate(c)
            if errs:
                return self.error(422, "validation_error", "invalid configuration", errors=errs)
            return self.send_json(200, {"valid": True, "config": c})
        if p == "/api/configs/custom":
            c = json.loads(self.body() or b"null")
            if errs := validate(c):
                return self.error(422, "validation_error", "invalid configuration", errors=errs)
            if c["id"] in CONFIGS:
                return self.error(409, "conflict", f"{c['id']} is a preset id")
            CUSTOM[c["id"]] = {**c, "source": "custom"}
            return self.send_json(201, CUSTOM[c["id"]])
        if p == "/api/agents/launch":
            b = json.loads(self.body() or b"{}")
            if not b.get("api_key"):
                return self.error(422, "validation_error", "api_key is required", errors=[{"field": "api_key", "message": "required"}])
            if STATE["workers"] == 0:
                return self.error(503, "no_worker", "no worker is alive")
            cfg = b.get("config") or CONFIGS.get(b.get("config_id")) or CUSTOM.get(b.get("config_id"))
            if not cfg:
                return self.error(404, "not_found", f"unknown config {b.get('config_id')}")
            if b.get("config") and (errs := validate(cfg)):
                return self.error(422, "validation_error", "invalid configuration", errors=errs)
            time.sleep(0.6)
            sid = "conv-" + uuid.uuid4().hex
            SESSIONS[sid] = Session(sid, b["api_key"], {**cfg, "source": cfg.get("source", "custom")})
            return self.send_json(200, {"session_id": sid, "agent_id": "agent-" + sid[5:13], "config_id": cfg["id"], "status": "running"})
        if m := re.fullmatch(r"/api/agents/([^/]+)/chat", p):
            if not (s := self.session(m[1])):
                return
            b = json.loads(self.body() or b"{}")
            if s.status == "stopped":
                return self.error(409, "session_stopped", "the session has stopped")
            if s.busy:
                return self.error(409, "busy", "a turn is already running")
            return self.send_json(200, s.run_turn(b.get("message", "")))
        if m := re.fullmatch(r"/api/agents/([^/]+)/interrupt", p):
            if s := self.session(m[1]):
                s.interrupt.set()
                self.send_json(202, {"session_id": s.sid, "interrupted": True})
            return
        if m := re.fullmatch(r"/api/files/([^/]+)/upload", p):
            if not (s := self.session(m[1])):
                return
            ctype = self.headers.get("Content-Type", "")
            raw = self.body()
            msg = BytesParser(policy=HTTP_POLICY).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
            fields: dict[str, str] = {}
            files: list[tuple[str, bytes]] = []
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                fn = part.get_filename()
                payload = part.get_payload(decode=True) or b""
                if fn:
                    files.append((fn, payload))
                else:
                    fields[name] = payload.decode()
            target = fields.get("target_path", "").strip("/")
            overwrite = fields.get("overwrite") == "true"
            paths = [f"{target}/{fn}" if target else fn for fn, _ in files]
            existing = [q for q in paths if q in s.files]
            if existing and not overwrite:
                return self.error(409, "exists", "files exist", existing=existing)
            for q, (_, data) in zip(paths, files):
                s.files[q] = data
            return self.send_json(200, {"uploaded": [{"filename": fn, "path": q} for q, (fn, _) in zip(paths, files)]})
        if m := re.fullmatch(r"/api/files/([^/]+)/download", p):
            if not (s := self.session(m[1])):
                return
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                for k, v in s.files.items():
                    z.writestr(k, v)
            return self.send_bytes(buf.getvalue(), "application/zip", {"Content-Disposition": 'attachment; filename="workspace.zip"'})
        self.error(404, "not_found", "no route")

    def do_GET(self) -> None:
        u = urlparse(self.path)
        p = unquote(u.path)
        q = parse_qs(u.query)
        if p == "/health":
            ok = STATE["workers"] > 0
            return self.send_json(200 if ok else 503, {"status": "ok" if ok else "degraded", "nats": {"ok": True}, "redis": {"ok": True}, "workers": {"alive": STATE["workers"]}})
        if p in ("/api/configs/", "/api/configs"):
            cs = [summary(c) for c in [*CONFIGS.values(), *CUSTOM.values()]]
            return self.send_json(200, {"configs": cs, "total": len(cs)})
        if m := re.fullmatch(r"/api/configs/([^/]+)", p):
            c = CONFIGS.get(m[1]) or CUSTOM.get(m[1])
            return self.send_json(200, c) if c else self.error(404, "not_found", "unknown config")
        if p == "/api/agents/sessions":
            key = self.headers.get("Authorization", "")[7:]
            ss = [s.public() for s in SESSIONS.values() if s.key == key]
            return self.send_json(200, {"sessions": ss, "total": len(ss)})
        if m := re.fullmatch(r"/api/agents/sessions/([^/]+)", p):
            if s := self.session(m[1]):
                pub = s.public()
                pub["resources"] = None if s.status == "stopped" else {"cpu_percent": 37.5 if s.busy else 1.2, "memory_bytes": 180 * 2**20, "memory_limit_bytes": 4 * 2**30}
                self.send_json(200, pub)
            return
        if m := re.fullmatch(r"/api/agents/([^/]+)/events", p):
            if not (s := self.session(m[1])):
                return
            last = self.headers.get("Last-Event-ID") or "0"
            pos = int(last) if last.isdigit() else 0
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                while True:
                    with s.cond:
                        if pos >= len(s.events):
                            s.cond.wait(10)
                        batch = s.events[pos:]
                    if not batch:
                        self.wfile.write(b": keep-alive\n\n")
                        self.wfile.flush()
                        continue
                    for ev in batch:
                        pos += 1
                        self.wfile.write(f"id: {pos}\nevent: {ev['type']}\ndata: {json.dumps(ev)}\n\n".encode())
                    self.wfile.flush()
                    if batch[-1]["type"] == "session.stopped":
                        return
            except (BrokenPipeError, ConnectionResetError):
                return
        if m := re.fullmatch(r"/api/files/([^/]+)", p):
            if not (s := self.session(m[1])):
                return
            return self.send_json(200, tree(s))
        if m := re.fullmatch(r"/api/files/([^/]+)/(.+)", p):
            if not (s := self.session(m[1])):
                return
            path = m[2]
            if path not in s.files:
                return self.error(404, "not_found", f"no file {path}")
            data = s.files[path]
            mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
            if q.get("raw") == ["true"]:
                return self.send_bytes(data, mime, {"Content-Disposition": f'attachment; filename="{Path(path).name}"'})
            if mime.startswith("image/"):
                return self.send_bytes(data, mime)
            try:
                text = data.decode()
            except UnicodeDecodeError:
                return self.send_json(200, {"type": "binary", "path": path, "size": len(data), "mime": mime, "download_url": f"/api/files/{s.sid}/{path}?raw=true"})
            lang = {".py": "python", ".md": "markdown", ".csv": None}.get(Path(path).suffix)
            return self.send_json(200, {"type": "text", "path": path, "content": text, "language": lang, "size": len(data), "lines": text.count("\n") + 1, "truncated": False})
        # static + SPA fallback
        if p.startswith(("/api/", "/health")):
            return self.error(404, "not_found", "no route")
        f = (DIST / p.lstrip("/")).resolve()
        if not (f.is_file() and DIST in f.parents):
            f = DIST / "index.html"
        self.send_bytes(f.read_bytes(), mimetypes.guess_type(str(f))[0] or "application/octet-stream")


def tree(s: Session) -> dict:
    root: dict = {"name": "", "type": "directory", "path": "", "size": 0, "modified": 0, "children": []}
    dirs = {"": root}
    for path in sorted(s.files):
        parts = path.split("/")
        for i in range(1, len(parts)):
            dp = "/".join(parts[:i])
            if dp not in dirs:
                node = {"name": parts[i - 1], "type": "directory", "path": dp, "size": 0, "modified": 0, "children": []}
                dirs["/".join(parts[: i - 1])]["children"].append(node)
                dirs[dp] = node
        dirs["/".join(parts[:-1])]["children"].append({"name": parts[-1], "type": "file", "path": path, "size": len(s.files[path]), "modified": hash(s.files[path]) % 100000})
    return {"session_id": s.sid, "root": root, "total_files": len(s.files), "total_directories": len(dirs) - 1, "total_size": sum(map(len, s.files.values()))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--no-workers", action="store_true")
    a = ap.parse_args()
    if a.no_workers:
        STATE["workers"] = 0
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    print(f"mock AgCluster API on http://127.0.0.1:{a.port}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
