"""The dashboard's event types (web/src/events.gen.ts) match the msgspec schema in broker/events.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import msgspec

from broker import events

REPO = Path(__file__).resolve().parents[2]
GEN = REPO / "scripts" / "gen-web-types.py"
TS = REPO / "web" / "src" / "events.gen.ts"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GEN), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_committed_file_is_current() -> None:
    r = run("--check")
    assert r.returncode == 0, f"{r.stderr}\nregenerate: .venv/bin/python scripts/gen-web-types.py"


def test_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "events.gen.ts"
    stale.write_text(TS.read_text().replace('"session.ready"', '"session.gone"'))
    r = run("--check", "--out", str(stale))
    assert r.returncode == 1
    assert "stale" in r.stderr


def test_every_event_and_field_is_typed() -> None:
    text = TS.read_text()
    for tag, cls in events.EVENT_TYPES.items():
        body = re.search(rf"export interface {cls.__name__} \{{\n(.*?)\n\}}", text, flags=re.DOTALL)
        assert body, f"no interface for {cls.__name__}"
        assert f'  type: "{tag}";' in body.group(1)
        for f in msgspec.structs.fields(cls):
            opt = "" if f.required else "[?]"
            assert re.search(rf"^  {f.encode_name}{opt}: ", body.group(1), re.M), (
                f"{cls.__name__}.{f.name}"
            )
        assert f"  | {cls.__name__}" in text  # a member of AnyEvent
