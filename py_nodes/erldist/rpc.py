"""SPAWN_REQUEST: how ``rpc:call`` / ``erpc:call`` reach functions a Python node registered.

OTP 25's rpc:call sends SPAWN_REQUEST for ``erpc:execute_call(ResRef, M, F, A)`` with the
``monitor`` option. We answer SPAWN_REPLY with a new pid, run the registered function as that
process, and exit it with ``{ResRef, return, Value}`` or ``{ResRef, error, Reason, Stack}``, which
the caller's monitor turns into the rpc result. Nothing else can be spawned.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from . import etf
from .connection import Connection
from .interfaces import NodeRuntime
from .process import NORMAL, Process, python_exception_reason
from .terms import Atom, Pid, Reference

__all__ = ["spawn_request"]

Runtime = NodeRuntime[Process]  # the node, as these handlers see it

log = logging.getLogger("erldist.rpc")

ERPC = Atom("erpc")
EXECUTE_CALL = Atom("execute_call")
EXECUTE_CAST = Atom("execute_cast")
RETURN = Atom("return")
ERROR = Atom("error")
UNDEF = Atom("undef")
SPAWN_REPLY = 31
FLAG_LINK = 1
FLAG_MONITOR = 2


def spawn_request(node: Runtime, conn: Connection, c: tuple[Any, ...], arg_list: Any) -> None:
    """Handle ``{29, ReqId, From, GroupLeader, {M, F, Arity}, Opts}`` with ``Args`` as payload."""
    req_id, caller, mfa, opts = c[1], c[2], c[4], c[5] if c[0] == 29 else c[6]
    if type(caller) is not Pid or type(req_id) is not Reference or type(opts) is not list:
        raise TypeError("SPAWN_REQUEST with a malformed caller, request id or option list")
    job = _job(mfa, arg_list)
    if job is None:
        conn.send((SPAWN_REPLY, req_id, caller, 0, Atom("notsup")))
        return
    proc = node.process()
    reply_flags = 0
    if Atom("link") in opts:
        proc.links.add(caller)
        reply_flags |= FLAG_LINK
    if any(o == "monitor" or (type(o) is tuple and o and o[0] == "monitor") for o in opts):
        proc.watchers[req_id] = (caller, None)
        reply_flags |= FLAG_MONITOR
    conn.send((SPAWN_REPLY, req_id, caller, reply_flags, proc.pid))
    proc.task = node.create_task(_execute(node, proc, *job))


def _job(mfa: Any, args: Any) -> tuple[Any, Atom, Atom, list[Any]] | None:
    """(result ref or None for casts, module, function, args), or None if not an erpc spawn."""
    if type(mfa) is not tuple or len(mfa) != 3 or mfa[0] != ERPC or type(args) is not list:
        return None
    if mfa[1] == EXECUTE_CALL and mfa[2] == 4 and len(args) == 4:
        res_ref, module, function, fargs = args
    elif mfa[1] == EXECUTE_CAST and mfa[2] == 3 and len(args) == 3:
        res_ref, (module, function, fargs) = None, args
    else:
        return None
    if type(module) is not Atom or type(function) is not Atom or type(fargs) is not list:
        return None
    return res_ref, module, function, fargs


async def _execute(node: Runtime, proc: Process, res_ref: Any, module: Atom, function: Atom, args: list[Any]) -> None:
    fn = node.rpc_function(module, function)
    if fn is None:
        reason: Any = (res_ref, ERROR, UNDEF, [(module, function, args, [])])
    else:
        try:
            value = fn(*args)
            if inspect.isawaitable(value):
                value = await value
            etf.encode(value)  # an unencodable result is the function's error, not ours
            reason = (res_ref, RETURN, value)
        except Exception as exc:
            log.info("rpc %s:%s raised %r", module, function, exc)
            reason = (res_ref, ERROR, python_exception_reason(exc), [(module, function, len(args), [])])
    node.terminate(proc, NORMAL if res_ref is None else reason)
