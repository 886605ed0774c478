"""Exceptions raised by erldist.

    ErldistError                 base of everything this library raises on purpose
    +-- TermError                a term could not be encoded or decoded
    |   +-- DecodeError          bad bytes; ``offset`` says where, the message says what
    |   +-- EncodeError          a Python value with no Erlang equivalent
    +-- HandshakeError           a peer was refused or refused us (never carries the cookie)
    +-- NodeDownError            the peer node is not connected and could not be reached
    +-- ProcessExitError         the local process was terminated by an exit signal
    +-- CallError                gen_server call failed; ``reason`` is the Erlang exit reason
    |   +-- CallTimeout          no reply in time (also a ``TimeoutError``)
    +-- RpcError                 rpc to an Erlang node raised; ``kind`` and ``reason`` say how
    +-- BackpressureError        a connection's write buffer is over its hard limit
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BackpressureError",
    "CallError",
    "CallTimeout",
    "DecodeError",
    "EncodeError",
    "ErldistError",
    "HandshakeError",
    "NodeDownError",
    "ProcessExitError",
    "RpcError",
    "TermError",
]


class ErldistError(Exception):
    """Base class of every error erldist raises on purpose."""


class TermError(ErldistError):
    """A term could not be encoded or decoded."""


class DecodeError(TermError):
    """Bytes that are not a valid external term; ``offset`` is where the problem was found."""

    def __init__(self, offset: int, problem: str) -> None:
        super().__init__(f"offset {offset}: {problem}")
        self.offset = offset
        self.problem = problem


class EncodeError(TermError):
    """A Python value that has no Erlang external-term equivalent."""


class HandshakeError(ErldistError):
    """The distribution handshake failed; the message names the peer and the reason."""


class NodeDownError(ErldistError):
    """The peer node is not connected and could not be connected."""


class ProcessExitError(ErldistError):
    """The process was terminated by an exit signal; ``reason`` is the Erlang exit reason."""

    def __init__(self, reason: Any) -> None:
        super().__init__(f"process exited: {reason!r}")
        self.reason = reason


class CallError(ErldistError):
    """A gen_server call failed because the callee exited; ``reason`` is its exit reason."""

    def __init__(self, reason: Any, dest: Any = None) -> None:
        super().__init__(f"call to {dest!r} failed: {reason!r}")
        self.reason = reason
        self.dest = dest


class CallTimeout(CallError, TimeoutError):
    """A gen_server call got no reply within its timeout."""

    def __init__(self, dest: Any, timeout_s: float) -> None:
        super().__init__("timeout", dest)
        self.timeout_s = timeout_s


class BackpressureError(ErldistError):
    """A non-blocking send found the connection's write buffer over its hard limit."""


class RpcError(ErldistError):
    """An rpc into another node failed.

    ``kind`` is ``error``, ``exit`` or ``throw`` (how the function ended), ``spawn`` (the peer
    refused to spawn it, e.g. ``notsup``) or ``timeout``; ``reason`` is the Erlang term.
    """

    def __init__(self, kind: str, reason: Any, mfa: str) -> None:
        super().__init__(f"rpc {mfa} failed: {kind} {reason!r}")
        self.kind = kind
        self.reason = reason
