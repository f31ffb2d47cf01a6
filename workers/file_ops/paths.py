"""Path safety: user input → workspace-relative parts → file descriptors that never leave it.

Two layers, both needed:

1. :func:`split_path` is lexical. It refuses what has no business in a workspace path
   (dot segments in any spelling, NUL and control characters, backslashes, absolute
   paths, over-long names, Unicode that normalises to a separator or a dot) with 400, so
   the common attacks fail before the filesystem is touched.
2. :class:`Workspace` is physical. The agent owns the workspace and can plant symlinks
   anywhere in it, so every open walks from the volume's root one component at a time
   with ``openat(…, O_NOFOLLOW)`` relative to the parent's descriptor. A symlink is only
   followed after ``realpath`` showed its target stays inside the root, and even then the
   walk re-opens the resolved components with ``O_NOFOLLOW``: an agent that swaps a
   directory for a link between the check and the open gets a refusal, never a read
   outside.
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote

from workers.file_ops.errors import BadPath, Missing, Refused

MAX_PATH_CHARS = 4096
MAX_NAME_BYTES = 255  # NAME_MAX on Linux filesystems

Parts = tuple[str, ...]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO the agent planted must not hang the worker until a writer comes.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY

# Characters that look like a separator or a dot but that NFKC does not map to one; they are
# harmless to Linux but exist only to fool a human or a later normalising layer.
_LOOKALIKES = frozenset(
    "\u2215"  # DIVISION SLASH
    "\u2044"  # FRACTION SLASH
    "\u29f8\u29f9"  # BIG SOLIDUS, BIG REVERSE SOLIDUS
    "\u2216"  # SET MINUS
    "\u2571\u2572"  # BOX DRAWINGS DIAGONALS
    "\u3002\uff61"  # IDEOGRAPHIC / HALFWIDTH IDEOGRAPHIC FULL STOP
)
# What a look-alike must never normalise to.
_MEANINGFUL = frozenset("/\\.:%")


def _reject_characters(value: str, what: str) -> None:
    for ch in value:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs"):
            # Control, format (bidi overrides, zero-width) and lone surrogates: none belongs
            # in a name a user typed, and format characters make a name lie about itself.
            raise BadPath(f"{what} contains a control or invisible character (U+{ord(ch):04X})")
        if ord(ch) > 0x7F:
            if ch in _LOOKALIKES:
                raise BadPath(f"{what} contains a look-alike of a separator (U+{ord(ch):04X})")
            folded = unicodedata.normalize("NFKC", ch)
            if any(c in _MEANINGFUL or ord(c) < 0x20 for c in folded):
                raise BadPath(f"{what} contains U+{ord(ch):04X}, which normalises to {folded!r}")


def _has_dot_segment(value: str) -> bool:
    return any(seg in (".", "..") for seg in value.replace("\\", "/").split("/"))


def split_path(raw: str, *, what: str = "path") -> Parts:
    """Return the workspace-relative parts of ``raw``; ``()`` is the workspace root.

    Raises :class:`BadPath` (400) for anything hostile or malformed. Empty segments (``a//b``,
    a trailing ``/``) are ignored; ``.`` and ``..`` are refused rather than resolved, so a
    path means the same thing to the user, the API and the worker.
    """
    if not isinstance(raw, str):
        raise BadPath(f"{what} must be a string")
    if len(raw) > MAX_PATH_CHARS:
        raise BadPath(f"{what} is longer than {MAX_PATH_CHARS} characters")
    if "\x00" in raw:
        raise BadPath(f"{what} contains a NUL byte")
    if "\\" in raw:
        raise BadPath(f"{what} contains a backslash; use / to separate directories")
    if raw.startswith("/"):
        raise BadPath(f"{what} must be relative to the workspace, not absolute")
    # The HTTP layer percent-decodes once. Whatever is still encoded is a literal name to the
    # filesystem, but a separator or dot segment hidden that way is only ever an attempt to
    # get past a decoder somewhere else: refuse it in every depth of encoding.
    decoded = raw
    for _ in range(3):
        nxt = unquote(decoded) if "%" in decoded else decoded
        if nxt == decoded:
            break
        decoded = nxt
        if "\x00" in decoded or "\\" in decoded or decoded.startswith("/"):
            raise BadPath(f"{what} hides a separator or NUL in percent-encoding")
        if _has_dot_segment(decoded):
            raise BadPath(f"{what} hides a '.' or '..' segment in percent-encoding")
    _reject_characters(raw, what)
    parts = tuple(seg for seg in raw.split("/") if seg)
    for seg in parts:
        if seg in (".", ".."):
            raise BadPath(f"{what} may not contain '.' or '..' segments")
        if len(seg.encode("utf-8")) > MAX_NAME_BYTES:
            raise BadPath(f"a name in the {what} is longer than {MAX_NAME_BYTES} bytes")
    return parts


def join(parts: Sequence[str]) -> str:
    """The user-facing spelling of workspace-relative parts (``""`` for the root)."""
    return "/".join(parts)


def display_name(name: str) -> str:
    """A name safe to put in JSON: bytes that are not UTF-8 become U+FFFD."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return name


