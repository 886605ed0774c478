"""Accepted connections that have not finished the handshake: a cap, counters, quiet warnings.

A new accepted connection beyond ``max_handshakes`` closes the oldest, so an idle flood cannot
lock real peers out; the deadline itself is the connection's. Each drop cause is counted in
``HandshakeStats`` and logged at most once a minute.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .connection import Connection
from .errors import HandshakeError
from .handshake import Acceptor, Initiator
from .terms import Atom

__all__ = ["HandshakeGuard", "HandshakeStats"]

log = logging.getLogger("erldist.node")  # the node's logger: these lines are about the node


@dataclass
class HandshakeStats:
    """Connections the node closed before they finished the handshake, by cause (since start)."""

    timed_out: int = 0  # still mid-handshake at the deadline: silent, or stopped half-way
    evicted: int = 0  # the oldest accepted one, closed to make room beyond ``max_handshakes``
    failed: int = 0  # sent something that is not a handshake (before naming a node)
    tls_refused: int = 0  # with TLS: no certificate the CA signed, not TLS, or too slow


class _RateLimitedWarning:
    """At most one warning per ``interval_s``; the next one says how many were held back.

    A flood of garbage connections must not become a flood of log lines."""

    def __init__(self, logger: logging.Logger, interval_s: float) -> None:
        self._log = logger
        self._interval_s = interval_s
        self._last = -interval_s
        self._held_back = 0

    def __call__(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._interval_s:
            self._held_back += 1
            return
        held_back, self._held_back, self._last = self._held_back, 0, now
        if held_back:
            message += f" ({held_back} similar not logged in the last {self._interval_s:.0f} s)"
        self._log.warning(message, *args)


class HandshakeGuard:
    """Tracks accepted connections mid-handshake (oldest first) for one node."""

    def __init__(self, node_name: Atom, *, handshake_timeout_s: float, max_handshakes: int) -> None:
        self._node_name = node_name
        self._timeout_s = handshake_timeout_s
        self.max_handshakes = max_handshakes
        self.stats = HandshakeStats()
        self._handshaking: dict[Connection, None] = {}
        # One limiter per cause: each cause shows in the log at least once a minute.
        self._evicted_warning = _RateLimitedWarning(log, 60.0)
        self._timeout_warning = _RateLimitedWarning(log, 60.0)
        self._garbage_warning = _RateLimitedWarning(log, 60.0)
        self._tls_warning = _RateLimitedWarning(log, 60.0)

    def in_progress(self) -> int:
        return len(self._handshaking)

    def started(self, conn: Connection) -> None:
        """An accepted connection begins its handshake; beyond the cap the oldest one is closed."""
        while len(self._handshaking) >= self.max_handshakes:
            oldest = next(iter(self._handshaking))
            del self._handshaking[oldest]
            self.stats.evicted += 1
            self._evicted_warning(
                "%s: more than %d connections mid-handshake; closing the oldest (from %s)",
                self._node_name, self.max_handshakes, oldest.peer_address(),
            )  # fmt: skip
            oldest.abort()
        self._handshaking[conn] = None

    def ended(self, conn: Connection) -> None:
        self._handshaking.pop(conn, None)

    def timed_out(self, conn: Connection) -> None:
        self.stats.timed_out += 1
        self._timeout_warning(
            "%s: closed a connection from %s that did not finish the handshake within %.1f s",
            self._node_name, conn.peer_address(), self._timeout_s,
        )  # fmt: skip

    def failed(self, conn: Connection, hs: Initiator | Acceptor, exc: HandshakeError) -> None:
        if isinstance(hs, Initiator) and hs.status == "nok":
            log.debug("%s: simultaneous connect to %s resolved in its favour", self._node_name, hs.peer_name)
        elif not hs.peer_name:
            # Not even a node name: garbage, a port scanner or another protocol. Counted, and
            # logged at most once a minute.
            self.stats.failed += 1
            self._garbage_warning("%s: closed a connection from %s: %s", self._node_name, conn.peer_address(), exc)
        else:
            log.warning("%s: connection with %s refused: %s", self._node_name, hs.peer_name or "?", exc)

    def tls_refused(self, peer_address: str, exc: BaseException) -> None:
        """An accepted connection did not get through the TLS handshake (before any node name)."""
        self.stats.tls_refused += 1
        self._tls_warning("%s: refused a TLS connection from %s: %s", self._node_name, peer_address, exc or "timeout")

    def tls_evicted(self, peer_address: str) -> None:
        """An accepted connection mid-TLS-handshake closed to make room (as ``started`` does)."""
        self.stats.evicted += 1
        self._evicted_warning(
            "%s: more than %d connections mid-handshake; closing the oldest (from %s)",
            self._node_name, self.max_handshakes, peer_address,
        )  # fmt: skip

    def abort_all(self) -> None:
        for conn in list(self._handshaking):
            conn.abort()
