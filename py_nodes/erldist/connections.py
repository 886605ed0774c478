"""The connection manager: one live connection per peer node, set up on first use.

Outgoing connections are looked up in the peer's epmd and set up in a task; frames sent
meanwhile wait in order in a ``Pending``. Simultaneous connects are settled as dist_util does
(the greater node name's attempt survives). A lost connection is reported once to
``on_node_down`` so that everything that crossed it can end with ``noconnection``.

With ``tls`` every connection runs inside TLS (``inet_tls_dist``): outgoing ones verify the peer's
certificate; accepted ones go through the TLS handshake first (``_TlsAccept``), and one that fails
it (no certificate the CA signed, plain TCP, or not done within the handshake timeout) is closed,
counted and logged before any node name is read.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, cast

from . import epmd
from .connection import NO_PAYLOAD, Connection
from .errors import HandshakeError, NodeDownError
from .handshake import Acceptor, Initiator, Status
from .handshake_guard import HandshakeGuard, HandshakeStats
from .terms import Atom
from .tls import DistTls

__all__ = ["ConnectionManager", "Pending"]

log = logging.getLogger("erldist.node")  # the node's logger: these lines are about the node


class Pending:
    """An outgoing connection being set up; frames sent meanwhile wait here in order."""

    def __init__(self, future: asyncio.Future[Connection]) -> None:
        self.future = future
        self.frames: list[tuple[Any, Any]] = []
        self.attempt: Connection | None = None

    def send(self, control: Any, message: Any = NO_PAYLOAD) -> None:
        self.frames.append((control, message))


class ConnectionManager:
    """Connections of one node to its peers, in both directions; the owner of each Connection."""

    def __init__(
        self,
        name: Atom,
        cookie: bytes,
        flags: int,
        *,
        epmd_port: int,
        net_ticktime_s: float,
        connect_timeout_s: float,
        handshake_timeout_s: float,
        max_handshakes: int,
        high_water_bytes: int,
        hard_limit_bytes: int,
        dispatch: Callable[[Connection, Any, Any], None],
        on_node_down: Callable[[Atom], None],
        tls: DistTls | None = None,
    ) -> None:
        self.name = name
        self._cookie = cookie
        self.flags = flags
        self.creation = 0  # set when the node has registered with epmd
        self.accepting = False  # handshakes are refused until the node is started
        self._epmd_port = epmd_port
        self._tick_interval_s = net_ticktime_s / 4
        self._connect_timeout_s = connect_timeout_s
        self.handshake_timeout_s = handshake_timeout_s
        self._high_water = high_water_bytes
        self._hard_limit = hard_limit_bytes
        self._dispatch = dispatch
        self._on_node_down = on_node_down
        self.tls = tls
        self._header_bytes = 2 if tls is None else 4  # inet_tls_dist frames the handshake with 4 bytes
        self._tls_handshaking: OrderedDict[asyncio.Transport, str] = OrderedDict()  # accepted, oldest first
        self._tls_evicted: set[asyncio.Transport] = set()
        self.guard = HandshakeGuard(name, handshake_timeout_s=handshake_timeout_s, max_handshakes=max_handshakes)
        self.conns: dict[Atom, Connection] = {}
        self._connecting: dict[Atom, Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def stats(self) -> HandshakeStats:
        return self.guard.stats

    # -- using connections ---------------------------------------------------------------

    def get(self, peer: Atom) -> Connection | None:
        return self.conns.get(peer)

    def outbound(self, peer: Atom) -> Connection | Pending:
        """Where to send frames for ``peer`` now: its connection, or the one being set up."""
        conn = self.conns.get(peer)
        if conn is not None:
            return conn
        pending = self._connecting.get(peer)
        return pending if pending is not None else self._start_connect(peer)

    async def connect(self, peer: Atom) -> Connection:
        conn = self.conns.get(peer)
        if conn is not None:
            return conn
        pending = self._connecting.get(peer) or self._start_connect(peer)
        return await asyncio.shield(pending.future)

    def close_all(self) -> list[asyncio.Task[None]]:
        """Close every connection and attempt; returns the connect tasks still to be awaited."""
        for conn in list(self.conns.values()):
            conn.close()
        for pending in list(self._connecting.values()):
            if pending.attempt is not None:
                pending.attempt.close()
        self.guard.abort_all()
        for transport in list(self._tls_handshaking):
            transport.abort()
        return [t for t in self._tasks if not t.done()]

    # -- setting up ----------------------------------------------------------------------

    def _start_connect(self, peer: Atom) -> Pending:
        if peer == self.name:
            raise ValueError("a node cannot connect to itself")
        future: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        pending = Pending(future)
        self._connecting[peer] = pending
        task = asyncio.get_running_loop().create_task(self._connect(peer, pending))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return pending

    async def _connect(self, peer: Atom, pending: Pending) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                alive, _, host = peer.partition("@")
                address = await epmd.lookup(alive, host, epmd_port=self._epmd_port)
                hs = Initiator(self.name, self.flags, self.creation, self._cookie, header_bytes=self._header_bytes)
                if self.tls is None:
                    _, conn = await loop.create_connection(lambda: self._connection(hs), host, address.port)
                else:  # no server name: trust is the CA's signature (see tls.py)
                    _, conn = await loop.create_connection(
                        lambda: self._connection(hs), host, address.port,
                        ssl=self.tls.client, server_hostname="", ssl_handshake_timeout=self.handshake_timeout_s,
                    )  # fmt: skip
                pending.attempt = conn
                try:
                    await conn.established
                except HandshakeError:
                    if hs.status != "nok":
                        raise
                    # Simultaneous connect that the peer won: its connection to us will do.
                    await asyncio.shield(pending.future)
        except (OSError, NodeDownError, HandshakeError, TimeoutError) as exc:
            if isinstance(exc, ssl.SSLError):  # e.g. its certificate is not from our CA
                log.warning("%s: TLS connection to %s failed: %s", self.name, peer, exc)
            attempt = pending.attempt
            if attempt is not None and self.conns.get(peer) is not attempt:
                attempt.abort()  # given up (e.g. connect_timeout_s): its socket must not linger
            if self._connecting.get(peer) is pending and not pending.future.done():
                del self._connecting[peer]
                error = NodeDownError(f"cannot connect to {peer}: {exc or 'timeout'}")
                pending.future.set_exception(error)
                pending.future.exception()  # retrieved here; callers get it too
                self._on_node_down(peer)

    def accept(self) -> Connection:
        """The protocol factory for the node's listening socket (plain TCP)."""
        return self._connection(
            Acceptor(self.name, self.flags, self.creation, self._cookie, self._decide, header_bytes=self._header_bytes)
        )

    def accept_tls(self) -> asyncio.Protocol:
        """The protocol factory for the node's listening socket with TLS."""
        return _TlsAccept(self)

    async def _start_tls(self, transport: asyncio.Transport, waiting: _TlsAccept) -> None:
        assert self.tls is not None
        peer = transport.get_extra_info("peername")
        address = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"
        # TLS handshakes count against max_handshakes too: beyond it the oldest one is closed.
        while len(self._tls_handshaking) >= self.guard.max_handshakes:
            oldest, oldest_address = self._tls_handshaking.popitem(last=False)
            self._tls_evicted.add(oldest)
            self.guard.tls_evicted(oldest_address)
            oldest.abort()
        self._tls_handshaking[transport] = address
        try:
            tls_transport = await asyncio.get_running_loop().start_tls(
                transport, waiting, self.tls.server, server_side=True, ssl_handshake_timeout=self.handshake_timeout_s
            )
        except (OSError, TimeoutError, ConnectionError) as exc:  # ssl.SSLError is an OSError
            transport.abort()
            if transport in self._tls_evicted:
                self._tls_evicted.discard(transport)  # counted and logged as evicted
            else:
                self.guard.tls_refused(address, exc)
            return
        finally:
            self._tls_handshaking.pop(transport, None)
        if tls_transport is None or not self.accepting:
            transport.abort()
            return
        waiting.hand_over(self.accept(), tls_transport)

    def spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _connection(self, hs: Initiator | Acceptor) -> Connection:
        return Connection(
            self,
            hs,
            tick_interval_s=self._tick_interval_s,
            high_water_bytes=self._high_water,
            hard_limit_bytes=self._hard_limit,
        )

    def _decide(self, peer_name: str) -> Status:
        peer = Atom(peer_name)
        if peer == self.name or not self.accepting:
            return "not_allowed"
        if peer in self.conns:
            return "alive"
        if peer in self._connecting:
            # Both sides are connecting: the greater name's attempt survives (as dist_util does).
            return "nok" if self.name > peer else "ok_simultaneous"
        return "ok"

    # -- what connections report (ConnectionOwner) ---------------------------------------

    def handshake_started(self, conn: Connection) -> None:
        self.guard.started(conn)

    def handshake_ended(self, conn: Connection) -> None:
        self.guard.ended(conn)

    def handshake_timed_out(self, conn: Connection) -> None:
        self.guard.timed_out(conn)

    def handshake_failed(self, conn: Connection, hs: Initiator | Acceptor, exc: HandshakeError) -> None:
        self.guard.failed(conn, hs, exc)

    def connection_up(self, conn: Connection) -> bool:
        peer = Atom(conn.peer_name)
        old = self.conns.get(peer)
        if old is not None and old is not conn:
            # The peer said our connection is stale ('alive' answered 'true'): drop it.
            self.conns.pop(peer)
            old.abort()
            self._on_node_down(peer)
        self.conns[peer] = conn
        pending = self._connecting.pop(peer, None)
        if pending is not None:
            if pending.attempt is not None and pending.attempt is not conn:
                pending.attempt.close()
            for control, message in pending.frames:
                conn.send(control, message)
            if not pending.future.done():
                pending.future.set_result(conn)
        log.info("%s: connected to %s", self.name, peer)
        return True

    def connection_lost(self, conn: Connection) -> None:
        peer = Atom(conn.peer_name)
        if self.conns.get(peer) is conn:
            del self.conns[peer]
            log.info("%s: connection to %s lost", self.name, peer)
            self._on_node_down(peer)

    def dispatch(self, conn: Connection, control: Any, message: Any) -> None:
        self._dispatch(conn, control, message)


