"""Where calbridge's log goes: a file, never the terminal.

The terminal is for the one-line messages a person acts on. Tracebacks of unexpected failures —
a calendar whose sync hit a bug, an object no reader expected — belong in the log, where whoever
reports the problem can find them: ``calbridge.log`` in the data directory (or
``CALBRIDGE_LOG_FILE``), created 0600, rotated at 5 MB (three old files kept). Without this,
Python's last-resort handler would print warnings and their tracebacks on stderr.
:func:`configure_logging` is idempotent; :func:`log_location` names the file for messages.
"""

from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

from calbridge.config import Settings
from calbridge.errors import ConfigError

LOG_NAME = "calbridge.log"
_logger = logging.getLogger("calbridge")


def configure_logging(settings: Settings) -> Path | None:
    """Send the ``calbridge`` loggers to the log file (INFO and above); if it cannot be opened,
    drop the records rather than print them. Returns the file, or None when there is none."""
    for handler in _logger.handlers:
        if isinstance(handler, RotatingFileHandler):
            return Path(handler.baseFilename)
        if isinstance(handler, logging.NullHandler):
            return None
    path: Path | None = None
    handler_out: logging.Handler
    try:
        path = settings.log_file or settings.resolved_data_dir() / LOG_NAME
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        handler_out = RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
        handler_out.setFormatter(
            logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
        )
    except (OSError, ConfigError):  # e.g. a data directory that cannot be created
        path, handler_out = None, logging.NullHandler()
    _logger.addHandler(handler_out)
    _logger.setLevel(logging.INFO)
    _logger.propagate = False
    return path


def log_location() -> str:
    """Where tracebacks were written, for a message ("see …")."""
    for handler in _logger.handlers:
        if isinstance(handler, RotatingFileHandler):
            return handler.baseFilename
    return "the calbridge log"
