"""The gateway's log context: the request id and satellite id of the request being served.

The JSON-lines formatter and the context variables live in ``py_nodes.logs`` (every Python node
logs the same way); the gateway sets the variables (``observe``, the routes), so application
logs written while a request is served carry ``request_id`` and ``sat_id``.
"""

from __future__ import annotations

from py_nodes.logs import JsonFormatter, request_id_var, sat_id_var

__all__ = ["JsonFormatter", "request_id_var", "sat_id_var"]
