"""Processes: a pid, a mailbox with selective receive, links, monitors and exit signals.

A process is either driven by its own task (``Node.spawn``) or by the caller
(``Node.process()``, an async context manager). Semantics follow Erlang: an exit signal
other than ``normal`` terminates a process unless it traps exits; ``kill`` sent with
``exit/2`` cannot be trapped and becomes ``killed``; a monitor on something that is not
there answers ``noproc`` at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from .errors import ProcessExitError
from .interfaces import Dest, ProcessHost
from .terms import Atom, Pid, Reference

__all__ = ["Dest", "Process", "python_exception_reason"]

log = logging.getLogger("erldist.process")

EXIT = Atom("EXIT")
DOWN = Atom("DOWN")
PROCESS = Atom("process")
NORMAL = Atom("normal")
KILL = Atom("kill")
KILLED = Atom("killed")
NOPROC = Atom("noproc")
NOCONNECTION = Atom("noconnection")
NODEDOWN = Atom("nodedown")
PYTHON_EXCEPTION = Atom("python_exception")


def python_exception_reason(exc: BaseException) -> tuple[Atom, bytes, bytes]:
    """The Erlang exit reason that stands for a Python exception."""
    return (PYTHON_EXCEPTION, type(exc).__name__.encode(), str(exc).encode())


class Process:
    """One Erlang-style process living on a Python node."""

    def __init__(self, node: ProcessHost[Process], pid: Pid) -> None:
        self.node = node
        self.pid = pid
        self.name: Atom | None = None
        self.trap_exit = False
        self.alive = True
        self.exit_reason: Any = None
        self.task: asyncio.Task[Any] | None = None
        self._mbox: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.links: set[Pid] = set()
        # Monitors this process holds: ref -> what it watches (pid, or (name, node)).
        self.monitors: dict[Reference, Pid | tuple[Atom, Atom]] = {}
        # Monitors on this process: ref -> (watcher pid, name it was monitored by or None).
        self.watchers: dict[Reference, tuple[Pid, Atom | None]] = {}
        self.node_monitors: set[Atom] = set()
        # Set by a server whose handlers are all synchronous: ``deliver`` may run it directly
        # when the process is parked in receive with an empty mailbox (order is kept).
        self.direct: Callable[[Any], None] | None = None

    def __repr__(self) -> str:
        return f"<Process {self.pid}{' ' + self.name if self.name else ''}>"

    # -- mailbox ---------------------------------------------------------------------------

    def deliver(self, message: Any) -> None:
        """Put a message in the mailbox (called by the node; never blocks)."""
        if not self.alive:
            return
        waiter = self._waiter
        if self.direct is not None and waiter is not None and not self._mbox and not waiter.done():
            try:
                self.direct(message)
            except Exception as exc:
                log.error("process %s crashed: %r", self.pid, exc, exc_info=True)
                self.node.terminate(self, python_exception_reason(exc))
            return
        self._mbox.append(message)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def mailbox_size(self) -> int:
        return len(self._mbox)

    async def receive(
        self, match: Callable[[Any], bool] | None = None, timeout: float | None = None
    ) -> Any:
        """Take the oldest message (that ``match`` accepts); TimeoutError after ``timeout`` s.

        Messages that ``match`` rejects stay in the mailbox in their order.
        """
        mbox = self._mbox
        if match is None and mbox:  # fast path: no suspension when mail is waiting
            return mbox.popleft()
        if not self.alive:
            raise ProcessExitError(self.exit_reason)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        scanned = 0
        while True:
            if match is None:
                if mbox:
                    return mbox.popleft()
            else:
                for index in range(scanned, len(mbox)):
                    message = mbox[index]
                    if match(message):
                        del mbox[index]
                        return message
                scanned = len(mbox)
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"{self.pid}: no matching message within {timeout} s")
            self._waiter = waiter = loop.create_future()
            try:
                if remaining is None:
                    await waiter
                else:
                    async with asyncio.timeout(remaining):
                        await waiter
            except TimeoutError:
                if not self.alive:
                    raise ProcessExitError(self.exit_reason) from None
                continue
            finally:
                self._waiter = None
            if not self.alive:
                raise ProcessExitError(self.exit_reason)

    # -- sending and signals (thin wrappers over the node) --------------------------------

    def send(self, dest: Dest, message: Any) -> None:
        """Send like ``Dest ! Message``: never waits; raises BackpressureError if overloaded."""
        self.node.send(self.pid, dest, message)

    async def asend(self, dest: Dest, message: Any) -> None:
        """Send, then wait while the connection to the destination is over its high-water mark."""
        await self.node.asend(self.pid, dest, message)

    def link(self, pid: Pid) -> None:
        self.node.link(self, pid)

    def unlink(self, pid: Pid) -> None:
        self.node.unlink(self, pid)

    def monitor(self, target: Dest) -> Reference:
        """Monitor a pid or a registered name; a ``DOWN`` message arrives when it exits."""
        return self.node.monitor(self, target)

    def demonitor(self, ref: Reference, *, flush: bool = False) -> None:
        self.node.demonitor(self, ref)
        if flush:
            self._mbox = deque(
                m for m in self._mbox if not (type(m) is tuple and len(m) == 5 and m[0] == DOWN and m[1] == ref)
            )

    def monitor_node(self, node_name: str) -> None:
        """Receive ``(nodedown, Node)`` when the connection to ``node_name`` is lost."""
        self.node_monitors.add(Atom(node_name))

    def exit(self, pid: Pid, reason: Any) -> None:
        """Send an exit signal like ``erlang:exit(Pid, Reason)``."""
        self.node.send_exit(self.pid, pid, reason)

    def register(self, name: str) -> None:
        self.node.register(self, name)

    # -- exit-signal handling (called by the node) ----------------------------------------

    def on_exit_signal(self, sender: Pid, reason: Any, *, from_link: bool) -> None:
        if not self.alive:
            return
        if from_link:
            if sender not in self.links:
                return  # unlinked meanwhile: the signal is void
            self.links.discard(sender)
        elif reason == KILL and type(reason) is Atom:
            self.node.terminate(self, KILLED)
            return
        if self.trap_exit:
            self.deliver((EXIT, sender, reason))
        elif reason != NORMAL or sender == self.pid:
            self.node.terminate(self, reason)

    def wake_dead(self) -> None:
        """Wake a receive that waits on a process that has just terminated."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._mbox.clear()

    # -- use as a context manager: the process exits normally at the end -------------------

    async def __aenter__(self) -> Process:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.alive:
            self.node.terminate(self, NORMAL)
