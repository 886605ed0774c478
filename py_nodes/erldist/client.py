"""The client side of calls from Python: ``gen_server:call`` and ``erpc:call``.

Each call runs in a short-lived process of its own (the caller makes it and ends it): the reply
and the monitor's DOWN arrive in its mailbox, so a lost peer gives an error, never a hang.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .connection import Connection
from .errors import CallError, CallTimeout, NodeDownError, RpcError
from .gen_server import GEN_CALL
from .interfaces import Dest
from .process import DOWN, NOCONNECTION, NODEDOWN, Process
from .terms import Atom, Pid, Reference

__all__ = ["call", "rpc"]

SPAWN_REQUEST = 29
ERPC = Atom("erpc")
EXECUTE_CALL = Atom("execute_call")


async def call(proc: Process, dest: Dest, request: Any, timeout: float | None) -> Any:
    """``gen_server:call(Dest, Request, Timeout)`` from ``proc``: the reply, or CallError / CallTimeout."""
    ref = proc.monitor(dest)
    proc.send(dest, (GEN_CALL, (proc.pid, ref), request))

    def is_answer(m: Any) -> bool:
        return type(m) is tuple and ((len(m) == 2 and m[0] == ref) or (len(m) == 5 and m[0] == DOWN and m[1] == ref))

    try:
        answer = await proc.receive(is_answer, timeout)
    except TimeoutError:
        raise CallTimeout(dest, timeout or 0.0) from None
    if len(answer) == 2:
        proc.demonitor(ref)
        return answer[1]
    reason = answer[4]
    if reason == NOCONNECTION:
        node_name = dest.node if type(dest) is Pid else dest[1] if isinstance(dest, tuple) else proc.pid.node
        reason = (NODEDOWN, Atom(node_name))
    raise CallError(reason, dest)


async def rpc(
    proc: Process, conn: Connection, module: str, function: str, args: list[Any], timeout: float | None
) -> Any:
    """``erpc:call`` over ``conn`` from ``proc``: the return value, or RpcError / NodeDownError.

    Sent as SPAWN_REQUEST of ``erpc:execute_call/4`` with a monitor, as OTP does; the
    monitor's DOWN reason carries the result.
    """
    mfa = f"{module}:{function}/{len(args)}"
    req_id, res_ref = proc.node.make_ref(), proc.node.make_ref()
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
    return _rpc_result(down[4], res_ref, conn.peer_name, mfa)


def _rpc_result(reason: Any, res_ref: Reference, node_name: str, mfa: str) -> Any:
    """Turn the DOWN reason of an ``erpc:execute_call`` process into a value or an error."""
    if reason == NOCONNECTION:
        raise NodeDownError(f"connection to {node_name} lost during rpc {mfa}")
    if type(reason) is tuple and len(reason) >= 3 and reason[0] == res_ref:
        if reason[1] == "return":
            return reason[2]
        raise RpcError(str(reason[1]), reason[2], mfa)
    raise RpcError("exit", reason, mfa)
