"""Incoming control messages: what a peer's signal does to our processes.

Shapes (ERTS "Protocol between Connected Nodes"); *_TT forms carry a trace token we ignore,
PAYLOAD_* forms carry the reason as the frame's payload. A malformed control message is
logged and dropped: a peer can never crash the node with it.
"""

from __future__ import annotations

import logging
from typing import Any

from .connection import NO_PAYLOAD, Connection
from .interfaces import NodeRuntime
from .process import NOPROC, Process
from .rpc import spawn_request
from .terms import Atom, Pid, Reference

__all__ = ["dispatch"]

Runtime = NodeRuntime[Process]  # the node, as these handlers see it

log = logging.getLogger("erldist.control")

EXIT = 3
SPAWN_REPLY = Atom("spawn_reply")


def dispatch(node: Runtime, conn: Connection, control: Any, message: Any) -> None:
    """Apply one control message (and its payload) from ``conn``."""
    try:
        c = control
        if type(c) is tuple and len(c) == 4 and c[0] == 6 and type(c[0]) is int and type(c[3]) is Atom:
            # The most frequent one first, in line: REG_SEND {6, From, _, ToName}.
            target = node.named(c[3])
            if target is not None and message is not NO_PAYLOAD:
                target.deliver(message)
            return
        _dispatch(node, conn, control, message)
    except (IndexError, TypeError, ValueError, AttributeError, KeyError) as exc:
        log.warning("%s: dropped malformed control message %.200r: %s", conn, control, exc)


def _dispatch(node: Runtime, conn: Connection, c: Any, message: Any) -> None:
    if type(c) is not tuple or not c or type(c[0]) is not int:
        raise ValueError("control message is not a tuple starting with an operation")
    op = c[0]
    if op == 2 or op == 22:  # SEND {2, _, To} / SEND_SENDER {22, From, To}
        _deliver(node, _pid(c[2]), message)
    elif op == 6:  # REG_SEND {6, From, _, ToName}
        target = node.named(_atom(c[3]))
        if target is not None and message is not NO_PAYLOAD:
            target.deliver(message)
    elif op == 12 or op == 23:  # SEND_TT, SEND_SENDER_TT
        _deliver(node, _pid(c[2]), message)
    elif op == 16:  # REG_SEND_TT {16, From, _, ToName, Token}
        target = node.named(_atom(c[3]))
        if target is not None and message is not NO_PAYLOAD:
            target.deliver(message)
    elif op == 19:  # MONITOR_P {19, From, PidOrName, Ref}
        _monitor(node, conn, _pid(c[1]), c[2], _ref(c[3]))
    elif op == 20:  # DEMONITOR_P {20, From, PidOrName, Ref}
        watched = node.local(c[2]) if type(c[2]) is Pid else node.named(_atom(c[2]))
        if watched is not None:
            watched.watchers.pop(_ref(c[3]), None)
    elif op in (21, 28):  # MONITOR_P_EXIT {21, PidOrName, To, Ref, Reason}; PAYLOAD form: reason as payload
        reason = c[4] if op == 21 else message
        _down(node, _pid(c[2]), _ref(c[3]), reason)
    elif op == 1:  # LINK {1, From, To}
        _link(node, conn, _pid(c[1]), _pid(c[2]))
    elif op in (3, 13, 24, 25):  # EXIT, EXIT_TT, PAYLOAD_EXIT, PAYLOAD_EXIT_TT
        reason = c[3] if op == 3 else c[4] if op == 13 else message
        _exit(node, _pid(c[1]), _pid(c[2]), reason, from_link=True)
    elif op in (8, 18, 26, 27):  # EXIT2, EXIT2_TT, PAYLOAD_EXIT2, PAYLOAD_EXIT2_TT
        reason = c[3] if op == 8 else c[4] if op == 18 else message
        _exit(node, _pid(c[1]), _pid(c[2]), reason, from_link=False)
    elif op == 29 or op == 30:  # SPAWN_REQUEST(_TT) {29, ReqId, From, GroupLeader, {M,F,A}, Opts}
        spawn_request(node, conn, c, message)
    elif op == 35:  # UNLINK_ID {35, Id, From, To}: drop the link, acknowledge first
        sender, target_pid = _pid(c[2]), _pid(c[3])
        conn.send((36, c[1], target_pid, sender))
        target = node.local(target_pid)
        if target is not None:
            target.links.discard(sender)
    elif op == 31 or op == 32:  # SPAWN_REPLY(_TT) {31, ReqId, To, Flags, Result}: our rpc
        _spawn_reply(node, _ref(c[1]), _pid(c[2]), c[3], c[4])
    elif op in (36, 7):  # UNLINK_ID_ACK, GROUP_LEADER: nothing to do
        pass
    else:
        log.warning("%s: ignored control message with unknown operation %d", conn, op)


def _pid(value: Any) -> Pid:
    if type(value) is not Pid:
        raise TypeError(f"expected a pid, got {value!r}")
    return value


def _atom(value: Any) -> Atom:
    if type(value) is not Atom:
        raise TypeError(f"expected an atom, got {value!r}")
    return value


def _ref(value: Any) -> Reference:
    if type(value) is not Reference:
        raise TypeError(f"expected a reference, got {value!r}")
    return value


def _deliver(node: Runtime, to: Pid, message: Any) -> None:
    target = node.local(to)
    if target is not None and message is not NO_PAYLOAD:
        target.deliver(message)


def _monitor(node: Runtime, conn: Connection, watcher: Pid, what: Any, ref: Reference) -> None:
    if type(what) is Pid:
        watched, by_name = node.local(what), None
    else:
        by_name = _atom(what)
        watched = node.named(by_name)
    if watched is None:
        conn.send((21, what, watcher, ref, NOPROC))
    else:
        watched.watchers[ref] = (watcher, by_name)


def _down(node: Runtime, watcher: Pid, ref: Reference, reason: Any) -> None:
    proc = node.local(watcher)
    if proc is None:
        return
    target = proc.monitors.pop(ref, None)
    if target is not None:
        proc.deliver((Atom("DOWN"), ref, Atom("process"), target, reason))


def _spawn_reply(node: Runtime, req_id: Reference, to: Pid, flags: Any, result: Any) -> None:
    proc = node.local(to)
    if proc is None or type(flags) is not int:
        return
    if type(result) is Pid:
        if flags & 2:  # the monitor we asked for: its DOWN carries the result
            proc.monitors[req_id] = result
        if flags & 1:
            proc.links.add(result)
    proc.deliver((SPAWN_REPLY, req_id, result))


def _link(node: Runtime, conn: Connection, sender: Pid, to: Pid) -> None:
    target = node.local(to)
    if target is None:
        conn.send((EXIT, to, sender, NOPROC))
    else:
        target.links.add(sender)


def _exit(node: Runtime, sender: Pid, to: Pid, reason: Any, *, from_link: bool) -> None:
    target = node.local(to)
    if target is not None:
        target.on_exit_signal(sender, reason, from_link=from_link)
