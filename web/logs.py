"""JSON-lines logs with the request id and satellite id of the request being served.

``JsonFormatter`` writes one JSON object per record (``ts``, ``level``, ``logger``, ``msg``, and
``request_id`` / ``sat_id`` when a request sets them, plus the fields of ``extra={"fields":
{...}}``). The ids live in context variables, so application logs written while a request is
served carry them too. Nothing here runs on import: ``use_json_logs()`` switches the root
handlers (the gateway role calls it).
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "request_id_var", "sat_id_var", "use_json_logs"]

request_id_var: ContextVar[str | None] = ContextVar("stellarops_request_id", default=None)
sat_id_var: ContextVar[str | None] = ContextVar("stellarops_sat_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id, sat_id = request_id_var.get(), sat_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if sat_id is not None:
            entry["sat_id"] = sat_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)


def use_json_logs() -> None:
    """Format every root handler's records as JSON lines."""
    formatter = JsonFormatter()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
