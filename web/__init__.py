"""The StellarOps HTTP gateway: REST, server-sent events, OpenAPI, bearer-token auth, metrics.

``create_app`` builds the aiohttp application over a ``Cluster`` (``ErldistCluster`` in a node,
a fake in tests) and a ``Database``; ``web.role.start`` is the ``gateway`` node role.
"""

from .app import create_app
from .cluster import (
    Cluster,
    ClusterError,
    ClusterFault,
    ClusterRefusal,
    ClusterUnavailable,
    ErldistCluster,
    Event,
)
from .config import GatewayConfig
from .openapi import build_document

__all__ = [
    "Cluster",
    "ClusterError",
    "ClusterFault",
    "ClusterRefusal",
    "ClusterUnavailable",
    "ErldistCluster",
    "Event",
    "GatewayConfig",
    "build_document",
    "create_app",
]
