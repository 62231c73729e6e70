"""Logging for the command line: library code logs to ``mgcl.*`` loggers and never prints."""

from __future__ import annotations

import logging
import sys


class _Format(logging.Formatter):
    """``note: ...`` for warnings, the bare message for progress and info lines."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return f"note: {text}" if record.levelno >= logging.WARNING else text


def setup_logging(verbosity: int = 0) -> None:
    """Route ``mgcl.*`` records to stderr: warnings as ``note: ...`` lines, info as they are.

    verbosity: -1 (``-q``) errors only, 0 notes and progress lines (INFO), 1 (``-v``) DEBUG.
    """
    level = logging.ERROR if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    logger = logging.getLogger("mgcl")
    for h in list(logger.handlers):
        if getattr(h, "_mgcl_cli", False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Format())
    handler._mgcl_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
