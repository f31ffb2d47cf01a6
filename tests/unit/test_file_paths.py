"""The workspace path-safety layer, without Docker or NATS: lexical checks and the safe walk."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from broker.files_wire import UploadedObject, UploadRequest
from workers.file_ops import archive
from workers.file_ops.errors import BadPath, Exists, FileOpError, Missing, Refused
from workers.file_ops.paths import Workspace, sanitize_filename, split_path
from workers.file_ops.preview import count_lines, language, sniff, text_preview
from workers.file_ops.tree import build_tree
from workers.file_ops.upload import commit, plan, prepare, rollback

HOSTILE = [
    "..",
    "../etc/passwd",
    "a/../../etc/passwd",
    "a/./b",
    ".",
    "%2e%2e/etc/passwd",  # what a literal name looks like after one decode of %252e%252e
    "%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252fetc",
    "..%2fetc",
    "..\\etc\\passwd",
    "a\\..\\..\\b",
    "..\\/etc",
    "/etc/passwd",
    "//etc/passwd",
    "%2fetc%2fpasswd",
    "a\x00b",
    "a%00b",
    "\uff0e\uff0e/etc/passwd",  # fullwidth full stops
    "..\uff0fetc",  # fullwidth solidus
    "a\u2215..\u2215b",  # division slash
    "\u2025/etc",  # two dot leader (NFKC: "..")
    "a\u202eb",  # right-to-left override
    "a\u200bb",  # zero-width space
    "x" * 256,
    "a/" + "b" * 300,
    "a/" * 2100,
    "a\nb",
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_paths_are_refused_lexically(raw: str) -> None:
    with pytest.raises(BadPath):
        split_path(raw)


@pytest.mark.parametrize(
    ("raw", "parts"),
    [
        ("", ()),
        ("a", ("a",)),
        ("a/b/c.txt", ("a", "b", "c.txt")),
        ("a//b/", ("a", "b")),
        ("...", ("...",)),
        (".hidden/x", (".hidden", "x")),
        ("100%.txt", ("100%.txt",)),
        ("résumé é.txt", ("résumé é.txt",)),
        ("日本語/ファイル.md", ("日本語", "ファイル.md")),
        ("x" * 255, ("x" * 255,)),
    ],
)
def test_ordinary_paths_split(raw: str, parts: tuple[str, ...]) -> None:
    assert split_path(raw) == parts


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("a.txt", "a.txt"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("..\\..\\evil.sh", "evil.sh"),
        ("a\uff0f..\uff0fb.txt", "b.txt"),  # fullwidth solidus folds to / before basename
        ("bad\x00\x07name\u202e.txt", "badname.txt"),
        (".env", ".env"),
        ("  spaced.txt  ", "spaced.txt"),
        ("x" * 300 + ".csv", "x" * 251 + ".csv"),
    ],
)
def test_upload_names_are_sanitised(raw: str, name: str) -> None:
    assert sanitize_filename(raw) == name
    assert len(sanitize_filename(raw).encode()) <= 255


@pytest.mark.parametrize("raw", ["", ".", "..", "a/..", "dir/", "\x00", "\u202e"])
def test_unusable_upload_names_are_refused(raw: str) -> None:
    with pytest.raises(BadPath):
        sanitize_filename(raw)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root.mkdir()
    (root / "d").mkdir()
    (root / "d" / "f.txt").write_text("hello\nworld\n")
    (root / "empty").mkdir()
    (root / "evil").symlink_to("/etc/passwd")
    (root / "evil_dir").symlink_to(outside)
    (root / "evil_rel").symlink_to("../outside/secret.txt")
    (root / "runner").symlink_to("/opt/agc")
    (root / "good").symlink_to("d/f.txt")
    (root / "good_dir").symlink_to("d")
    (root / "loop").symlink_to("loop")
    os.mkfifo(root / "fifo")
    return Workspace(root, uid=os.getuid(), gid=os.getgid())


def _read(ws: Workspace, raw: str) -> bytes:
    fd, _ = ws.open_file(ws.resolve(split_path(raw)))
    try:
        return os.read(fd, 1 << 20)
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "raw",
    ["evil", "evil_dir/secret.txt", "evil_rel", "runner", "runner/x", "good_dir/../../outside"],
)
def test_links_out_of_the_workspace_are_refused(ws: Workspace, raw: str) -> None:
    with pytest.raises((Refused, BadPath)):
        _read(ws, raw)


def test_links_inside_the_workspace_are_followed(ws: Workspace) -> None:
    assert _read(ws, "good") == b"hello\nworld\n"
    assert _read(ws, "good_dir/f.txt") == b"hello\nworld\n"


def test_special_files_and_loops(ws: Workspace) -> None:
    with pytest.raises(BadPath):
        _read(ws, "fifo")  # refused without blocking on the FIFO
    with pytest.raises(FileOpError) as exc:
        _read(ws, "loop")
    assert exc.value.status in (400, 403, 404)
    with pytest.raises(Missing):
        _read(ws, "nope.txt")
    with pytest.raises(BadPath):
        _read(ws, "d")  # a directory
    with pytest.raises(Missing):
        _read(ws, "d/f.txt/x")


def test_walk_refuses_a_link_swapped_in_after_resolution(ws: Workspace, tmp_path: Path) -> None:
    parts = ws.resolve(split_path("d/f.txt"))
    (ws.root / "d").rename(ws.root / "d.real")
    (ws.root / "d").symlink_to(tmp_path / "outside")
    with pytest.raises((Refused, Missing)):
        ws.open_file(parts)


def test_tree_shows_links_as_links(ws: Workspace) -> None:
    tree = build_tree(ws, "conv-00000000")
    nodes = {n["name"]: n for n in tree["root"]["children"]}
    assert nodes["d"]["type"] == "directory"
    assert nodes["d"]["children"][0]["path"] == "d/f.txt"
    assert nodes["evil"]["type"] == "symlink" and nodes["evil"]["target"] == "/etc/passwd"
    assert nodes["evil_dir"]["type"] == "symlink" and "children" not in nodes["evil_dir"]
    assert nodes["fifo"]["type"] == "other"
    assert tree["total_files"] == 1
    assert tree["total_directories"] == 2
    assert tree["total_size"] == 12


def test_zip_skips_links_and_special_files(ws: Workspace) -> None:
    (ws.root / "d" / "back\\slash..\\x").write_text("b")
    data = b"".join(archive.iter_zip(ws.open_dir(())))
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert sorted(names) == ["d/back_slash.._x", "d/f.txt", "empty/"]
    assert zipfile.ZipFile(io.BytesIO(data)).read("d/f.txt") == b"hello\nworld\n"


def test_sniffing_looks_at_bytes_not_names() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    assert sniff(png, "notes.txt", complete=True).kind == "image"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ", "x", complete=True).mime == "image/webp"
    assert sniff(b'<?xml version="1.0"?>\n<svg xmlns="x">', "a.txt", complete=True).kind == "svg"
    assert sniff(b"print('hi')\n", "image.png", complete=True).kind == "text"
    assert sniff(b"\x00\x01\x02", "a.txt", complete=True).kind == "binary"
    assert sniff("é".encode()[:1], "a", complete=False).kind == "text"  # cut mid-character
    assert language("main.py", b"") == "python"
    assert language("Dockerfile", b"") == "dockerfile"
    assert language("run", b"#!/usr/bin/env python3\n") == "python"


def test_text_preview_truncates_on_a_character_boundary(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_bytes("é".encode() * 10 + b"\nend")
    fd = os.open(p, os.O_RDONLY)
    try:
        out = text_preview(fd, p.stat().st_size, os.pread(fd, 8192, 0), 5)
        assert out == {"content": "éé", "lines": 2, "truncated": True}
        assert count_lines(fd, p.stat().st_size) == 2
    finally:
        os.close(fd)


def _req(target: str, *names: str, overwrite: bool = False) -> UploadRequest:
    return UploadRequest(
        target_path=target,
        overwrite=overwrite,
        files=[
            UploadedObject(filename=n, name=f"s/up/{i}", nuid="x", size=1)
            for i, n in enumerate(names)
        ],
    )


def test_upload_plan_refuses_conflicts_and_links(ws: Workspace) -> None:
    with pytest.raises(Exists) as exc:
        plan(ws, _req("d", "f.txt", "new.txt"))
    assert exc.value.extra["existing"] == ["d/f.txt"]
    with pytest.raises(Refused):
        plan(ws, _req("evil_dir", "x.txt"))
    with pytest.raises(BadPath):
        plan(ws, _req("../x", "x.txt"))
    with pytest.raises(BadPath):
        plan(ws, _req("", "a.txt", "dir/a.txt"))  # same name after sanitising
    with pytest.raises(Exists):
        plan(ws, _req("", "d", overwrite=True))  # a directory is never replaced


def test_upload_commit_and_rollback(ws: Workspace) -> None:
    p = plan(ws, _req("new/deep", "a.txt"))
    prepare(ws, p)
    assert (ws.root / "new" / "deep").is_dir()
    rollback(ws, p, overwrite=False)
    assert not (ws.root / "new").exists()

    p = plan(ws, _req("up", "a.txt"))
    prepare(ws, p)
    fd = os.open(".agc-upload-t", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=p.dir_fd)
    os.write(fd, b"data")
    os.close(fd)
    p.temps.append(".agc-upload-t")
    commit(p, overwrite=False)
    assert (ws.root / "up" / "a.txt").read_bytes() == b"data"
    assert sorted(os.listdir(ws.root / "up")) == ["a.txt"]
