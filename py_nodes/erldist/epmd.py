"""EPMD client: register a node (kept alive by one open connection), look nodes up, start epmd.

The EPMD address is a parameter (``EpmdAddress``, 127.0.0.1:4369 by default): this library reads
no environment. The caller maps ``ERL_EPMD_ADDRESS`` / ``ERL_EPMD_PORT`` to it, as ``erl`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
from dataclasses import dataclass

from .errors import NodeDownError

__all__ = ["DEFAULT_EPMD", "EpmdAddress", "EpmdRegistration", "NodeAddress", "ensure_epmd", "lookup", "register"]

ALIVE2_X_REQ = 120
ALIVE2_X_RESP = 118
ALIVE2_RESP = 121
PORT_PLEASE2_REQ = 122
PORT2_RESP = 119
NODE_TYPE_NORMAL = 77
DIST_VERSION = 6


@dataclass(frozen=True)
class EpmdAddress:
    """Where the local epmd listens (``erl``'s ERL_EPMD_ADDRESS / ERL_EPMD_PORT)."""

    host: str = "127.0.0.1"
    port: int = 4369

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("EpmdAddress.host must not be empty")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"EpmdAddress.port must be 1-65535, got {self.port}")


DEFAULT_EPMD = EpmdAddress()


@dataclass(frozen=True)
class NodeAddress:
    """Where a node listens, as EPMD reports it."""

    port: int
    highest_version: int
    lowest_version: int


class EpmdRegistration:
    """An open registration; closing it (or the process dying) unregisters the node."""

    def __init__(self, creation: int, writer: asyncio.StreamWriter) -> None:
        self.creation = creation
        self._writer = writer

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


async def register(alive: str, port: int, *, epmd: EpmdAddress = DEFAULT_EPMD) -> EpmdRegistration:
    """Register ``alive`` (the part before '@') listening on ``port``; returns the creation."""
    host, epmd_port = epmd.host, epmd.port
    name = alive.encode()
    req = struct.pack(">BHBBHHH", ALIVE2_X_REQ, port, NODE_TYPE_NORMAL, 0, DIST_VERSION, DIST_VERSION, len(name))
    req += name + b"\x00\x00"
    try:
        reader, writer = await asyncio.open_connection(host, epmd_port)
    except OSError as exc:
        raise NodeDownError(f"cannot reach epmd at {host}:{epmd_port}: {exc}") from exc
    writer.write(len(req).to_bytes(2, "big") + req)
    try:
        head = await reader.readexactly(2)
        if head[0] == ALIVE2_X_RESP:
            creation = int.from_bytes(await reader.readexactly(4), "big")
        elif head[0] == ALIVE2_RESP:
            creation = int.from_bytes(await reader.readexactly(2), "big")
        else:
            raise NodeDownError(f"epmd answered registration with unknown tag {head[0]}")
    except (asyncio.IncompleteReadError, OSError) as exc:
        writer.close()
        raise NodeDownError(f"epmd closed the registration of {alive!r}: {exc}") from exc
    if head[1] != 0:
        writer.close()
        raise NodeDownError(f"epmd refused to register {alive!r} (result {head[1]}): name in use?")
    return EpmdRegistration(creation, writer)


async def lookup(alive: str, host: str, *, epmd_port: int = DEFAULT_EPMD.port) -> NodeAddress:
    """Ask the EPMD on ``host`` (listening on ``epmd_port``) where node ``alive`` listens."""
    port = epmd_port
    name = alive.encode()
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        raise NodeDownError(f"cannot reach epmd at {host}:{port}: {exc}") from exc
    try:
        writer.write((1 + len(name)).to_bytes(2, "big") + bytes([PORT_PLEASE2_REQ]) + name)
        data = await reader.read()
    except OSError as exc:
        raise NodeDownError(f"epmd lookup of {alive!r} on {host} failed: {exc}") from exc
    finally:
        writer.close()
    if len(data) < 2 or data[0] != PORT2_RESP:
        raise NodeDownError(f"epmd on {host} sent a malformed answer for {alive!r}")
    if data[1] != 0:
        raise NodeDownError(f"node {alive!r} is not registered with epmd on {host}")
    if len(data) < 10:
        raise NodeDownError(f"epmd on {host} sent a truncated answer for {alive!r}")
    node_port, _ntype, _proto, highest, lowest = struct.unpack_from(">HBBHH", data, 2)
    if highest < DIST_VERSION:
        raise NodeDownError(f"node {alive!r} speaks distribution version {highest}; 6 is required")
    return NodeAddress(node_port, highest, lowest)


async def _epmd_answers(host: str, port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    return True


async def ensure_epmd(address: EpmdAddress = DEFAULT_EPMD, *, timeout_s: float = 5.0) -> None:
    """Start ``epmd -daemon`` on ``address`` when nothing answers there."""
    host, port = address.host, address.port
    if await _epmd_answers(host, port):
        return
    exe = shutil.which("epmd")
    if exe is None:
        raise NodeDownError("no epmd is running and no epmd executable is on PATH (install erlang)")
    # The address on the command line: it wins over any ERL_EPMD_* the child inherits.
    # epmd adds the loopback address itself.
    proc = await asyncio.create_subprocess_exec(exe, "-daemon", "-address", host, "-port", str(port))
    await proc.wait()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if await _epmd_answers(host, port):
            return
        await asyncio.sleep(0.05)
    raise NodeDownError(f"started epmd but it does not answer on {host}:{port}")