class _TlsAccept(asyncio.Protocol):
    """An accepted socket until its TLS handshake is done; then its ``Connection`` takes over.

    Stands in as the protocol during ``start_tls``: what arrives between the end of the TLS
    handshake and the hand-over (the peer's first handshake message) is kept and passed on."""

    def __init__(self, manager: ConnectionManager) -> None:
        self._manager = manager
        self._target: Connection | None = None
        self._early: list[bytes] = []
        self._lost: tuple[Exception | None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = cast(asyncio.Transport, transport)  # a cast: uvloop's transports are not asyncio's
        raw.pause_reading()  # the ClientHello is for the TLS layer: start_tls reads it
        self._manager.spawn(self._manager._start_tls(raw, self))

    def data_received(self, data: bytes) -> None:
        if self._target is not None:
            self._target.data_received(data)
        else:
            self._early.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._target is not None:
            self._target.connection_lost(exc)
        else:
            self._lost = (exc,)

    def hand_over(self, conn: Connection, tls_transport: asyncio.Transport) -> None:
        self._target = conn
        tls_transport.set_protocol(conn)
        conn.connection_made(tls_transport)
        for data in self._early:
            conn.data_received(data)
        self._early.clear()
        if self._lost is not None:
            conn.connection_lost(self._lost[0])
