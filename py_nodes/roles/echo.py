"""The ``echo`` role: a conformance and smoke-test node for the distribution library.

Registers ``echo`` (a GenServer answering every call with the request), ``sink`` (counts
messages; ``{done, From}`` sends ``{count, N}`` to From and resets) and the rpc functions
``echo:echo(X) -> X`` and ``echo:fail(Message)`` (raises ``ValueError(Message)``).
"""

from __future__ import annotations

from typing import Any

from py_nodes.erldist import Atom, Caller, GenServer, Node, Pid, Process
from py_nodes.settings import Settings

DONE = Atom("done")
COUNT = Atom("count")


class Echo(GenServer):
    def handle_call(self, request: Any, caller: Caller) -> Any:
        return request


async def sink(proc: Process) -> None:
    count = 0
    receive = proc.receive
    while True:
        message = await receive()
        if type(message) is tuple and len(message) == 2 and message[0] == DONE and type(message[1]) is Pid:
            proc.send(message[1], (COUNT, count))
            count = 0
        else:
            count += 1


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list) and all(type(c) is int for c in value):
        return "".join(map(chr, value))
    return str(value)


def echo(value: Any) -> Any:
    return value


def fail(message: Any) -> Any:
    raise ValueError(_text(message))


def start(node: Node, settings: Settings | None = None) -> None:
    """The conformance role; it has no settings."""
    node.start_server(Echo(), name="echo")
    node.spawn(sink, name="sink")
    node.register_rpc("echo", "echo", echo)
    node.register_rpc("echo", "fail", fail)
