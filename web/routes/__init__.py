"""The routes of the gateway, one module per resource; ``ROUTES`` lists every one."""

from __future__ import annotations

from typing import Final

from .. import openapi
from ..spec import RouteSpec
from . import (
    alarms,
    commands,
    events,
    limits,
    satellites,
    session,
    stations,
    system,
    tasks,
    telemetry,
)

__all__ = ["ROUTES"]

ROUTES: Final[list[RouteSpec]] = [
    *satellites.ROUTES,
    *commands.ROUTES,
    *telemetry.ROUTES,
    *stations.ROUTES,
    *tasks.ROUTES,
    *alarms.ROUTES,
    *limits.ROUTES,
    *system.ROUTES,
    *events.ROUTES,
    *session.ROUTES,
    *openapi.ROUTES,
]
