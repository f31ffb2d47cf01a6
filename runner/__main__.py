"""Entry point: ``python -m runner``.

SIGTERM and SIGINT are handled before the slow imports (the SDK takes 1-2 s to import here):
a container stopped during its first seconds then ends at once with exit code 0 instead of
being killed by the signal. :mod:`runner.main` replaces these handlers with its own.
"""

import os
import signal
import sys


def _stopped_early(signum: int, _frame: object) -> None:
    # Nothing has started yet, so there is nothing to clean up and no event to send.
    os.write(2, f"runner: signal {signum} before start-up finished; exiting\n".encode())
    os._exit(0)


signal.signal(signal.SIGTERM, _stopped_early)
signal.signal(signal.SIGINT, _stopped_early)

from runner.main import main  # noqa: E402  (after the handlers, on purpose)

sys.exit(main())
