"""What the parts of a node need from the node, as protocols: the upward half of each dependency.

A process asks its node to send and link; a connection hands its frames to its owner; incoming
signals and spawn requests reach the node's processes. Typing those back-references against the
concrete classes would make the modules import each other, so they are typed against these
protocols instead. A module imports only modules on earlier lines, or earlier on its own line::

    terms errors flags etf handshake epmd tls              leaves: terms, codec, sans-IO handshake, TLS contexts
    interfaces                                             this module: protocols only
    process connection                                     typed against ProcessHost / ConnectionOwner
    registry gen_server client rpc control handshake_guard one job each (rpc, control: NodeRuntime)
    connections signals                                    connection manager, signal routing
    node                                                   the facade that wires them together

``tests/test_import_graph.py`` fails on any import cycle here. ``P`` stands for the process class and ``C``
for the connection class, so that this module needs neither.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

from .errors import HandshakeError
from .handshake import Acceptor, Initiator
from .terms import Atom, Pid, Reference

__all__ = ["ConnectionOwner", "Dest", "NodeRuntime", "ProcessHost", "RpcFunction"]

# A destination: a pid, a locally registered name, or (name, node) anywhere.
Dest = Pid | str | tuple[str, str]
RpcFunction = Callable[..., Any]

P = TypeVar("P")
C_contra = TypeVar("C_contra", contravariant=True)


class ProcessHost(Protocol[P]):
    """The node as a process, and the code running in one, sees it (``process.node``)."""

    @property
    def name(self) -> Atom: ...

    def make_ref(self) -> Reference: ...

    def process(self, name: str | None = None) -> P: ...

    def spawn(
        self,
        body: Callable[..., Awaitable[Any]],
        *args: Any,
        name: str | None = None,
        link: Pid | None = None,
        trap_exit: bool = False,
    ) -> P: ...

    def register(self, proc: P, name: str) -> None: ...

    def terminate(self, proc: P, reason: Any) -> None: ...

    def send(self, sender: Pid, dest: Dest, message: Any) -> None: ...

    async def asend(self, sender: Pid, dest: Dest, message: Any) -> None: ...

    def link(self, proc: P, pid: Pid) -> None: ...

    def unlink(self, proc: P, pid: Pid) -> None: ...

    def monitor(self, proc: P, target: Dest) -> Reference: ...

    def demonitor(self, proc: P, ref: Reference) -> None: ...

    def send_exit(self, sender: Pid, pid: Pid, reason: Any) -> None: ...

    async def call(self, dest: Dest, request: Any, timeout: float | None = 5.0) -> Any: ...

    def cast(self, dest: Dest, request: Any) -> None: ...

    async def rpc(
        self, node_name: str, module: str, function: str, args: list[Any], timeout: float | None = 5.0
    ) -> Any: ...


class NodeRuntime(ProcessHost[P], Protocol[P]):
    """What incoming control messages and spawn requests (``control``, ``rpc``) need besides."""

    def local(self, pid: Pid) -> P | None: ...

    def named(self, name: Atom) -> P | None: ...

    def create_task(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...

    def rpc_function(self, module: str, function: str) -> RpcFunction | None: ...


class ConnectionOwner(Protocol[C_contra]):
    """Who a connection reports to: handshake progress, up/down, and every frame in order."""

    @property
    def name(self) -> Atom: ...

    @property
    def handshake_timeout_s(self) -> float: ...

    def handshake_started(self, conn: C_contra) -> None: ...

    def handshake_ended(self, conn: C_contra) -> None: ...

    def handshake_timed_out(self, conn: C_contra) -> None: ...

    def handshake_failed(self, conn: C_contra, hs: Initiator | Acceptor, exc: HandshakeError) -> None: ...

    def connection_up(self, conn: C_contra) -> bool: ...

    def connection_lost(self, conn: C_contra) -> None: ...

    def dispatch(self, conn: C_contra, control: Any, message: Any) -> None: ...
