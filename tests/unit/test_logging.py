"""One logging set-up (broker.logging) for every process: structlog renders stdlib records too."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from broker.logging import configure_logging


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def test_our_packages_info_lines_show_and_libraries_stay_quiet(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json=True)
    logging.getLogger("configs.store").info("loaded %d presets", 5)
    logging.getLogger("runner.session").info("init session=%s", "conv-1")
    logging.getLogger("nats.aio.client").info("library chatter")
    logging.getLogger("nats.aio.client").warning("library warning")
    structlog.get_logger("agc.worker").info("worker started", worker_id="w-1")
    captured = capsys.readouterr()
    assert captured.out == ""  # stderr only: in the runner, stdout is the protocol
    lines = [json.loads(x) for x in captured.err.splitlines()]
    assert [(x.get("logger"), x["event"], x["level"]) for x in lines] == [
        ("configs.store", "loaded 5 presets", "info"),
        ("runner.session", "init session=conv-1", "info"),
        ("nats.aio.client", "library warning", "warning"),
        (None, "worker started", "info"),
    ]
    assert all("timestamp" in x for x in lines)


def test_the_level_applies_to_stdlib_records(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING")
    logging.getLogger("runner").info("hidden")
    logging.getLogger("runner").warning("shown")
    err = capsys.readouterr().err
    assert "shown" in err and "hidden" not in err
