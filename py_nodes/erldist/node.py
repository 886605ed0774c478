"""A Python Erlang node: processes, names, links, monitors, connections to other nodes.

    async with Node("py@127.0.0.1", cookie=b"secret") as node:
        proc = node.spawn(body)            # body(proc) runs as the process's own task
        reply = await node.call(("echo", "other@127.0.0.1"), request)

No globals: several nodes can live in one event loop. The node is hidden unless
``published=True`` (while published, ``global:sync()`` on an Erlang node blocks, because global
expects a ``global_name_server`` that a Python node does not run).

``Node`` is the facade; the work is done by its parts: the process table (``registry``), signal
routing (``signals``), the connection manager (``connections``, ``handshake_guard``), incoming
control messages (``control``, ``rpc``) and the call/rpc client (``client``).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from . import client, control, epmd, flags
from .connection import Connection
from .connections import ConnectionManager
from .errors import NodeDownError, ProcessExitError
from .gen_server import GEN_CALL, GEN_CAST, GenServer, serve
from .handshake_guard import HandshakeStats
from .interfaces import Dest, RpcFunction
from .process import KILLED, NORMAL, Process, python_exception_reason
from .registry import ProcessTable
from .signals import Signals
from .terms import Atom, Pid, Reference
from .tls import DistTls

__all__ = ["HandshakeStats", "Node", "RpcFunction"]

log = logging.getLogger("erldist.node")


class Node:
    """An Erlang node implemented in Python. Use as ``async with Node(...) as node``."""

    def __init__(
        self,
        name: str,
        *,
        cookie: bytes | str,
        published: bool = False,
        net_ticktime_s: float = 60.0,
        listen_host: str | None = None,
        connect_timeout_s: float = 7.0,
        handshake_timeout_s: float = 7.0,
        max_handshakes: int = 256,
        high_water_bytes: int = 4 << 20,
        hard_limit_bytes: int = 64 << 20,
        epmd_address: epmd.EpmdAddress = epmd.DEFAULT_EPMD,
        tls: DistTls | None = None,
    ) -> None:
        """``handshake_timeout_s``: a connection not through the handshake by then is closed (OTP's
        net_setuptime, 7 s). ``max_handshakes``: accepted connections allowed mid-handshake at once;
        a new one beyond that closes the oldest, so idle floods cannot lock real peers out.
        ``epmd_address``: the local epmd (started if none answers); peers are looked up in the
        epmd on their own host, at the same port. ``tls``: every connection, in and out, runs
        inside TLS with these certificates (as ``-proto_dist inet_tls``); epmd stays plain."""
        if "@" not in name:
            name = f"{name}@{socket.gethostname().split('.')[0]}"
        alive, host = name.split("@", 1)
        if not alive or not host:
            raise ValueError(f"node name {name!r} must look like 'alive@host'")
        if not cookie:
            raise ValueError("cookie must not be empty")
        if not handshake_timeout_s > 0:
            raise ValueError(f"handshake_timeout_s must be > 0, got {handshake_timeout_s}")
        if max_handshakes < 1:
            raise ValueError(f"max_handshakes must be >= 1, got {max_handshakes}")
        self.name = Atom(name)
        self.alive_name = alive
        self.host = host
        self.published = published
        self.net_ticktime_s = net_ticktime_s
        self.listen_host = listen_host or host
        self.connect_timeout_s = connect_timeout_s
        self.handshake_timeout_s = handshake_timeout_s
        self.max_handshakes = max_handshakes
        self.epmd_address = epmd_address
        self.port = 0
        self._table = ProcessTable()
        self._procs = self._table.by_pid  # the live processes (read by tests: nothing left behind)
        self._connections = ConnectionManager(
            self.name,
            cookie.encode() if isinstance(cookie, str) else cookie,
            flags.OUR_FLAGS | (flags.PUBLISHED if published else 0),
            epmd_port=epmd_address.port,
            net_ticktime_s=net_ticktime_s,
            connect_timeout_s=connect_timeout_s,
            handshake_timeout_s=handshake_timeout_s,
            max_handshakes=max_handshakes,
            high_water_bytes=high_water_bytes,
            hard_limit_bytes=hard_limit_bytes,
            dispatch=functools.partial(control.dispatch, self),
            on_node_down=self._node_down,
            tls=tls,
        )
        self._signals = Signals(self.name, self._table, self._connections, self.make_ref)
        self._rpc: dict[tuple[str, str], RpcFunction] = {}
        self._pid_ids = itertools.count(1)
        self._ref_ids = itertools.count(1)
        self._server: asyncio.base_events.Server | None = None
        self._registration: epmd.EpmdRegistration | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.started = False

    def __repr__(self) -> str:
        return f"<Node {self.name}>"

    @property
    def flags(self) -> int:
        return self._connections.flags

    @property
    def creation(self) -> int:
        """This incarnation's number, from epmd (0 until started)."""
        return self._connections.creation

    @property
    def handshake_stats(self) -> HandshakeStats:
        return self._connections.stats

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await epmd.ensure_epmd(self.epmd_address)
        factory = self._connections.accept if self._connections.tls is None else self._connections.accept_tls
        self._server = await loop.create_server(factory, self.listen_host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._registration = await epmd.register(self.alive_name, self.port, epmd=self.epmd_address)
        self._connections.creation = self._registration.creation
        self.spawn(_net_kernel, name="net_kernel")
        self.started = self._connections.accepting = True
        log.info("node %s up on port %d (%s%s)", self.name, self.port, "published" if self.published else "hidden",
                 ", TLS" if self._connections.tls is not None else "")  # fmt: skip

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = self._connections.accepting = False
        for proc in self._table.processes():
            self.terminate(proc, Atom("shutdown"))
        if self._server is not None:
            self._server.close()
        tasks = self._connections.close_all() + [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._registration is not None:
            await self._registration.close()
        await asyncio.sleep(0)  # let transports finish closing

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- identifiers -------------------------------------------------------------------------

    def make_ref(self) -> Reference:
        n = next(self._ref_ids)
        return Reference(self.name, self.creation, (n & 0x3FFFF, (n >> 18) & 0xFFFFFFFF, secrets.randbits(32)))

    def _new_process(self) -> Process:
        n = next(self._pid_ids)
        proc = Process(self, Pid(self.name, n & 0x7FFF, n >> 15, self.creation))
        self._table.add(proc)
        return proc

    # -- processes ---------------------------------------------------------------------------

    def process(self, name: str | None = None) -> Process:
        """A process you drive yourself (``async with node.process() as p: await p.receive()``)."""
        proc = self._new_process()
        if name is not None:
            self.register(proc, name)
        return proc

    def spawn(
        self,
        body: Callable[..., Awaitable[Any]],
        *args: Any,
        name: str | None = None,
        link: Pid | None = None,
        trap_exit: bool = False,
    ) -> Process:
        """Start ``body(process, *args)`` as a process with its own task."""
        proc = self.process(name)
        proc.trap_exit = trap_exit
        if link is not None:
            self.link(proc, link)
        proc.task = self.create_task(self._run(proc, body, args))
        return proc

    async def _run(self, proc: Process, body: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        reason: Any = NORMAL
        try:
            await body(proc, *args)
        except ProcessExitError:
            return
        except asyncio.CancelledError:
            if proc.alive:
                self.terminate(proc, KILLED)
            raise
        except Exception as exc:
            log.error("process %s crashed: %r", proc.pid, exc, exc_info=True)
            reason = python_exception_reason(exc)
        self.terminate(proc, reason)

    def create_task(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def start_server(self, server: GenServer, *, name: str | None = None) -> Process:
        """Run a GenServer as a process, optionally registered under ``name``."""
        return self.spawn(serve, server, name=name)

    def register(self, proc: Process, name: str) -> None:
        self._table.register(proc, name)

    def whereis(self, name: str) -> Pid | None:
        proc = self._table.named(Atom(name))
        return proc.pid if proc else None

    def registered(self) -> list[Atom]:
        return list(self._table.by_name)

    def local(self, pid: Pid) -> Process | None:
        return self._table.local(pid)

    def named(self, name: Atom) -> Process | None:
        return self._table.named(name)

    def terminate(self, proc: Process, reason: Any) -> None:
        """End a process: exit signals to links, DOWN to watchers, monitors released."""
        self._signals.terminate(proc, reason)

    # -- signals -----------------------------------------------------------------------------

    def send(self, sender: Pid, dest: Dest, message: Any) -> None:
        self._signals.send(sender, dest, message)

    async def asend(self, sender: Pid, dest: Dest, message: Any) -> None:
        """Like ``send``, but first waits while the connection is over its high-water mark."""
        await self._signals.asend(sender, dest, message)

    def link(self, proc: Process, pid: Pid) -> None:
        self._signals.link(proc, pid)

    def unlink(self, proc: Process, pid: Pid) -> None:
        self._signals.unlink(proc, pid)

    def monitor(self, proc: Process, target: Dest) -> Reference:
        return self._signals.monitor(proc, target)

    def demonitor(self, proc: Process, ref: Reference) -> None:
        self._signals.demonitor(proc, ref)

    def send_exit(self, sender: Pid, pid: Pid, reason: Any) -> None:
        """``exit(Pid, Reason)`` from ``sender``."""
        self._signals.send_exit(sender, pid, reason)

    def _node_down(self, peer: Atom) -> None:
        self._signals.node_down(peer)

    # -- rpc ---------------------------------------------------------------------------------

    def register_rpc(self, module: str, function: str, fn: RpcFunction) -> None:
        """Make ``rpc:call(ThisNode, module, function, Args)`` call ``fn(*Args)``.

        Only registered functions are reachable: nothing a peer names is imported.
        """
        self._rpc[(module, function)] = fn

    def rpc_function(self, module: str, function: str) -> RpcFunction | None:
        return self._rpc.get((module, function))

    # -- calls from Python -------------------------------------------------------------------

    async def call(self, dest: Dest, request: Any, timeout: float | None = 5.0) -> Any:
        """``gen_server:call(Dest, Request, Timeout)``: the reply, or CallError / CallTimeout."""
        async with self.process() as proc:
            return await client.call(proc, dest, request, timeout)

    async def rpc(
        self, node_name: str, module: str, function: str, args: list[Any], timeout: float | None = 5.0
    ) -> Any:
        """``erpc:call(Node, M, F, A)`` from Python: the return value, or RpcError / NodeDownError."""
        conn = await self.connect(node_name)
        async with self.process() as proc:
            return await client.rpc(proc, conn, module, function, args, timeout)

    def cast(self, dest: Dest, request: Any) -> None:
        """``gen_server:cast(Dest, Request)``: fire and forget."""
        self.send(self._net_kernel_pid(), dest, (GEN_CAST, request))

    def _net_kernel_pid(self) -> Pid:
        proc = self._table.named(Atom("net_kernel"))
        if proc is None:
            raise NodeDownError(f"node {self.name} is not started")
        return proc.pid

    # -- connections -------------------------------------------------------------------------

    def connected_nodes(self) -> list[Atom]:
        return list(self._connections.conns)

    def connection(self, node_name: str) -> Connection | None:
        return self._connections.get(Atom(node_name))

    async def connect(self, node_name: str) -> Connection:
        """Connect to ``node_name`` (or return the live connection); NodeDownError if it fails."""
        return await self._connections.connect(Atom(node_name))

    async def ping(self, node_name: str) -> bool:
        """Like ``net_adm:ping``: True when the node is (or gets) connected."""
        try:
            await self.connect(node_name)
        except NodeDownError:
            return False
        return True

    def disconnect(self, node_name: str) -> None:
        conn = self._connections.get(Atom(node_name))
        if conn is not None:
            conn.close()

    def handshakes_in_progress(self) -> int:
        """Accepted connections that have not finished the handshake yet."""
        return self._connections.guard.in_progress()


async def _net_kernel(proc: Process) -> None:
    """Answers ``{is_auth, Node}`` so that ``net_adm:ping`` gives ``pong``."""
    while True:
        message = await proc.receive()
        if type(message) is tuple and len(message) == 3 and message[0] == GEN_CALL:
            caller = message[1]
            if type(caller) is tuple and len(caller) == 2 and type(caller[0]) is Pid:
                request = message[2]
                is_auth = type(request) is tuple and len(request) == 2 and request[0] == "is_auth"
                proc.send(caller[0], (caller[1], Atom("yes") if is_auth else Atom("error")))
