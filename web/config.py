"""The gateway's settings, from the environment (``GatewayConfig.from_env``).

| variable | meaning | default |
|---|---|---|
| ``STELLAROPS_HTTP_HOST`` | address to listen on | ``127.0.0.1`` |
| ``STELLAROPS_HTTP_PORT`` | port (0: any free port) | ``8080`` |
| ``STELLAROPS_CORS_ORIGINS`` | comma-separated origins allowed cross-origin (``*``: any) | none (CORS off) |
| ``STELLAROPS_HTTP_MAX_BODY`` | largest request body, bytes | ``65536`` |
| ``STELLAROPS_SSE_QUEUE`` | events waiting per SSE client before it is dropped | ``2000`` |
| ``STELLAROPS_SSE_WRITE_TIMEOUT_S`` | a write to an SSE client not done after this: the client is dropped | ``10`` |
| ``STELLAROPS_SSE_SEND_BUFFER`` | socket send buffer of an SSE connection, bytes (0: the kernel's) | ``65536`` |
| ``STELLAROPS_SSE_HEARTBEAT_S`` | idle seconds between SSE heartbeat comments | ``15`` |
| ``STELLAROPS_SAT_CACHE_S`` | oldest snapshot GET /api/satellites/{id} may answer from (0: ask BEAM every time) | ``5`` |
| ``STELLAROPS_ACCESS_LOG`` | access log: a file, ``-`` for stdout, ``off`` | ``$STELLAROPS_HOME/log/gateway-access.jsonl``, else stdout |
| ``STELLAROPS_DASHBOARD_DIR`` | the built dashboard (relative: to the repository) | ``web/dashboard/dist`` |
| ``STELLAROPS_HTTP_ANONYMOUS_ROLE`` | ``viewer``: requests without a token may read (viewer routes) | ``none`` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

__all__ = ["DEFAULT_DASHBOARD_DIR", "REPO_ROOT", "GatewayConfig"]

REPO_ROOT: Final = Path(__file__).resolve().parent.parent  # the web package's parent
DEFAULT_DASHBOARD_DIR: Final = REPO_ROOT / "web" / "dashboard" / "dist"
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
    dashboard_dir: Path = DEFAULT_DASHBOARD_DIR
    anonymous_role: AnonymousRole | None = None  # None: every API request needs a token

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewayConfig:
        """The settings from ``env`` (default ``os.environ``); ValueError names a bad variable."""
        env = os.environ if env is None else env
        origins = tuple(o.strip() for o in env.get("STELLAROPS_CORS_ORIGINS", "").split(",") if o.strip())
        access_log: str | None = env.get("STELLAROPS_ACCESS_LOG", "").strip()
        if not access_log:
            home = env.get("STELLAROPS_HOME", "").strip()
            access_log = os.path.join(home, "log", "gateway-access.jsonl") if home else "-"
        elif access_log == "off":
            access_log = None
        return cls(
            host=env.get("STELLAROPS_HTTP_HOST", "").strip() or cls.host,
            port=_int(env, "STELLAROPS_HTTP_PORT", cls.port, 0, 65535),
            cors_origins=origins,
            max_body_bytes=_int(env, "STELLAROPS_HTTP_MAX_BODY", cls.max_body_bytes, 1024, 64 << 20),
            sse_queue_events=_int(env, "STELLAROPS_SSE_QUEUE", cls.sse_queue_events, 1, 1_000_000),
            sse_heartbeat_s=_float(env, "STELLAROPS_SSE_HEARTBEAT_S", cls.sse_heartbeat_s, 0.05, 3600.0),
            sse_write_timeout_s=_float(env, "STELLAROPS_SSE_WRITE_TIMEOUT_S", cls.sse_write_timeout_s, 0.1, 3600.0),
            sse_send_buffer_bytes=_int(env, "STELLAROPS_SSE_SEND_BUFFER", cls.sse_send_buffer_bytes, 0, 64 << 20),
            sat_cache_s=_float(env, "STELLAROPS_SAT_CACHE_S", cls.sat_cache_s, 0.0, 3600.0),
            access_log=access_log,
            dashboard_dir=_dashboard_dir(env),
            anonymous_role=_anonymous_role(env),
        )


def _dashboard_dir(env: Mapping[str, str]) -> Path:
    """A relative path is taken from the repository, not the working directory: BEAM starts the
    gateway node, so its working directory is not the operator's."""
    text = env.get("STELLAROPS_DASHBOARD_DIR", "").strip()
    return REPO_ROOT / Path(text).expanduser() if text else DEFAULT_DASHBOARD_DIR


def _anonymous_role(env: Mapping[str, str]) -> AnonymousRole | None:
    """Opt-in only, and never above viewer: anonymous writes would bypass the audit trail."""
    text = env.get("STELLAROPS_HTTP_ANONYMOUS_ROLE", "").strip()
    if text.lower() in ("", "none"):
        return None
    if text.lower() == "viewer":
        return "viewer"
    raise ValueError(f"STELLAROPS_HTTP_ANONYMOUS_ROLE={text!r:.40} must be none or viewer")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r:.40} is not an integer") from None
    if not low <= value <= high:
        raise ValueError(f"{name}={value} is outside {low}..{high}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r:.40} is not a number") from None
    if not low <= value <= high:
        raise ValueError(f"{name}={value} is outside {low}..{high}")
    return value
