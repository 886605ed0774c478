"""The gateway's settings: its part of ``py_nodes.settings`` (the one module that reads the
environment; the README's configuration table lists the variables), plus what only tests change
(token cache, rpc timeout).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from py_nodes.settings import DEFAULT_DASHBOARD_DIR, REPO_ROOT, GatewaySettings, Settings

__all__ = ["DEFAULT_DASHBOARD_DIR", "REPO_ROOT", "GatewayConfig"]

AnonymousRole = Literal["viewer"]


@dataclass(frozen=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024
    sse_queue_events: int = 2000
    sse_heartbeat_s: float = 15.0
    sse_write_timeout_s: float = 10.0
    sse_send_buffer_bytes: int = 64 * 1024
    token_cache_s: float = 10.0
    rpc_timeout_s: float = 5.0
    sat_cache_s: float = 5.0
    access_log: str | None = None  # None: no access log (tests); "-": stdout; else a file
    log_dir: Path | None = None  # the state folder's log folder: ours, kept 0700
    dashboard_dir: Path = DEFAULT_DASHBOARD_DIR
    anonymous_role: AnonymousRole | None = None  # None: every API request needs a token

    @classmethod
    def from_settings(cls, gateway: GatewaySettings) -> GatewayConfig:
        """The gateway's part of the project's settings (``py_nodes.settings``)."""
        return cls(
            host=gateway.host,
            port=gateway.port,
            cors_origins=gateway.cors_origins,
            max_body_bytes=gateway.max_body_bytes,
            sse_queue_events=gateway.sse_queue_events,
            sse_heartbeat_s=gateway.sse_heartbeat_s,
            sse_write_timeout_s=gateway.sse_write_timeout_s,
            sse_send_buffer_bytes=gateway.sse_send_buffer_bytes,
            sat_cache_s=gateway.sat_cache_s,
            access_log=gateway.access_log,
            log_dir=gateway.log_dir,
            dashboard_dir=gateway.dashboard_dir,
            anonymous_role=gateway.anonymous_role,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GatewayConfig:
        """From an environment mapping (tests); SettingsError (a ValueError) names a bad variable."""
        return cls.from_settings(Settings.from_env(env).gateway)
