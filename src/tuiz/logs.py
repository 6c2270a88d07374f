"""Structured logs: JSON in production (not a terminal), readable key=value on a terminal."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import structlog


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Route both structlog and stdlib logging (uvicorn, asyncpg) through one renderer."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("pgserver").setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


OUTAGE_LOG_INTERVAL = 1.0  # seconds: at most one line per event name while the database is away
_outage_logged: dict[str, tuple[float, int]] = {}  # event -> (last logged, suppressed since)


def log_outage(
    logger: structlog.stdlib.BoundLogger, event: str, exc: BaseException, **fields: Any
) -> None:
    """A warning that the database is away, at most once a second per event name (thousands
    of sockets fail at once in an outage; the log says how many lines it left out)."""
    now = time.monotonic()
    last, suppressed = _outage_logged.get(event, (-OUTAGE_LOG_INTERVAL, 0))
    if now - last < OUTAGE_LOG_INTERVAL:
        _outage_logged[event] = (last, suppressed + 1)
        return
    _outage_logged[event] = (now, 0)
    logger.warning(event, error=repr(exc), suppressed=suppressed, **fields)


def log_failure(
    logger: structlog.stdlib.BoundLogger, event: str, exc: BaseException, **fields: Any
) -> None:
    """A background failure: a throttled warning while the database is away (expected, and
    repeated by every socket and timer), a full traceback for anything else (a bug)."""
    from tuiz.errors import is_database_outage

    if is_database_outage(exc):
        log_outage(logger, event, exc, **fields)
    else:
        logger.error(event, exc_info=exc, **fields)