def sanitize_filename(raw: str) -> str:
    """Reduce an uploaded file's name to one safe component, or raise :class:`BadPath`.

    Browsers and tools send anything here (``C:\\Users\\me\\a.txt``, ``../../x``, names with
    control characters): keep only the last component, fold Unicode look-alikes with NFKC
    *before* taking it (so a fullwidth solidus cannot smuggle a directory in), drop control
    and invisible characters, and cap the length at 255 bytes keeping the extension.
    """
    name = unicodedata.normalize("NFKC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        ch
        for ch in name
        if unicodedata.category(ch) not in ("Cc", "Cf", "Cs") and ch not in _LOOKALIKES
    ).strip()
    if name in ("", ".", ".."):
        raise BadPath(f"unusable file name {raw!r}")
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        keep_ext = dot and 0 < len(ext.encode()) <= 16 and stem
        suffix = f".{ext}" if keep_ext else ""
        budget = MAX_NAME_BYTES - len(suffix.encode())
        base = (stem if keep_ext else name).encode("utf-8")[:budget].decode("utf-8", "ignore")
        name = base.rstrip() + suffix
    return name


def _classify_open_error(exc: OSError, dir_fd: int, name: str, rel: str) -> Exception:
    """Turn a failed component open into the error the user should see."""
    if exc.errno == errno.ENOENT:
        return Missing(f"no such file or directory: {rel!r}")
    if exc.errno == errno.ENAMETOOLONG:
        return BadPath(f"name too long: {rel!r}")
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        try:
            st = os.lstat(name, dir_fd=dir_fd)
        except OSError:
            return Missing(f"no such file or directory: {rel!r}")
        if stat.S_ISLNK(st.st_mode):
            return Refused(f"{rel!r} is a symbolic link that cannot be followed")
        return Missing(f"{rel!r} is not a directory")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return Refused(f"permission denied: {rel!r}")
    return exc


class Workspace:
    """A session's workspace directory as seen by the worker on the Docker host."""

    def __init__(self, root: str | os.PathLike[str], *, uid: int = 1000, gid: int = 1000) -> None:
        self.root = Path(os.path.realpath(root))
        # Files and directories the worker creates must belong to the agent's user.
        self.uid, self.gid = uid, gid

    def open_root(self) -> int:
        try:
            return os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise Missing("the session's workspace no longer exists") from exc

    def resolve(self, parts: Parts) -> Parts:
        """Follow symlinks that stay inside the workspace; refuse any that lead out.

        ``realpath`` only reads link contents on the host (no file data), and every target
        outside the root gets the same 403 whether it exists or not, so nothing about the
        host leaks. The caller still opens the result with :meth:`open_dir`/:meth:`open_file`,
        which re-check each component with ``O_NOFOLLOW`` (so a link swapped in after this
        check is refused, not followed).
        """
        if not parts:
            return ()
        target = Path(os.path.realpath(os.path.join(self.root, *parts)))
        if not target.is_relative_to(self.root):
            raise Refused(f"{join(parts)!r} leads outside the workspace (symbolic link)")
        return target.relative_to(self.root).parts

    def open_dir(
        self,
        parts: Parts,
        *,
        create: bool = False,
        created: list[Parts] | None = None,
    ) -> int:
        """Open the directory ``parts`` names, walking with ``O_NOFOLLOW``; return its fd.

        With ``create``, missing components are made (owned by the agent's user) and listed
        in ``created`` so a failed operation can remove them again.
        """
        fd = self.open_root()
        try:
            for i, name in enumerate(parts):
                rel = join(parts[: i + 1])
                try:
                    nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError as exc:
                    if not create:
                        raise Missing(f"no such directory: {rel!r}") from exc
                    try:
                        os.mkdir(name, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass  # made concurrently (by the agent): the open below decides
                    else:
                        os.chown(name, self.uid, self.gid, dir_fd=fd, follow_symlinks=False)
                        if created is not None:
                            created.append(parts[: i + 1])
                    try:
                        nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    except OSError as exc2:
                        raise _classify_open_error(exc2, fd, name, rel) from exc2
                except OSError as exc:
                    raise _classify_open_error(exc, fd, name, rel) from exc
                os.close(fd)
                fd = nfd
            return fd
        except BaseException:
            os.close(fd)
            raise

    def open_file(self, parts: Parts) -> tuple[int, os.stat_result]:
        """Open the regular file ``parts`` names for reading; return its fd and ``fstat``.

        Directories, FIFOs, sockets and devices are refused (400); the fd is the file that
        was checked, so nothing can be swapped between the check and the read.
        """
        if not parts:
            raise BadPath("the workspace root is a directory, not a file", code="is_directory")
        dfd = self.open_dir(parts[:-1])
        try:
            try:
                fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=dfd)
            except OSError as exc:
                raise _classify_open_error(exc, dfd, parts[-1], join(parts)) from exc
        finally:
            os.close(dfd)
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            return fd, st
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise BadPath(f"{join(parts)!r} is a directory", code="is_directory")
        raise BadPath(f"{join(parts)!r} is not a regular file", code="not_a_file")

    def lstat(self, parts: Parts) -> os.stat_result | None:
        """``lstat`` of an entry reached safely, or None if it does not exist."""
        if not parts:
            return os.stat(self.root)
        try:
            dfd = self.open_dir(parts[:-1])
        except Missing:
            return None
        try:
            return os.lstat(parts[-1], dir_fd=dfd)
        except FileNotFoundError:
            return None
        finally:
            os.close(dfd)
