"""Structured logging set-up shared by every process (API, workers, runner, agcluster).

structlog renders every line. The standard-library loggers of our own packages (``runner``,
``configs``, ``api``, ``workers``, ``broker``, ``agcluster``) go through the same renderer at the
configured level; other libraries' only from WARNING up. Everything goes to stderr: in the
runner, stdout is the protocol.
"""

from __future__ import annotations

import logging
import sys

import structlog

OUR_LOGGERS = ("runner", "configs", "api", "workers", "broker", "agcluster")


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Route structlog and stdlib logging to stderr, as console lines or JSON."""
    lvl = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks without local variables: a frame's locals can hold a key, a token or a
    # config with credentials (structlog's rich formatter prints them by default).
    renderer: structlog.typing.Processor
    if json:
        processors.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Standard-library records (ours and libraries') rendered like structlog's own lines.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *processors],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(lvl, logging.WARNING))
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(lvl)
