"""The gateway's settings: its part of ``py_nodes.settings`` (the one module that reads the
environment; the README's configuration table lists the variables), plus what only tests change
(token cache, rpc timeout).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from py_nodes.settings import (
    DEFAULT_DASHBOARD_DIR,
    REPO_ROOT,
    GatewaySettings,
    SchedulerSettings,
    Settings,
)

__all__ = ["DEFAULT_DASHBOARD_DIR", "REPO_ROOT", "GatewayConfig"]

@dataclass(frozen=True)
class GatewayConfig(GatewaySettings):
    """The gateway's settings (``py_nodes.settings.GatewaySettings``) and what only tests change."""

    access_log: str | None = None  # None: no access log (tests); "-": stdout; else a file
    token_cache_s: float = 10.0
    rpc_timeout_s: float = 5.0
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)  # what-if plans as the scheduler does

    @classmethod
    def from_settings(cls, gateway: GatewaySettings) -> GatewayConfig:
        """The gateway's part of the project's settings."""
        return cls(**{f.name: getattr(gateway, f.name) for f in fields(gateway)})

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GatewayConfig:
        """From an environment mapping (tests); SettingsError (a ValueError) names a bad variable."""
        return cls.from_settings(Settings.from_env(env).gateway)
