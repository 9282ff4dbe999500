"""Log lines: one JSON object per line in production (``GATEWAY_LOG_FORMAT=json``, the
default when ``GATEWAY_ENVIRONMENT=production``), readable lines in development (``text``).

Every line carries the request id of the HTTP request or WebSocket connection that caused it
(``request_id.py``), when there is one. Events add their fields with
``extra={"fields": {...}}`` (the access log: ``middleware.py``, ``operations.py``); an error
logged with its exception carries the stack trace, which stays on the server (clients get
``INTERNAL_SERVER_ERROR`` and a generic message, see ``gateway/graphql/errors.py``).

``gateway serve`` installs this for the gateway's loggers and uvicorn's (whose own access log
is off: the gateway writes one line per request itself, with more in it).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.observability.request_id import current_request_id
from gateway.settings import Environment, LogFormat, Settings


class RequestIdFilter(logging.Filter):
    """Puts the current request id on each record (the handler's filter: every logger's
    records pass it, whoever wrote them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update({k: v for k, v in fields.items() if k not in line})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``19:30:01.234 INFO  gateway.access [3f2a…] http request method=POST status=200``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)-5s %(name)s %(message)s", "%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            name_end = text.index(record.name) + len(record.name)
            text = f"{text[:name_end]} [{request_id}]{text[name_end:]}"
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        return text


def log_format(settings: Settings) -> LogFormat:
    """The settings' format; by default JSON in production, text in development."""
    if settings.log_format is not None:
        return settings.log_format
    return LogFormat.JSON if settings.environment is Environment.PRODUCTION else LogFormat.TEXT


def logging_config(settings: Settings, level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``gateway serve`` (uvicorn's ``log_config``): one
    handler on stderr, with the request id filter and the format the settings ask for."""
    formatter = JsonFormatter if log_format(settings) is LogFormat.JSON else TextFormatter
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"gateway": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "gateway",
                "filters": ["request_id"],
            }
        },
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
            # The gateway writes its own access lines (gateway.access).
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
        },
        "root": {"handlers": ["stderr"], "level": level},
    }
