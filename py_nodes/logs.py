"""Log lines of every Python process: plain text for a terminal, or JSON lines.

``STELLAROPS_LOG_FORMAT`` (``Settings.node.log_format``) chooses. In JSON, each record is one
object on one line with the keys every StellarOps node writes (the BEAM node's formatter,
``stellar_log.erl``, writes the same): ``ts`` (UTC, ms, ``Z``), ``level`` (lower case),
``node`` (the Erlang node name, or ``stellarops-<command>`` for a command), ``msg``, and
``request_id`` / ``sat_id`` when known (context variables: a gateway request sets them, so every
log line written while it is served carries them), plus ``logger``, the fields of
``extra={"fields": {...}}`` and ``exc`` for a traceback.

Nothing here runs on import: the CLI calls ``configure`` once it knows the command.
``console_line`` is for what a command prints for the operator (the ``up`` banner, its status
lines): the text as it is, or one JSON object when the logs are JSON, so that a JSON-mode process
prints nothing but JSON lines.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final, Literal

__all__ = ["JsonFormatter", "configure", "console_line", "request_id_var", "sat_id_var"]

request_id_var: ContextVar[str | None] = ContextVar("stellarops_request_id", default=None)
sat_id_var: ContextVar[str | None] = ContextVar("stellarops_sat_id", default=None)
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ``node`` names the process that writes it."""

    def __init__(self, node: str = "stellarops") -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "node": self.node,
            "msg": record.getMessage(),
            "logger": record.name,
        }
        request_id, sat_id = request_id_var.get(), sat_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if sat_id is not None:
            entry["sat_id"] = sat_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update({k: v for k, v in fields.items() if k not in ("ts", "level", "node", "msg")})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)


def configure(log_format: Literal["json", "text"], level: str, node: str) -> None:
    """Root logging to stderr, as text or as JSON lines written by ``node``."""
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format=TEXT_FORMAT, force=True)
    if log_format == "json":
        formatter = JsonFormatter(node)
        for handler in logging.getLogger().handlers:
            handler.setFormatter(formatter)


def _json_formatter() -> JsonFormatter | None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return handler.formatter
    return None


def console_line(message: str, *, level: int = logging.INFO, prefix: str = "stellarops: ") -> str:
    """What a command prints for the operator: ``prefix + message``, or with JSON logs one JSON
    object (``msg`` is the message) by the same formatter as the logs."""
    formatter = _json_formatter()
    if formatter is None:
        return prefix + message
    record = logging.LogRecord("stellarops", level, __file__, 0, message, None, None)
    return formatter.format(record)
