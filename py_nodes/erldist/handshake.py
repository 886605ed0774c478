"""Distribution handshake, version 6, as sans-IO state machines (no sockets, no asyncio).

Feed received bytes with ``receive_data``; send what ``data_to_send`` returns. When ``done`` is
true the peer is authenticated, ``peer_name``/``peer_flags``/``peer_creation`` are set and
``leftover`` holds bytes that already belong to the connected phase. A refusal raises
``HandshakeError`` (the messages never contain the cookie).

Packets carry a 2-byte length until the handshake ends (a 4-byte one over TLS, as
``inet_tls_dist`` frames them: ``header_bytes=4``). Initiator (A) and acceptor (B):

    A -> B  'N' flags:64 creation:32 nlen:16 name          send_name
    B -> A  's' status                                     ok | ok_simultaneous | nok | alive | ...
    A -> B  's' true|false                                 only after 'alive'
    B -> A  'N' flags:64 challenge:32 creation:32 nlen:16 name
    A -> B  'r' challenge:32 digest:16                     digest = md5(cookie ++ B's challenge)
    B -> A  'a' digest:16                                  digest = md5(cookie ++ A's challenge)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from collections.abc import Callable
from typing import Literal

from . import flags as F
from .errors import HandshakeError

__all__ = ["Acceptor", "Initiator", "Status", "digest"]

Status = Literal["ok", "ok_simultaneous", "nok", "not_allowed", "alive"]

_NAME = struct.Struct(">QIH")  # flags, creation, nlen
_CHALLENGE = struct.Struct(">QIIH")  # flags, challenge, creation, nlen
_MAX_PACKET = 4096  # handshake packets are tiny; refuse anything bigger


def digest(challenge: int, cookie: bytes) -> bytes:
    """MD5 of the cookie followed by the challenge in decimal, as dist_util computes it."""
    return hashlib.md5(cookie + str(challenge).encode()).digest()


class _Handshake:
    """What both sides share: packet reassembly, outbound buffer, flag checks."""

    def __init__(self, our_name: str, our_flags: int, creation: int, cookie: bytes, header_bytes: int = 2) -> None:
        if header_bytes not in (2, 4):
            raise ValueError(f"header_bytes must be 2 (TCP) or 4 (TLS), got {header_bytes}")
        self._header = header_bytes
        self.our_name = our_name.encode()
        self.our_flags = our_flags
        self.creation = creation
        self._cookie = cookie
        self._in = b""
        self._out: list[bytes] = []
        self.done = False
        self.leftover = b""
        self.peer_name = ""
        self.peer_flags = 0
        self.peer_creation = 0

    def __repr__(self) -> str:  # never show the cookie
        return f"<{type(self).__name__} {self.our_name.decode()} <-> {self.peer_name or '?'}>"

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes) -> None:
        if self.done:
            raise HandshakeError("handshake already finished")
        self._in += data
        head = self._header
        while len(self._in) >= head:
            size = int.from_bytes(self._in[:head], "big")
            if size == 0 or size > _MAX_PACKET:
                raise HandshakeError(f"bad handshake packet length {size}")
            if len(self._in) < head + size:
                return
            packet, self._in = self._in[head : head + size], self._in[head + size :]
            if self._on_packet(packet):
                self.done = True
                self.leftover, self._in = self._in, b""
                return

    def _on_packet(self, packet: bytes) -> bool:
        """Handle one packet; True when the handshake is complete."""
        raise NotImplementedError

    def _send(self, payload: bytes) -> None:
        self._out.append(len(payload).to_bytes(self._header, "big") + payload)

    def _check_peer_flags(self, peer_flags: int) -> None:
        missing = F.REQUIRED_OF_PEER & ~peer_flags
        if missing:
            raise HandshakeError(
                f"peer {self.peer_name!r} lacks mandatory distribution flags: "
                + ", ".join(F.names(missing))
            )

    def _parse_name(self, data: bytes, offset: int, nlen: int) -> str:
        raw = data[offset : offset + nlen]
        if len(raw) != nlen or b"@" not in raw:
            raise HandshakeError(f"malformed node name in handshake: {raw!r}")
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise HandshakeError(f"node name is not UTF-8: {raw!r}") from exc


class Initiator(_Handshake):
    """The side that connected. Call ``start()`` first, then feed what the peer sends."""

    def __init__(
        self,
        our_name: str,
        our_flags: int,
        creation: int,
        cookie: bytes,
        *,
        challenge: int | None = None,
        header_bytes: int = 2,
    ) -> None:
        super().__init__(our_name, our_flags, creation, cookie, header_bytes)
        self._challenge = secrets.randbits(32) if challenge is None else challenge
        self._state = "status"
        self.status: str = ""

    @property
    def awaiting_ack(self) -> bool:
        """True after we sent our digest: a close now means the peer rejected our cookie."""
        return self._state == "ack"

    def start(self) -> None:
        self._send(b"N" + _NAME.pack(self.our_flags, self.creation, len(self.our_name)) + self.our_name)

    def _on_packet(self, p: bytes) -> bool:
        tag = p[:1]
        if self._state == "status" and tag == b"s":
            self.status = p[1:].decode(errors="replace")
            if self.status in ("ok", "ok_simultaneous"):
                self._state = "challenge"
            elif self.status == "alive":
                # We are connecting, so we hold no live connection: the peer's is stale.
                self._send(b"strue")
                self._state = "challenge"
            else:
                raise HandshakeError(f"peer refused the connection with status {self.status!r}")
        elif self._state == "challenge" and tag == b"N":
            if len(p) < 1 + _CHALLENGE.size:
                raise HandshakeError("challenge packet too short")
            peer_flags, their_challenge, creation, nlen = _CHALLENGE.unpack_from(p, 1)
            self.peer_name = self._parse_name(p, 1 + _CHALLENGE.size, nlen)
            self.peer_flags, self.peer_creation = peer_flags, creation
            self._check_peer_flags(peer_flags)
            reply = digest(their_challenge, self._cookie)
            self._send(b"r" + self._challenge.to_bytes(4, "big") + reply)
            self._state = "ack"
        elif self._state == "ack" and tag == b"a":
            if len(p) != 17 or not hmac.compare_digest(p[1:], digest(self._challenge, self._cookie)):
                raise HandshakeError(f"peer {self.peer_name!r} failed the cookie check (wrong cookie)")
            return True
        else:
            raise HandshakeError(f"unexpected handshake packet {tag!r} in state {self._state}")
        return False


class Acceptor(_Handshake):
    """The side that accepted. ``decide`` maps the peer's node name to the status to answer."""

    def __init__(
        self,
        our_name: str,
        our_flags: int,
        creation: int,
        cookie: bytes,
        decide: Callable[[str], Status],
        *,
        challenge: int | None = None,
        header_bytes: int = 2,
    ) -> None:
        super().__init__(our_name, our_flags, creation, cookie, header_bytes)
        self._decide = decide
        self._challenge = secrets.randbits(32) if challenge is None else challenge
        self._state = "name"
        self.status: Status | None = None

    def _on_packet(self, p: bytes) -> bool:
        tag = p[:1]
        if self._state == "name" and tag == b"N":
            if len(p) < 1 + _NAME.size:
                raise HandshakeError("name packet too short")
            peer_flags, creation, nlen = _NAME.unpack_from(p, 1)
            self.peer_name = self._parse_name(p, 1 + _NAME.size, nlen)
            self.peer_flags, self.peer_creation = peer_flags, creation
            try:
                self._check_peer_flags(peer_flags)
            except HandshakeError:
                self._send(b"snot_allowed")
                raise
            self.status = self._decide(self.peer_name)
            self._send(b"s" + self.status.encode())
            if self.status in ("ok", "ok_simultaneous"):
                self._send_challenge()
            elif self.status == "alive":
                self._state = "alive"
            else:
                raise HandshakeError(f"refused {self.peer_name!r} with status {self.status!r}")
        elif self._state == "name" and tag == b"n":
            raise HandshakeError("peer speaks distribution version 5 only; version 6 is required")
        elif self._state == "alive" and tag == b"s":
            if p[1:] != b"true":
                raise HandshakeError(f"peer {self.peer_name!r} kept its existing connection")
            self._send_challenge()
        elif self._state == "reply" and tag == b"r":
            if len(p) != 21:
                raise HandshakeError("challenge reply packet has the wrong size")
            their_challenge = int.from_bytes(p[1:5], "big")
            if not hmac.compare_digest(p[5:21], digest(self._challenge, self._cookie)):
                raise HandshakeError(f"peer {self.peer_name!r} failed the cookie check (wrong cookie)")
            self._send(b"a" + digest(their_challenge, self._cookie))
            return True
        else:
            raise HandshakeError(f"unexpected handshake packet {tag!r} in state {self._state}")
        return False

    def _send_challenge(self) -> None:
        self._send(
            b"N"
            + _CHALLENGE.pack(self.our_flags, self._challenge, self.creation, len(self.our_name))
            + self.our_name
        )
        self._state = "reply"
