"""What the server logs, and how: ``text`` (uvicorn's own format, as always) or ``json`` (one
JSON object per line, uvicorn's lines included: ``--log-format json`` / ``LOG_FORMAT=json``).

In JSON every process — the ``serve`` command, uvicorn's supervisor and each worker — logs
through ``JsonLines``: ``time``, ``level``, ``logger`` and ``message``, then the record's own
fields. Lines about requests (``support_graph.requests``, one per HTTP request: see
``request_line``) go to stdout, where uvicorn's access lines go in text; they replace those, so
each request is logged once. Everything else goes to stderr. Python warnings are logged too.

A request line never carries a key, a secret, a header or a query string: only the method,
the path, what the operation was and came to, and who asked (tenant and actor).
"""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

LOG_FORMATS = ("text", "json")
#: one line per HTTP request
REQUESTS = logging.getLogger("support_graph.requests")
#: what ``serve`` tells the operator as it starts
SERVE = logging.getLogger("support_graph.serve")
#: this process's format, once ``configure`` has set it
_format = "text"


class JsonLines(JsonFormatter):
    """``{"time", "level", "logger", "message", …the record's extra fields}`` on one line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # uvicorn may pass ``use_colors``: no colours here
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            # uvicorn adds a copy of each message with terminal colours
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["time"] = log_data["time"].isoformat(timespec="milliseconds")
        # these four first, in this order, whatever the record adds
        first = {key: log_data.pop(key, None) for key in ("time", "level", "logger", "message")}
        rest = dict(log_data)
        log_data.clear()
        log_data.update(first, **rest)


def log_config(log_format: str, level: str = "info") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` dictionary for uvicorn's ``log_config``: uvicorn's
    own in ``text``; one JSON object per line in ``json``."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG

    if log_format == "text":
        return LOGGING_CONFIG
    ours = logging.getLevelName(LOG_LEVELS.get(level.lower(), logging.INFO))
    json_lines = {"()": f"{__name__}.JsonLines"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # named as uvicorn's are: uvicorn writes ``use_colors`` into these two when asked to
        "formatters": {"default": json_lines, "access": json_lines},
        "handlers": {
            "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
            "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            # replaced by the request lines, which say more
            "uvicorn.access": {"handlers": [], "level": "INFO", "propagate": False},
            "support_graph": {"level": ours},
            REQUESTS.name: {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }


def configure(log_format: str, level: str = "info") -> None:
    """Log in ``log_format`` from now on in this process (``serve`` before uvicorn starts, so
    that its own lines — a migration's — are in the same format)."""
    global _format
    _format = log_format
    if log_format == "json":
        logging.config.dictConfig(log_config(log_format, level))
        logging.captureWarnings(True)


def announce(message: str, level: int = logging.INFO) -> None:
    """Tell the operator something as ``serve`` starts: ``support-graph: …`` on stdout (stderr
    for warnings and worse) in text, a log line in json."""
    if _format == "json":
        SERVE.log(level, message)
    else:
        print(f"support-graph: {message}", file=sys.stderr if level >= logging.WARNING else sys.stdout, flush=True)


def request_line(
    *, method: str, path: str, status: int, seconds: float, operation_type: str | None, names: list[str],
    tenant: str | None, actor: str | None, codes: list[str], request_id: str | None,
) -> None:  # fmt: skip
    """Log the one line of a request (when request lines are logged at all: ``json``)."""
    if not REQUESTS.isEnabledFor(logging.INFO):
        return
    operation_name = ",".join(names) or None
    what = f" {operation_type}{f' {operation_name}' if operation_name else ''}" if operation_type else ""
    duration_ms = round(seconds * 1000, 2)
    REQUESTS.info(
        "%s %s %d%s in %.1f ms", method, path, status, what, duration_ms,
        extra={
            "method": method, "path": path, "status": status, "duration_ms": duration_ms,
            "operation_type": operation_type, "operation_name": operation_name,
            "tenant": tenant, "actor": actor, "error_codes": codes, "request_id": request_id,
        },
    )  # fmt: skip
