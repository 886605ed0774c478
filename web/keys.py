"""Typed keys of the services an app holds (``request.app[CLUSTER]``...)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from py_nodes.db import Database

from .accesslog import AccessLog
from .cluster import Cluster
from .config import GatewayConfig
from .metrics import GatewayMetrics
from .mirror import SatMirror
from .sse import EventHub

__all__ = ["ACCESS_LOG", "CLUSTER", "CONFIG", "DATABASE", "HUB", "METRICS", "MIRROR"]

CLUSTER: Final = web.AppKey("cluster", Cluster)
DATABASE: Final = web.AppKey("database", Database)
HUB: Final = web.AppKey("hub", EventHub)
METRICS: Final = web.AppKey("metrics", GatewayMetrics)
CONFIG: Final = web.AppKey("config", GatewayConfig)
MIRROR: Final = web.AppKey("mirror", SatMirror)
ACCESS_LOG: Final = web.AppKey("access_log", AccessLog)
