"""The file operations' error tree; each error knows the HTTP status the user should see."""

from __future__ import annotations

from typing import Any


class FileOpError(Exception):
    """A file operation refused or failed in a way the caller should be told about."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra

    def reply(self) -> dict[str, Any]:
        """The error as an RPC reply (the shape ``workers.rpc.error_reply`` uses, plus extras)."""
        return {"error": self.code, "detail": self.detail, "status": self.status, **self.extra}


class BadPath(FileOpError):
    """The path is malformed or hostile (dot segments, NUL, look-alikes, absolute…)."""

    status, code = 400, "bad_path"


class Refused(FileOpError):
    """The path names something the user may not reach (a link out of the workspace)."""

    status, code = 403, "forbidden_path"


class Missing(FileOpError):
    """Nothing of that name exists in the workspace."""

    status, code = 404, "not_found"


class Exists(FileOpError):
    """The operation would replace something and the caller did not allow that."""

    status, code = 409, "exists"


class TooLarge(FileOpError):
    """A size or count cap was exceeded."""

    status, code = 413, "too_large"


class NoSpace(FileOpError):
    """The workspace's disk is full."""

    status, code = 507, "insufficient_storage"
