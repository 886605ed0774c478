"""A Python Erlang node: processes, names, links, monitors, connections to other nodes.

    async with Node("py@127.0.0.1", cookie=b"secret") as node:
        proc = node.spawn(body)            # body(proc) runs as the process's own task
        reply = await node.call(("echo", "other@127.0.0.1"), request)

No globals: several nodes can live in one event loop. The node is hidden unless
``published=True`` (while published, ``global:sync()`` on an Erlang node blocks, because global
expects a ``global_name_server`` that a Python node does not run).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from . import epmd, flags
from .connection import NO_PAYLOAD, Connection
from .control import dispatch
from .errors import (
    CallError,
    CallTimeout,
    HandshakeError,
    NodeDownError,
    ProcessExitError,
    RpcError,
)
from .gen_server import GenServer, serve
from .handshake import Acceptor, Initiator, Status
from .process import DOWN, KILLED, NOPROC, NORMAL, PROCESS, Dest, Process, python_exception_reason
from .terms import Atom, Pid, Reference

__all__ = ["HandshakeStats", "Node", "RpcFunction"]

log = logging.getLogger("erldist.node")

RpcFunction = Callable[..., Any]
EMPTY = Atom("")
NOCONNECTION = Atom("noconnection")
NODEDOWN = Atom("nodedown")
GEN_CALL = Atom("$gen_call")
GEN_CAST = Atom("$gen_cast")

# Control message operations we send.
LINK, SEND, EXIT, EXIT2, REG_SEND = 1, 2, 3, 8, 6
MONITOR_P, DEMONITOR_P, MONITOR_P_EXIT = 19, 20, 21
UNLINK_ID, UNLINK_ID_ACK = 35, 36
SPAWN_REQUEST = 29
ERPC = Atom("erpc")
EXECUTE_CALL = Atom("execute_call")


@dataclass
class HandshakeStats:
    """Connections the node closed before they finished the handshake, by cause (since start)."""

    timed_out: int = 0  # still mid-handshake at the deadline: silent, or stopped half-way
    evicted: int = 0  # the oldest accepted one, closed to make room beyond ``max_handshakes``
    failed: int = 0  # sent something that is not a handshake (before naming a node)


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


class _Pending:
    """An outgoing connection being set up; frames sent meanwhile wait here in order."""

    def __init__(self, future: asyncio.Future[Connection]) -> None:
        self.future = future
        self.frames: list[tuple[Any, Any]] = []
        self.attempt: Connection | None = None

    def send(self, control: Any, message: Any = NO_PAYLOAD) -> None:
        self.frames.append((control, message))


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
    ) -> None:
        """``handshake_timeout_s``: a connection not through the handshake by then is closed (OTP's
        net_setuptime, 7 s). ``max_handshakes``: accepted connections allowed mid-handshake at once;
        a new one beyond that closes the oldest, so idle floods cannot lock real peers out."""
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
        self._cookie = cookie.encode() if isinstance(cookie, str) else cookie
        self.published = published
        self.net_ticktime_s = net_ticktime_s
        self.listen_host = listen_host or host
        self.connect_timeout_s = connect_timeout_s
        self.handshake_timeout_s = handshake_timeout_s
        self.max_handshakes = max_handshakes
        self.handshake_stats = HandshakeStats()
        self._handshaking: dict[Connection, None] = {}  # accepted, mid-handshake, oldest first
        # One limiter per cause: each cause shows in the log at least once a minute.
        self._evicted_warning = _RateLimitedWarning(log, 60.0)
        self._timeout_warning = _RateLimitedWarning(log, 60.0)
        self._garbage_warning = _RateLimitedWarning(log, 60.0)
        self._high_water = high_water_bytes
        self._hard_limit = hard_limit_bytes
        self.creation = 0
        self.port = 0
        self._procs: dict[Pid, Process] = {}
        self._names: dict[Atom, Process] = {}
        self._conns: dict[Atom, Connection] = {}
        self._connecting: dict[Atom, _Pending] = {}
        self._rpc: dict[tuple[str, str], RpcFunction] = {}
        self._pid_ids = itertools.count(1)
        self._ref_ids = itertools.count(1)
        self._unlink_ids = itertools.count(1)
        self._server: asyncio.base_events.Server | None = None
        self._registration: epmd.EpmdRegistration | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.started = False

    def __repr__(self) -> str:
        return f"<Node {self.name}>"

    @property
    def flags(self) -> int:
        return flags.OUR_FLAGS | (flags.PUBLISHED if self.published else 0)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await epmd.ensure_epmd()
        self._server = await loop.create_server(self._accept, self.listen_host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._registration = await epmd.register(self.alive_name, self.port)
        self.creation = self._registration.creation
        self.spawn(_net_kernel, name="net_kernel")
        self.started = True
        log.info("node %s up on port %d (%s)", self.name, self.port, "published" if self.published else "hidden")

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        for proc in list(self._procs.values()):
            self.terminate(proc, Atom("shutdown"))
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns.values()):
            conn.close()
        for pending in list(self._connecting.values()):
            if pending.attempt is not None:
                pending.attempt.close()
        for conn in list(self._handshaking):
            conn.abort()
        tasks = [t for t in self._tasks if not t.done()]
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
        pid = Pid(self.name, n & 0x7FFF, n >> 15, self.creation)
        proc = Process(self, pid)
        self._procs[pid] = proc
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
        atom = Atom(name)
        if atom in self._names or proc.name is not None:
            raise ValueError(f"cannot register {proc.pid} as {name!r}: name or process already registered")
        self._names[atom] = proc
        proc.name = atom

    def whereis(self, name: str) -> Pid | None:
        proc = self._names.get(Atom(name))
        return proc.pid if proc else None

    def registered(self) -> list[Atom]:
        return list(self._names)

    def local(self, pid: Pid) -> Process | None:
        return self._procs.get(pid)

    def named(self, name: Atom) -> Process | None:
        return self._names.get(name)

    def terminate(self, proc: Process, reason: Any) -> None:
        """End a process: exit signals to links, DOWN to watchers, monitors released."""
        if not proc.alive:
            return
        proc.alive = False
        proc.exit_reason = reason
        self._procs.pop(proc.pid, None)
        if proc.name is not None and self._names.get(proc.name) is proc:
            del self._names[proc.name]
        links, proc.links = proc.links, set()
        for other in links:
            self._exit_signal(proc.pid, other, reason, from_link=True)
        watchers, proc.watchers = proc.watchers, {}
        for ref, (watcher, by_name) in watchers.items():
            self._send_down(proc.pid, by_name, watcher, ref, reason)
        for ref in list(proc.monitors):
            self.demonitor(proc, ref)
        proc.wake_dead()
        task = proc.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    # -- sending -----------------------------------------------------------------------------

    def send(self, sender: Pid, dest: Dest, message: Any) -> None:
        if type(dest) is Pid:
            if dest.node == self.name:
                target = self._procs.get(dest)
                if target is not None:
                    target.deliver(message)
            else:
                self._outbound(dest.node).send((SEND, EMPTY, dest), message)
        elif isinstance(dest, str):
            named = self._names.get(Atom(dest))
            if named is None:
                raise ValueError(f"no process is registered as {dest!r} on {self.name}")
            named.deliver(message)
        elif isinstance(dest, tuple) and len(dest) == 2:
            name, node_name = Atom(dest[0]), Atom(dest[1])
            if node_name == self.name:
                named = self._names.get(name)
                if named is not None:
                    named.deliver(message)
            else:
                self._outbound(node_name).send((REG_SEND, sender, EMPTY, name), message)
        else:
            raise TypeError(f"cannot send to {dest!r}: use a Pid, a name or (name, node)")

    async def asend(self, sender: Pid, dest: Dest, message: Any) -> None:
        """Like ``send``, but first waits while the connection is over its high-water mark."""
        if type(dest) is Pid or (isinstance(dest, tuple) and len(dest) == 2):
            node_name = Atom(dest.node if isinstance(dest, Pid) else dest[1])
            if node_name != self.name:
                outbound = self._outbound(node_name)
                if isinstance(outbound, _Pending):
                    outbound = await asyncio.shield(outbound.future)
                await outbound.drain()
        self.send(sender, dest, message)

    def _outbound(self, node_name: Atom) -> Connection | _Pending:
        conn = self._conns.get(node_name)
        if conn is not None:
            return conn
        pending = self._connecting.get(node_name)
        return pending if pending is not None else self._start_connect(node_name)

    # -- links, monitors, exit signals -------------------------------------------------------

    def link(self, proc: Process, pid: Pid) -> None:
        if pid == proc.pid or pid in proc.links:
            return
        if pid.node == self.name:
            other = self._procs.get(pid)
            if other is None:
                proc.on_exit_signal(pid, NOPROC, from_link=False)
                return
            proc.links.add(pid)
            other.links.add(proc.pid)
        else:
            proc.links.add(pid)
            self._outbound(pid.node).send((LINK, proc.pid, pid))

    def unlink(self, proc: Process, pid: Pid) -> None:
        if pid not in proc.links:
            return
        proc.links.discard(pid)
        if pid.node == self.name:
            other = self._procs.get(pid)
            if other is not None:
                other.links.discard(proc.pid)
        elif pid.node in self._conns:
            self._conns[pid.node].send((UNLINK_ID, next(self._unlink_ids), proc.pid, pid))

    def monitor(self, proc: Process, target: Dest) -> Reference:
        ref = self.make_ref()
        if isinstance(target, tuple) and not isinstance(target, Pid):
            name, node_name = Atom(target[0]), Atom(target[1])
            if node_name == self.name:
                target = name
            else:
                proc.monitors[ref] = (name, node_name)
                self._outbound(node_name).send((MONITOR_P, proc.pid, name, ref))
                return ref
        if isinstance(target, str):
            name = Atom(target)
            named = self._names.get(name)
            if named is None:
                proc.deliver((DOWN, ref, PROCESS, (name, self.name), NOPROC))
            else:
                proc.monitors[ref] = (name, self.name)
                named.watchers[ref] = (proc.pid, name)
            return ref
        if type(target) is not Pid:
            raise TypeError(f"cannot monitor {target!r}: use a Pid, a name or (name, node)")
        if target.node == self.name:
            watched = self._procs.get(target)
            if watched is None:
                proc.deliver((DOWN, ref, PROCESS, target, NOPROC))
            else:
                proc.monitors[ref] = target
                watched.watchers[ref] = (proc.pid, None)
        else:
            proc.monitors[ref] = target
            self._outbound(target.node).send((MONITOR_P, proc.pid, target, ref))
        return ref

    def demonitor(self, proc: Process, ref: Reference) -> None:
        target = proc.monitors.pop(ref, None)
        if target is None:
            return
        watched_key: Pid | Atom
        if isinstance(target, Pid):
            node_name, watched_key = target.node, target
        else:
            watched_key, node_name = target
        if node_name == self.name:
            watched = self._procs.get(target) if isinstance(target, Pid) else self._names.get(target[0])
            if watched is not None:
                watched.watchers.pop(ref, None)
        elif node_name in self._conns:
            self._conns[node_name].send((DEMONITOR_P, proc.pid, watched_key, ref))

    def send_exit(self, sender: Pid, pid: Pid, reason: Any) -> None:
        """``exit(Pid, Reason)`` from ``sender``."""
        self._exit_signal(sender, pid, reason, from_link=False)

    def _exit_signal(self, sender: Pid, pid: Pid, reason: Any, *, from_link: bool) -> None:
        if pid.node == self.name:
            target = self._procs.get(pid)
            if target is not None:
                target.on_exit_signal(sender, reason, from_link=from_link)
        elif pid.node in self._conns or not from_link:
            self._outbound(pid.node).send((EXIT if from_link else EXIT2, sender, pid, reason))

    def _send_down(self, pid: Pid, by_name: Atom | None, watcher: Pid, ref: Reference, reason: Any) -> None:
        if watcher.node == self.name:
            proc = self._procs.get(watcher)
            if proc is not None and proc.monitors.pop(ref, None) is not None:
                what = (by_name, self.name) if by_name is not None else pid
                proc.deliver((DOWN, ref, PROCESS, what, reason))
        else:
            conn = self._conns.get(watcher.node)
            if conn is not None:
                conn.send((MONITOR_P_EXIT, by_name if by_name is not None else pid, watcher, ref, reason))

    # -- rpc ---------------------------------------------------------------------------------

    def register_rpc(self, module: str, function: str, fn: RpcFunction) -> None:
        """Make ``rpc:call(ThisNode, module, function, Args)`` call ``fn(*Args)``.

        Only registered functions are reachable: nothing a peer names is imported.
        """
        self._rpc[(module, function)] = fn

    def rpc_function(self, module: str, function: str) -> RpcFunction | None:
        return self._rpc.get((module, function))

    # -- gen_server client -------------------------------------------------------------------

    async def call(self, dest: Dest, request: Any, timeout: float | None = 5.0) -> Any:
        """``gen_server:call(Dest, Request, Timeout)``: the reply, or CallError / CallTimeout."""
        async with self.process() as proc:
            ref = proc.monitor(dest)
            proc.send(dest, (GEN_CALL, (proc.pid, ref), request))

            def is_answer(m: Any) -> bool:
                return type(m) is tuple and (
                    (len(m) == 2 and m[0] == ref) or (len(m) == 5 and m[0] == DOWN and m[1] == ref)
                )

            try:
                answer = await proc.receive(is_answer, timeout)
            except TimeoutError:
                raise CallTimeout(dest, timeout or 0.0) from None
            if len(answer) == 2:
                proc.demonitor(ref)
                return answer[1]
            reason = answer[4]
            if reason == NOCONNECTION:
                node_name = dest.node if type(dest) is Pid else dest[1] if isinstance(dest, tuple) else self.name
                reason = (NODEDOWN, Atom(node_name))
            raise CallError(reason, dest)

    async def rpc(
        self, node_name: str, module: str, function: str, args: list[Any], timeout: float | None = 5.0
    ) -> Any:
        """``erpc:call(Node, M, F, A)`` from Python: the return value, or RpcError / NodeDownError.

        Sent as SPAWN_REQUEST of ``erpc:execute_call/4`` with a monitor, as OTP does; the
        monitor's DOWN reason carries the result.
        """
        mfa = f"{module}:{function}/{len(args)}"
        conn = await self.connect(node_name)
        async with self.process() as proc:
            req_id, res_ref = self.make_ref(), self.make_ref()
            conn.send(
                (SPAWN_REQUEST, req_id, proc.pid, proc.pid, (ERPC, EXECUTE_CALL, 4), [Atom("monitor")]),
                [res_ref, Atom(module), Atom(function), list(args)],
            )

            def is_answer(m: Any) -> bool:
                return type(m) is tuple and len(m) in (3, 5) and m[1] == req_id

            try:
                async with asyncio.timeout(timeout):
                    spawned = await proc.receive(is_answer)
                    if type(spawned[2]) is not Pid:
                        raise RpcError("spawn", spawned[2], mfa)
                    down = await proc.receive(is_answer)
            except TimeoutError:
                proc.demonitor(req_id)
                raise RpcError("timeout", timeout, mfa) from None
        return _rpc_result(down[4], res_ref, node_name, mfa)

    def cast(self, dest: Dest, request: Any) -> None:
        """``gen_server:cast(Dest, Request)``: fire and forget."""
        self.send(self._net_kernel_pid(), dest, (GEN_CAST, request))

    def _net_kernel_pid(self) -> Pid:
        proc = self._names.get(Atom("net_kernel"))
        if proc is None:
            raise NodeDownError(f"node {self.name} is not started")
        return proc.pid

    # -- connections -------------------------------------------------------------------------

    def connected_nodes(self) -> list[Atom]:
        return list(self._conns)

    def connection(self, node_name: str) -> Connection | None:
        return self._conns.get(Atom(node_name))

    async def connect(self, node_name: str) -> Connection:
        """Connect to ``node_name`` (or return the live connection); NodeDownError if it fails."""
        peer = Atom(node_name)
        conn = self._conns.get(peer)
        if conn is not None:
            return conn
        pending = self._connecting.get(peer) or self._start_connect(peer)
        return await asyncio.shield(pending.future)

    async def ping(self, node_name: str) -> bool:
        """Like ``net_adm:ping``: True when the node is (or gets) connected."""
        try:
            await self.connect(node_name)
        except NodeDownError:
            return False
        return True

    def disconnect(self, node_name: str) -> None:
        conn = self._conns.get(Atom(node_name))
        if conn is not None:
            conn.close()

    def _start_connect(self, peer: Atom) -> _Pending:
        if peer == self.name:
            raise ValueError("a node cannot connect to itself")
        future: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        pending = _Pending(future)
        self._connecting[peer] = pending
        self.create_task(self._connect(peer, pending))
        return pending

    async def _connect(self, peer: Atom, pending: _Pending) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                alive, _, host = peer.partition("@")
                address = await epmd.lookup(alive, host)
                hs = Initiator(self.name, self.flags, self.creation, self._cookie)
                _, conn = await loop.create_connection(lambda: self._connection(hs), host, address.port)
                pending.attempt = conn
                try:
                    await conn.established
                except HandshakeError:
                    if hs.status != "nok":
                        raise
                    # Simultaneous connect that the peer won: its connection to us will do.
                    await asyncio.shield(pending.future)
        except (OSError, NodeDownError, HandshakeError, TimeoutError) as exc:
            attempt = pending.attempt
            if attempt is not None and self._conns.get(peer) is not attempt:
                attempt.abort()  # given up (e.g. connect_timeout_s): its socket must not linger
            if self._connecting.get(peer) is pending and not pending.future.done():
                del self._connecting[peer]
                error = NodeDownError(f"cannot connect to {peer}: {exc or 'timeout'}")
                pending.future.set_exception(error)
                pending.future.exception()  # retrieved here; callers get it too
                self._node_down(peer)

    def _accept(self) -> Connection:
        return self._connection(Acceptor(self.name, self.flags, self.creation, self._cookie, self._decide))

    def _connection(self, hs: Initiator | Acceptor) -> Connection:
        return Connection(
            self,
            hs,
            tick_interval_s=self.net_ticktime_s / 4,
            high_water_bytes=self._high_water,
            hard_limit_bytes=self._hard_limit,
        )

    def handshakes_in_progress(self) -> int:
        """Accepted connections that have not finished the handshake yet."""
        return len(self._handshaking)

    def handshake_started(self, conn: Connection) -> None:
        """An accepted connection begins its handshake; beyond the cap the oldest one is closed."""
        while len(self._handshaking) >= self.max_handshakes:
            oldest = next(iter(self._handshaking))
            del self._handshaking[oldest]
            self.handshake_stats.evicted += 1
            self._evicted_warning(
                "%s: more than %d connections mid-handshake; closing the oldest (from %s)",
                self.name, self.max_handshakes, oldest.peer_address(),
            )  # fmt: skip
            oldest.abort()
        self._handshaking[conn] = None

    def handshake_ended(self, conn: Connection) -> None:
        self._handshaking.pop(conn, None)

    def handshake_timed_out(self, conn: Connection) -> None:
        self.handshake_stats.timed_out += 1
        self._timeout_warning(
            "%s: closed a connection from %s that did not finish the handshake within %.1f s",
            self.name, conn.peer_address(), self.handshake_timeout_s,
        )  # fmt: skip

    def _decide(self, peer_name: str) -> Status:
        peer = Atom(peer_name)
        if peer == self.name or not self.started:
            return "not_allowed"
        if peer in self._conns:
            return "alive"
        if peer in self._connecting:
            # Both sides are connecting: the greater name's attempt survives (as dist_util does).
            return "nok" if self.name > peer else "ok_simultaneous"
        return "ok"

    def handshake_failed(self, conn: Connection, hs: Initiator | Acceptor, exc: HandshakeError) -> None:
        if isinstance(hs, Initiator) and hs.status == "nok":
            log.debug("%s: simultaneous connect to %s resolved in its favour", self.name, hs.peer_name)
        elif not hs.peer_name:
            # Not even a node name: garbage, a port scanner or another protocol. Counted, and
            # logged at most once a minute.
            self.handshake_stats.failed += 1
            self._garbage_warning("%s: closed a connection from %s: %s", self.name, conn.peer_address(), exc)
        else:
            log.warning("%s: connection with %s refused: %s", self.name, hs.peer_name or "?", exc)

    def connection_up(self, conn: Connection) -> bool:
        peer = Atom(conn.peer_name)
        old = self._conns.get(peer)
        if old is not None and old is not conn:
            # The peer said our connection is stale ('alive' answered 'true'): drop it.
            self._conns.pop(peer)
            old.abort()
            self._node_down(peer)
        self._conns[peer] = conn
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
        if self._conns.get(peer) is conn:
            del self._conns[peer]
            log.info("%s: connection to %s lost", self.name, peer)
            self._node_down(peer)

    def _node_down(self, peer: Atom) -> None:
        """Everything that crossed the lost connection ends with ``noconnection``."""
        for proc in list(self._procs.values()):
            for ref, (watcher, _) in list(proc.watchers.items()):
                if watcher.node == peer:
                    del proc.watchers[ref]
            for ref, target in list(proc.monitors.items()):
                node_name = target.node if isinstance(target, Pid) else target[1]
                if node_name == peer:
                    del proc.monitors[ref]
                    proc.deliver((DOWN, ref, PROCESS, target, NOCONNECTION))
            if peer in proc.node_monitors:
                proc.node_monitors.discard(peer)
                proc.deliver((NODEDOWN, peer))
            for pid in [p for p in proc.links if p.node == peer]:
                proc.on_exit_signal(pid, NOCONNECTION, from_link=True)

    # -- incoming control messages -----------------------------------------------------------

    def dispatch(self, conn: Connection, control: Any, message: Any) -> None:
        dispatch(self, conn, control, message)


def _rpc_result(reason: Any, res_ref: Reference, node_name: str, mfa: str) -> Any:
    """Turn the DOWN reason of an ``erpc:execute_call`` process into a value or an error."""
    if reason == NOCONNECTION:
        raise NodeDownError(f"connection to {node_name} lost during rpc {mfa}")
    if type(reason) is tuple and len(reason) >= 3 and reason[0] == res_ref:
        if reason[1] == "return":
            return reason[2]
        raise RpcError(str(reason[1]), reason[2], mfa)
    raise RpcError("exit", reason, mfa)


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

