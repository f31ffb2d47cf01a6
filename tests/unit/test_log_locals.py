"""Logged tracebacks never carry local variables (a frame's locals can hold a key)."""

from __future__ import annotations

import pytest
import structlog

from broker.logging import configure_logging

SECRET = "sk-ant-api03-local-variable-secret"


def _fail(api_key: str) -> None:
    sealed = {"key": api_key}
    raise RuntimeError(f"launch failed ({len(sealed)} credential)")


@pytest.mark.parametrize("json", [False, True])
def test_exception_logs_show_no_locals(json: bool, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=json)
    log = structlog.get_logger("test")
    try:
        _fail(SECRET)
    except RuntimeError:
        log.exception("launch crashed")
    err = capsys.readouterr().err
    assert "launch failed (1 credential)" in err and "_fail" in err
    assert SECRET not in err
    structlog.reset_defaults()
