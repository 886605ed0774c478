"""The ``gateway`` node role: the HTTP API and dashboard of the cluster (``web/``).

The one place where ``py_nodes`` reaches up into ``web``, and lazily: aiohttp is imported only by
the node that serves HTTP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from py_nodes.erldist import Node
from py_nodes.settings import Settings

__all__ = ["start"]


def start(node: Node, settings: Settings) -> Callable[[], Awaitable[None]]:
    """The role's entry point for ``stellarops node --role gateway``; what to await on a clean stop."""
    from web.role import start as start_gateway

    return start_gateway(node, settings)
