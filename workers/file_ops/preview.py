"""What a file is, judged from its bytes (not its name), and a text preview of it."""

from __future__ import annotations

import mimetypes
import os
import re
from dataclasses import dataclass
from typing import Any, Literal

SNIFF_BYTES = 8192
# Counting lines reads the whole file; beyond this the count is left out (``lines: null``).
LINE_COUNT_MAX_BYTES = 64 * 1024 * 1024
_READ = 1024 * 1024

Kind = Literal["text", "image", "svg", "binary"]

_IMAGES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_BINARIES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"\x7fELF", "application/x-executable"),
    (b"BM", "image/bmp"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\x28\xb5\x2f\xfd", "application/zstd"),
    (b"BZh", "application/x-bzip2"),
    (b"\xfd7zXZ\x00", "application/x-xz"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"SQLite format 3\x00", "application/vnd.sqlite3"),
)
_SVG_RE = re.compile(
    rb"^\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*(?:<!DOCTYPE\s+svg[^>]*>\s*)?"
    rb"(?:<!--.*?-->\s*)*<svg[\s>/]",
    re.S | re.I,
)

_LANGUAGES = {
    "py": "python",
    "pyi": "python",
    "ipynb": "json",
    "js": "javascript",
    "mjs": "javascript",
    "cjs": "javascript",
    "jsx": "jsx",
    "ts": "typescript",
    "tsx": "tsx",
    "json": "json",
    "md": "markdown",
    "markdown": "markdown",
    "rst": "rst",
    "yaml": "yaml",
    "yml": "yaml",
    "toml": "toml",
    "ini": "ini",
    "cfg": "ini",
    "conf": "ini",
    "sh": "bash",
    "bash": "bash",
    "zsh": "bash",
    "fish": "fish",
    "ps1": "powershell",
    "rs": "rust",
    "go": "go",
    "java": "java",
    "kt": "kotlin",
    "kts": "kotlin",
    "scala": "scala",
    "c": "c",
    "h": "c",
    "cc": "cpp",
    "cpp": "cpp",
    "cxx": "cpp",
    "hpp": "cpp",
    "hh": "cpp",
    "cs": "csharp",
    "rb": "ruby",
    "php": "php",
    "pl": "perl",
    "lua": "lua",
    "r": "r",
    "swift": "swift",
    "m": "objectivec",
    "dart": "dart",
    "ex": "elixir",
    "exs": "elixir",
    "erl": "erlang",
    "hs": "haskell",
    "clj": "clojure",
    "sql": "sql",
    "html": "html",
    "htm": "html",
    "xml": "xml",
    "svg": "xml",
    "css": "css",
    "scss": "scss",
    "sass": "sass",
    "less": "less",
    "vue": "vue",
    "svelte": "svelte",
    "graphql": "graphql",
    "proto": "protobuf",
    "tf": "hcl",
    "hcl": "hcl",
    "csv": "csv",
    "tsv": "csv",
    "txt": "plaintext",
    "log": "log",
    "diff": "diff",
    "patch": "diff",
    "tex": "latex",
    "dockerfile": "dockerfile",
    "env": "dotenv",
    "gitignore": "gitignore",
}
_NAMES = {
    "dockerfile": "dockerfile",
    "containerfile": "dockerfile",
    "makefile": "makefile",
    "gnumakefile": "makefile",
    "cmakelists.txt": "cmake",
    "gemfile": "ruby",
    "rakefile": "ruby",
    "jenkinsfile": "groovy",
    ".bashrc": "bash",
    ".profile": "bash",
    ".env": "dotenv",
    ".gitignore": "gitignore",
    ".dockerignore": "gitignore",
}
_SHEBANGS = (
    ("python", "python"),
    ("node", "javascript"),
    ("bash", "bash"),
    ("sh", "bash"),
    ("ruby", "ruby"),
    ("perl", "perl"),
    ("deno", "typescript"),
)


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: Kind
    mime: str


def _utf8_prefix_ok(head: bytes, complete: bool) -> bool:
    """Whether ``head`` is UTF-8, allowing a sequence cut at its end when more follows."""
    for cut in range(0, 1 if complete else 4):
        try:
            head[: len(head) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def sniff(head: bytes, name: str, *, complete: bool) -> Sniffed:
    """Classify a file from its first bytes; ``complete`` says ``head`` is the whole file."""
    for magic, mime in _IMAGES:
        if head.startswith(magic):
            return Sniffed("image", mime)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", "image/webp")
    for magic, mime in _BINARIES:
        if head.startswith(magic):
            return Sniffed("binary", mime)
    if b"\x00" not in head and _utf8_prefix_ok(head, complete):
        if _SVG_RE.match(head.removeprefix(b"\xef\xbb\xbf")):
            return Sniffed("svg", "image/svg+xml")
        return Sniffed("text", "text/plain; charset=utf-8")
    guessed, _ = mimetypes.guess_type(name, strict=False)
    if guessed and not guessed.startswith("text/"):
        return Sniffed("binary", guessed)
    return Sniffed("binary", "application/octet-stream")


def language(name: str, head: bytes) -> str:
    """A highlighter's language id from the file's name, else its shebang, else plaintext."""
    lower = name.lower()
    if lower in _NAMES:
        return _NAMES[lower]
    if lower.startswith("dockerfile"):
        return "dockerfile"
    _, dot, ext = lower.rpartition(".")
    if dot and ext in _LANGUAGES:
        return _LANGUAGES[ext]
    if head.startswith(b"#!"):
        first = head.split(b"\n", 1)[0].decode("utf-8", "replace")
        for word, lang in _SHEBANGS:
            if re.search(rf"[/ ]{word}[\d.]*(\s|$)", first):
                return lang
    return "plaintext"


def count_lines(fd: int, size: int) -> int | None:
    """Lines in the file (a last line without ``\\n`` counts); None if it is too big to count."""
    if size > LINE_COUNT_MAX_BYTES:
        return None
    lines, offset, last = 0, 0, b""
    while True:
        block = os.pread(fd, _READ, offset)
        if not block:
            break
        lines += block.count(b"\n")
        offset += len(block)
        last = block[-1:]
    if offset and last != b"\n":
        lines += 1
    return lines


def text_preview(fd: int, size: int, head: bytes, limit: int) -> dict[str, Any]:
    """Content (at most ``limit`` bytes, cut on a character boundary), line count, flag."""
    data = head if len(head) >= min(size, limit + 4) else os.pread(fd, limit + 4, 0)
    truncated = len(data) > limit or size > limit
    if truncated:
        data = data[:limit]
        # Drop a multi-byte character the cut split in two, not the whole preview.
        for cut in range(4):
            try:
                content = data[: len(data) - cut].decode("utf-8")
                break
            except UnicodeDecodeError:
                continue
        else:
            content = data.decode("utf-8", "replace")
    else:
        content = data.decode("utf-8", "replace")
    content = content.removeprefix("\ufeff")
    return {"content": content, "lines": count_lines(fd, size), "truncated": truncated}
