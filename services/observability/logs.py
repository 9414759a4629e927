"""Structured logs: one JSON object per line on stdout, through python-json-logger.

Fields passed as `extra={...}` become top-level keys (request_id, user_id, latency_ms, ...).
"""

import logging
import sys
import time
from typing import Any

from pythonjsonlogger.json import JsonFormatter

ACCESS_LOGGER = "services.access"


class _UtcJsonFormatter(JsonFormatter):
    """time (UTC, milliseconds, Z), level, logger, message, then the record's extra fields."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{moment}.{int(record.msecs):03d}Z"

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        log_data["level"] = str(log_data.get("level", "")).lower()
        return log_data


def json_formatter() -> logging.Formatter:
    """The formatter every handler of this project uses."""
    return _UtcJsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={
            "asctime": "time",
            "levelname": "level",
            "name": "logger",
            "exc_info": "trace",
        },
        json_default=str,
    )


def configure_logging() -> None:
    """Send this project's loggers to stdout as JSON lines (BentoML keeps its own handlers)."""
    root = logging.getLogger("services")
    if any(isinstance(h.formatter, _UtcJsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(json_formatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
