"""The ``gateway`` node role: the HTTP API of the cluster, served from a Python node.

Needs ``STELLAROPS_BEAM_NODE`` (set by BEAM for every Python node it starts) and
``DATABASE_URL`` (set by ``stellarops up``); listens on ``STELLAROPS_HTTP_HOST``:
``STELLAROPS_HTTP_PORT`` (see ``web.config``). A port that cannot be bound is retried every few
seconds rather than ending the node: a node that dies at once, again and again, would exhaust
its supervisor's restart intensity and take the control plane down with it. The rpc
``gateway:info()`` answers ``#{url => Url, port => Port}`` once it listens (``{error,
not_listening}`` before), which ``stellarops up`` prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any, Final

from aiohttp import web

from py_nodes.db import Database
from py_nodes.erldist import Atom, Node
from py_nodes.settings import Settings

from .app import create_app
from .cluster import ErldistCluster
from .config import GatewayConfig

__all__ = ["Gateway", "start"]

log = logging.getLogger("stellarops.web")

BIND_RETRY_S: Final = 5.0


class Gateway:
    def __init__(self, node: Node, beam_node: str, conninfo: str, config: GatewayConfig) -> None:
        self.node = node
        self.config = config
        self.db = Database(conninfo, min_size=1, max_size=8, timeout_s=3.0, name="gateway")
        self.cluster = ErldistCluster(node, beam_node, timeout_s=config.rpc_timeout_s)
        self.app = create_app(self.cluster, self.db, config, dist_connections=self._dist_connections)
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        self.port: int | None = None
        self._task: asyncio.Task[None] | None = None

    def _dist_connections(self) -> Iterable[tuple[str, int, int]]:
        for peer in self.node.connected_nodes():
            conn = self.node.connection(peer)
            if conn is not None:
                yield str(peer), conn.messages_in, conn.messages_out

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        await self.runner.setup()
        while True:
            site = web.TCPSite(self.runner, self.config.host, self.config.port, reuse_address=True)
            try:
                await site.start()
                break
            except OSError as exc:
                log.error("gateway: cannot listen on %s:%d (%s); retrying in %.0f s", self.config.host, self.config.port,
                          exc.strerror or exc, BIND_RETRY_S)  # fmt: skip
                await asyncio.sleep(BIND_RETRY_S)
        address = self.runner.addresses[0]
        self.port = int(address[1])
        log.info("gateway: listening on %s", self.url)

    @property
    def url(self) -> str | None:
        if self.port is None:
            return None
        host = self.config.host
        shown = f"[{host}]" if ":" in host else ("127.0.0.1" if host in ("0.0.0.0", "") else host)
        return f"http://{shown}:{self.port}"

    def info(self) -> Any:
        if self.url is None:
            return (Atom("error"), Atom("not_listening"))
        return {Atom("url"): self.url.encode(), Atom("port"): self.port}

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.runner.cleanup()


def start(node: Node, settings: Settings) -> Callable[[], Awaitable[None]]:
    """Start the gateway on ``node`` (``py_nodes.roles.gateway`` calls this); returns what to
    await on a clean stop. ValueError for a bad configuration."""
    config = replace(GatewayConfig.from_settings(settings.gateway), scheduler=settings.scheduler)
    beam_node = settings.node.beam_node
    if not beam_node:
        raise ValueError("the gateway role needs STELLAROPS_BEAM_NODE (BEAM sets it for the nodes it starts)")
    conninfo = settings.database.url
    if not conninfo:
        raise ValueError("the gateway role needs DATABASE_URL (stellarops up sets it)")
    logging.getLogger("psycopg.pool").setLevel(max(logging.WARNING, logging.getLogger().level))
    gateway = Gateway(node, beam_node, conninfo, config)
    node.register_rpc("gateway", "info", gateway.info)
    gateway.start()
    return gateway.close
