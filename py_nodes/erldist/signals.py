"""Signals between processes: messages, links, monitors and exit signals, local or remote.

A signal to a local process is applied at once; one to a remote process becomes a control
message on the connection to its node (set up on first use). ``terminate`` sends what a dying
process owes (exit signals to links, DOWN to watchers); ``node_down`` ends everything that
crossed a lost connection with ``noconnection``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from .connections import ConnectionManager, Pending
from .interfaces import Dest
from .process import DOWN, NOCONNECTION, NODEDOWN, NOPROC, PROCESS, Process
from .registry import ProcessTable
from .terms import Atom, Pid, Reference

__all__ = ["Signals"]

EMPTY = Atom("")

# Control message operations we send.
LINK, SEND, EXIT, EXIT2, REG_SEND = 1, 2, 3, 8, 6
MONITOR_P, DEMONITOR_P, MONITOR_P_EXIT = 19, 20, 21
UNLINK_ID = 35


class Signals:
    """Signal routing for one node (named ``name``) over its process table and connections."""

    def __init__(
        self, name: Atom, table: ProcessTable, connections: ConnectionManager, make_ref: Callable[[], Reference]
    ) -> None:
        self.name = name
        self._table = table
        self._conns = connections
        self._make_ref = make_ref
        self._unlink_ids = itertools.count(1)

    # -- messages ------------------------------------------------------------------------

    def send(self, sender: Pid, dest: Dest, message: Any) -> None:
        if type(dest) is Pid:
            if dest.node == self.name:
                target = self._table.local(dest)
                if target is not None:
                    target.deliver(message)
            else:
                self._conns.outbound(dest.node).send((SEND, EMPTY, dest), message)
        elif isinstance(dest, str):
            named = self._table.named(Atom(dest))
            if named is None:
                raise ValueError(f"no process is registered as {dest!r} on {self.name}")
            named.deliver(message)
        elif isinstance(dest, tuple) and len(dest) == 2:
            name, node_name = Atom(dest[0]), Atom(dest[1])
            if node_name == self.name:
                named = self._table.named(name)
                if named is not None:
                    named.deliver(message)
            else:
                self._conns.outbound(node_name).send((REG_SEND, sender, EMPTY, name), message)
        else:
            raise TypeError(f"cannot send to {dest!r}: use a Pid, a name or (name, node)")

    async def asend(self, sender: Pid, dest: Dest, message: Any) -> None:
        """Like ``send``, but first waits while the connection is over its high-water mark."""
        if type(dest) is Pid or (isinstance(dest, tuple) and len(dest) == 2):
            node_name = Atom(dest.node if isinstance(dest, Pid) else dest[1])
            if node_name != self.name:
                outbound = self._conns.outbound(node_name)
                if isinstance(outbound, Pending):
                    outbound = await asyncio.shield(outbound.future)
                await outbound.drain()
        self.send(sender, dest, message)

    # -- a process ends --------------------------------------------------------------------

    def terminate(self, proc: Process, reason: Any) -> None:
        """End a process: exit signals to links, DOWN to watchers, monitors released."""
        if not proc.alive:
            return
        proc.alive = False
        proc.exit_reason = reason
        self._table.remove(proc)
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

    # -- links -----------------------------------------------------------------------------

    def link(self, proc: Process, pid: Pid) -> None:
        if pid == proc.pid or pid in proc.links:
            return
        if pid.node == self.name:
            other = self._table.local(pid)
            if other is None:
                proc.on_exit_signal(pid, NOPROC, from_link=False)
                return
            proc.links.add(pid)
            other.links.add(proc.pid)
        else:
            proc.links.add(pid)
            self._conns.outbound(pid.node).send((LINK, proc.pid, pid))

    def unlink(self, proc: Process, pid: Pid) -> None:
        if pid not in proc.links:
            return
        proc.links.discard(pid)
        if pid.node == self.name:
            other = self._table.local(pid)
            if other is not None:
                other.links.discard(proc.pid)
        else:
            conn = self._conns.get(pid.node)
            if conn is not None:
                conn.send((UNLINK_ID, next(self._unlink_ids), proc.pid, pid))

    # -- monitors --------------------------------------------------------------------------

    def monitor(self, proc: Process, target: Dest) -> Reference:
        ref = self._make_ref()
        if isinstance(target, tuple) and not isinstance(target, Pid):
            name, node_name = Atom(target[0]), Atom(target[1])
            if node_name == self.name:
                target = name
            else:
                proc.monitors[ref] = (name, node_name)
                self._conns.outbound(node_name).send((MONITOR_P, proc.pid, name, ref))
                return ref
        if isinstance(target, str):
            name = Atom(target)
            named = self._table.named(name)
            if named is None:
                proc.deliver((DOWN, ref, PROCESS, (name, self.name), NOPROC))
            else:
                proc.monitors[ref] = (name, self.name)
                named.watchers[ref] = (proc.pid, name)
            return ref
        if type(target) is not Pid:
            raise TypeError(f"cannot monitor {target!r}: use a Pid, a name or (name, node)")
        if target.node == self.name:
            watched = self._table.local(target)
            if watched is None:
                proc.deliver((DOWN, ref, PROCESS, target, NOPROC))
            else:
                proc.monitors[ref] = target
                watched.watchers[ref] = (proc.pid, None)
        else:
            proc.monitors[ref] = target
            self._conns.outbound(target.node).send((MONITOR_P, proc.pid, target, ref))
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
            watched = self._table.local(target) if isinstance(target, Pid) else self._table.named(target[0])
            if watched is not None:
                watched.watchers.pop(ref, None)
        else:
            conn = self._conns.get(node_name)
            if conn is not None:
                conn.send((DEMONITOR_P, proc.pid, watched_key, ref))

    # -- exit signals ----------------------------------------------------------------------

    def send_exit(self, sender: Pid, pid: Pid, reason: Any) -> None:
        """``exit(Pid, Reason)`` from ``sender``."""
        self._exit_signal(sender, pid, reason, from_link=False)

    def _exit_signal(self, sender: Pid, pid: Pid, reason: Any, *, from_link: bool) -> None:
        if pid.node == self.name:
            target = self._table.local(pid)
            if target is not None:
                target.on_exit_signal(sender, reason, from_link=from_link)
        elif not from_link or self._conns.get(pid.node) is not None:
            self._conns.outbound(pid.node).send((EXIT if from_link else EXIT2, sender, pid, reason))

    def _send_down(self, pid: Pid, by_name: Atom | None, watcher: Pid, ref: Reference, reason: Any) -> None:
        if watcher.node == self.name:
            proc = self._table.local(watcher)
            if proc is not None and proc.monitors.pop(ref, None) is not None:
                what = (by_name, self.name) if by_name is not None else pid
                proc.deliver((DOWN, ref, PROCESS, what, reason))
        else:
            conn = self._conns.get(watcher.node)
            if conn is not None:
                conn.send((MONITOR_P_EXIT, by_name if by_name is not None else pid, watcher, ref, reason))

    # -- a connection is lost --------------------------------------------------------------

    def node_down(self, peer: Atom) -> None:
        """Everything that crossed the lost connection ends with ``noconnection``."""
        for proc in self._table.processes():
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
