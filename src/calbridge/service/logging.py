"""Structured logs for ``calbridge serve`` / ``calbridge worker``.

``--log-format json`` prints one JSON object per line on stderr: ``time`` (RFC 3339 UTC),
``level``, ``logger``, ``message`` and every ``extra=`` field the code attached (one line per
sync run from :mod:`calbridge.service.runs`: calendar, trigger, result, seconds, requests…).
``text`` (the default) prints ``time level logger: message key=value…``.

Log lines never carry secrets: the code only attaches names, ids, counts and error messages,
which name objects but never credentials.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# attributes every LogRecord has; anything else came from ``extra=``
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's coloured duplicate of the message
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items() if v is not None)
        text = f"{stamp} {record.levelname.lower():7} {record.name}: {record.getMessage()}"
        if extras:
            text += f" [{extras}]"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Route every logger to stderr in the chosen format (replaces existing handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    ours = logging.getLogger("calbridge")
    if not ours.propagate:  # the CLI sends calbridge's records to its log file only
        ours.addHandler(handler)
        ours.setLevel(level)
    for noisy in ("httpx", "httpcore", "procrastinate", "uvicorn.access", "googleapiclient"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
