"""erldist: an asyncio Erlang distribution node for Python (imports nothing else from the project).

Public surface: ``Node``, ``Process``, ``GenServer`` and the term types; errors are drawn in
``erldist.errors``.
"""

from .epmd import EpmdAddress
from .errors import (
    BackpressureError,
    CallError,
    CallTimeout,
    DecodeError,
    EncodeError,
    ErldistError,
    HandshakeError,
    NodeDownError,
    ProcessExitError,
    RpcError,
    TermError,
)
from .etf import decode, encode
from .gen_server import NO_REPLY, Caller, GenServer
from .node import HandshakeStats, Node
from .process import Process
from .terms import Atom, BitString, Export, Fun, ImproperList, Pid, Port, Reference
from .tls import DistTls

__all__ = [
    "NO_REPLY",
    "Atom",
    "BackpressureError",
    "BitString",
    "CallError",
    "CallTimeout",
    "Caller",
    "DecodeError",
    "DistTls",
    "EncodeError",
    "EpmdAddress",
    "ErldistError",
    "Export",
    "Fun",
    "GenServer",
    "HandshakeError",
    "HandshakeStats",
    "ImproperList",
    "Node",
    "NodeDownError",
    "Pid",
    "Port",
    "Process",
    "ProcessExitError",
    "Reference",
    "RpcError",
    "TermError",
    "decode",
    "encode",
]
