"""Structured logs: JSON lines (or a console rendering on a terminal) through structlog."""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["configure", "get"]


def configure(*, level: str = "info", json: bool | None = None) -> None:
    if json is None:
        json = not sys.stderr.isatty()
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(name: str, **bound: object) -> structlog.typing.FilteringBoundLogger:
    """A module's logger. Lazy: it takes the configuration in force when it logs, not the one at import time
    (modules are imported before ``configure`` runs; binding eagerly froze the default console rendering)."""
    return structlog.get_logger(name, **bound)  # type: ignore[no-any-return]
