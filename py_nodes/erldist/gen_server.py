"""GenServer: the server side of ``gen_server:call`` / ``cast`` for Python objects.

    class Echo(GenServer):
        def handle_call(self, request, caller):
            return request          # the reply; return NO_REPLY and call self.reply() later

    node.start_server(Echo(), name="echo")

``handle_call``, ``handle_cast`` and ``handle_info`` may be plain or ``async`` methods. A server
with ``concurrent_calls = True`` runs each async ``handle_call`` as a task of its own and answers
when it returns (a server that groups work, e.g. one commit for many calls); casts and other
messages are still handled one at a time, in order. As in
Erlang, an exception in a handler ends the server (exit reason ``{python_exception, Class,
Message}``) and every caller waiting on it gets a CallError through its monitor.
The client side is ``Node.call`` / ``Node.cast``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable
from typing import Any

from .process import Process, python_exception_reason
from .terms import Atom, Pid

__all__ = ["NO_REPLY", "Caller", "GenServer", "serve"]

log = logging.getLogger("erldist.gen_server")

GEN_CALL = Atom("$gen_call")
GEN_CAST = Atom("$gen_cast")
Caller = tuple[Pid, Any]  # (caller pid, tag); the tag is [alias|Ref] or Ref


class _NoReply:
    def __repr__(self) -> str:
        return "NO_REPLY"


NO_REPLY: Any = _NoReply()


class GenServer:
    """Subclass and override the handlers you need."""

    process: Process
    # True: calls answered as they finish, not one at a time (see the module's docstring).
    concurrent_calls: bool = False

    async def init(self) -> None:
        """Runs in the server's process before the first message."""

    def handle_call(self, request: Any, caller: Caller) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not handle calls ({request!r})")

    def handle_cast(self, request: Any) -> Any:
        log.warning("%s: unhandled cast %.200r", type(self).__name__, request)

    def handle_info(self, message: Any) -> Any:
        log.debug("%s: unhandled message %.200r", type(self).__name__, message)

    def reply(self, caller: Caller, value: Any) -> None:
        """Answer a call later (when ``handle_call`` returned ``NO_REPLY``)."""
        pid, tag = caller
        self.process.send(pid, (tag, value))


async def serve(proc: Process, server: GenServer) -> None:
    """The body of a GenServer's process: one message at a time, in order."""
    server.process = proc
    await server.init()
    handlers = (server.handle_call, server.handle_cast, server.handle_info)
    if not any(inspect.iscoroutinefunction(h) for h in handlers):
        # All handlers are synchronous: messages may be handled as they arrive (see deliver).
        proc.direct = lambda message: _handle(proc, server, message)
    while True:
        result = _handle(proc, server, await proc.receive())
        if _awaitable(result):
            await result


# Replies that are terms, not awaitables: known without isawaitable's ABC check (per call).
_TERM_TYPES = frozenset({tuple, list, dict, bytes, str, int, float, bool, type(None), Atom, Pid, _NoReply})


def _awaitable(value: Any) -> bool:
    return type(value) not in _TERM_TYPES and inspect.isawaitable(value)


def _handle(proc: Process, server: GenServer, message: Any) -> Any:
    """Dispatch one message; returns an awaitable when the handler is async."""
    if type(message) is tuple and len(message) == 3 and message[0] == GEN_CALL:
        caller = message[1]
        if type(caller) is not tuple or len(caller) != 2 or type(caller[0]) is not Pid:
            log.warning("%s: dropped a $gen_call with a malformed caller %.200r", proc.pid, caller)
            return None
        result = server.handle_call(message[2], caller)
        if _awaitable(result):
            if server.concurrent_calls:
                _reply_concurrently(proc, caller, result)
                return None
            return _reply_later(proc, caller, result)
        if result is not NO_REPLY:
            proc.send(caller[0], (caller[1], result))
        return None
    if type(message) is tuple and len(message) == 2 and message[0] == GEN_CAST:
        return server.handle_cast(message[1])
    return server.handle_info(message)


async def _reply_later(proc: Process, caller: Caller, pending: Awaitable[Any]) -> None:
    result = await pending
    if result is not NO_REPLY:
        proc.send(caller[0], (caller[1], result))


_calls: set[asyncio.Task[None]] = set()  # running concurrent calls (the loop keeps weak references only)


def _reply_concurrently(proc: Process, caller: Caller, pending: Awaitable[Any]) -> None:
    async def run() -> None:
        try:
            await _reply_later(proc, caller, pending)
        except Exception as exc:  # as in a handler run in line: the server ends
            log.error("%s: a call crashed the server: %r", proc.pid, exc, exc_info=True)
            proc.node.terminate(proc, python_exception_reason(exc))

    task = asyncio.get_running_loop().create_task(run())
    _calls.add(task)
    task.add_done_callback(_calls.discard)
