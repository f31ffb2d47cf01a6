"""Pytest fixture: a started :class:`ModelServer` on 127.0.0.1 with an ephemeral port.

Import it into a conftest (``from tests.modelserver.fixture import model_server``). It is a
sync fixture serving from its own thread, so sync tests, async tests and tests that block on
docker calls can all use it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.modelserver.server import ModelServer


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    """Yield a running scripted model server; ``.base_url`` is its ``http://127.0.0.1:PORT``."""
    server = ModelServer("127.0.0.1", 0).start()
    try:
        yield server
    finally:
        server.stop()
