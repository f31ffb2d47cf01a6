"""Run the scripted model server standalone: ``python -m tests.modelserver --port N``."""

from __future__ import annotations

import argparse
import contextlib
import logging

from tests.modelserver.server import ModelServer


def main() -> None:
    """Serve until interrupted; without a script marker every chat is answered 'Echo: ...'."""
    parser = argparse.ArgumentParser(prog="python -m tests.modelserver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    server = ModelServer(args.host, args.port)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
