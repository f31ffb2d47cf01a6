"""Entry point: ``python -m runner``.

SIGTERM and SIGINT are handled before the slow imports (the SDK takes 0.3-1.7 s to import):
a container stopped during its first seconds then ends at once with exit code 0 instead of
being killed by the signal. :mod:`runner.main` replaces these handlers with its own.

Before the SDK is imported, :mod:`runner.early` reads the first command and, for an ``init``,
starts the CLI: it starts on one core while the SDK imports on the other.

The cyclic garbage collector is off while the modules load, and what they made is then frozen
(``gc.freeze``): ~146k long-lived objects (pydantic models of ``mcp``, mostly) that a collection
would otherwise walk again and again, for nothing. Measured in the container: the imports take
~50 ms less, and the first full collection after them 1 ms instead of ~55 ms.
"""

import gc
import os
import signal
import subprocess
import sys

# The CLI runner.early started, killed if the runner is stopped before it takes over.
_early_cli: "subprocess.Popen[bytes] | None" = None


def _stopped_early(signum: int, _frame: object) -> None:
    # Nothing has started yet but that CLI, so there is nothing to clean up and no event to send.
    os.write(2, f"runner: signal {signum} before start-up finished; exiting\n".encode())
    if _early_cli is not None:
        _early_cli.kill()
    os._exit(0)


signal.signal(signal.SIGTERM, _stopped_early)
signal.signal(signal.SIGINT, _stopped_early)
gc.disable()

from runner.early import StartUp, begin  # noqa: E402  (after the handlers, on purpose)
from runner.settings import RunnerSettings  # noqa: E402


def _start_up() -> StartUp | None:
    global _early_cli
    try:
        settings = RunnerSettings.from_env()
    except Exception:
        return None  # runner.main reports bad settings
    startup = begin(settings)
    _early_cli = startup.cli.process if startup.cli is not None else None
    return startup


_startup = _start_up()

from runner.main import main  # noqa: E402  (the SDK: after the CLI started, on purpose)

gc.freeze()
gc.enable()
sys.exit(main(_startup))
