"""One distribution connection: handshake, then pass-through frames, ticks and write buffering.

The handshake has a deadline (the node's ``handshake_timeout_s``): a peer that stays silent or
stops half-way is closed then, as OTP does after net_setuptime.

Frames are ``len:32, 'p', 131 control [, 131 payload]``; a zero-length frame is a tick. Received
frames are parsed with an offset into one bytes object per read (never re-slicing the buffer per
frame), and handed to the owner (the node's connection manager) in order, synchronously: one
ordered path per connection.
Writes are collected and flushed once per event-loop turn, and frames sent while a read is
parsed (replies) leave together when the parsing ends.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any, cast

from . import etf
from .errors import BackpressureError, DecodeError, HandshakeError
from .handshake import Acceptor, Initiator
from .interfaces import ConnectionOwner

__all__ = ["NO_PAYLOAD", "Connection"]

log = logging.getLogger("erldist.connection")

NO_PAYLOAD: Any = object()
_TICK = b"\x00\x00\x00\x00"
_PASS_THROUGH = 112
_u32 = struct.Struct(">I").unpack_from


class Connection(asyncio.Protocol):
    """An asyncio protocol for one peer node. Created by the node for both directions."""

    def __init__(
        self,
        owner: ConnectionOwner[Connection],
        handshake: Initiator | Acceptor,
        *,
        tick_interval_s: float,
        high_water_bytes: int,
        hard_limit_bytes: int,
    ) -> None:
        self.owner = owner
        self.handshake: Initiator | Acceptor | None = handshake
        self.peer_name = ""
        self.peer_flags = 0
        self.peer_creation = 0
        self.transport: asyncio.Transport | None = None
        self.established: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        self._tick_interval_s = tick_interval_s
        self._tick_handle: asyncio.TimerHandle | None = None
        self._deadline_handle: asyncio.TimerHandle | None = None
        self._silent_intervals = 0
        self._received = False
        self._sent = False
        self._high_water = high_water_bytes
        self._hard_limit = hard_limit_bytes
        self._out: list[bytes | bytearray] = []
        self._out_bytes = 0
        self._flush_scheduled = False
        self._receiving = False  # in data_received: sends are batched, flushed at its end
        self._writable = asyncio.Event()
        self._writable.set()
        self._chunks: list[bytes] = []
        self._chunks_len = 0
        self._need = 0
        self._control_cache = etf.SendControlCache()
        self.closed = False
        self.messages_in = 0
        self.messages_out = 0

    def __repr__(self) -> str:
        return f"<Connection {self.owner.name} <-> {self.peer_name or '?'}>"

    # -- asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports are not asyncio subclasses.
        self.transport = writer = cast(asyncio.Transport, transport)
        writer.set_write_buffer_limits(high=self._high_water)
        loop = asyncio.get_running_loop()
        self._deadline_handle = loop.call_later(self.owner.handshake_timeout_s, self._handshake_deadline)
        if isinstance(self.handshake, Acceptor):
            self.owner.handshake_started(self)
        elif isinstance(self.handshake, Initiator):
            self.handshake.start()
            writer.write(self.handshake.data_to_send())

    def data_received(self, data: bytes) -> None:
        self._received = True
        if self.handshake is not None:
            self._handshake_data(data)
            return
        if self._chunks:
            self._chunks.append(data)
            self._chunks_len += len(data)
            if self._chunks_len < self._need:
                return  # a big frame still arriving: join once, when complete
            data = b"".join(self._chunks)
            self._chunks.clear()
        self._receiving = True
        try:
            self._parse_frames(data)
        finally:
            self._receiving = False
        if self._out:
            self._flush()  # replies made while parsing leave now, in one write

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed = self.closed
        self._close_state()
        self.owner.handshake_ended(self)
        hs = self.handshake
        if isinstance(hs, Initiator) and hs.awaiting_ack and not was_closed:
            # OTP closes without a word when our digest is wrong.
            self.owner.handshake_failed(self, hs, HandshakeError(f"{hs.peer_name} closed the connection at the cookie check (wrong cookie?)"))
        if not self.established.done():
            self.established.set_exception(HandshakeError(f"connection closed during handshake: {exc}"))
            self.established.exception()  # mark retrieved: a failed attempt is reported elsewhere
        else:
            self.owner.connection_lost(self)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def peer_address(self) -> str:
        """``host:port`` of the other end, for logs."""
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"

    # -- handshake ---------------------------------------------------------------------------

    def _handshake_deadline(self) -> None:
        self._deadline_handle = None
        if self.handshake is None or self.closed:
            return
        self.owner.handshake_ended(self)
        self.owner.handshake_timed_out(self)
        self.abort()

    def _handshake_data(self, data: bytes) -> None:
        hs = self.handshake
        assert hs is not None and self.transport is not None
        try:
            hs.receive_data(data)
        except HandshakeError as exc:
            out = hs.data_to_send()
            if out:
                self.transport.write(out)
            self.owner.handshake_failed(self, hs, exc)
            self.close()
            return
        out = hs.data_to_send()
        if out:
            self.transport.write(out)
        if not hs.done:
            return
        self.handshake = None
        self.owner.handshake_ended(self)
        if self._deadline_handle is not None:
            self._deadline_handle.cancel()
            self._deadline_handle = None
        self.peer_name, self.peer_flags, self.peer_creation = hs.peer_name, hs.peer_flags, hs.peer_creation
        if not self.owner.connection_up(self):
            self.close()
            return
        self._tick_handle = asyncio.get_running_loop().call_later(self._tick_interval_s, self._on_tick)
        self.established.set_result(self)
        if hs.leftover:
            self.data_received(hs.leftover)

    # -- receiving ---------------------------------------------------------------------------

    def _parse_frames(self, data: bytes) -> None:
        pos = 0
        size = len(data)
        dispatch = self.owner.dispatch
        decode_frame = etf.decode_frame
        cache = self._control_cache
        while size - pos >= 4:
            flen = _u32(data, pos)[0]
            if flen == 0:
                pos += 4
                continue
            end = pos + 4 + flen
            if end > size:
                break
            start = pos + 4
            pos = end
            if data[start] != _PASS_THROUGH:
                log.warning("%s: dropped a frame of kind %d (only pass-through frames are agreed)", self, data[start])
                continue
            try:
                control, message = decode_frame(data, start + 1, end, NO_PAYLOAD, cache=cache)
            except DecodeError as exc:
                log.warning("%s: dropped an undecodable frame: %s", self, exc)
                continue
            self.messages_in += 1
            dispatch(self, control, message)
            if self.closed:
                return
        if pos < size:
            rest = data[pos:]
            self._chunks = [rest]
            self._chunks_len = len(rest)
            self._need = 4 + int.from_bytes(rest[:4], "big") if len(rest) >= 4 else 4

    # -- sending -----------------------------------------------------------------------------

    def buffered_bytes(self) -> int:
        pending = self.transport.get_write_buffer_size() if self.transport else 0
        return self._out_bytes + pending

    def send(self, control: Any, message: Any = NO_PAYLOAD) -> None:
        """Queue one frame; raises BackpressureError over the hard limit (nothing is queued)."""
        if self.closed:
            return  # like Erlang: a send to a lost node vanishes
        if self._out_bytes > self._hard_limit or self.buffered_bytes() > self._hard_limit:
            raise BackpressureError(
                f"write buffer to {self.peer_name} is over {self._hard_limit} bytes; use asend()"
            )
        frame = etf.encode_frame(control, message, NO_PAYLOAD)
        self.messages_out += 1
        if self._flush_scheduled or self._receiving:
            # More frames this loop turn, or replies made while parsing what arrived: batched
            # into one write (data_received flushes when its parsing is done).
            self._out.append(frame)
            self._out_bytes += len(frame)
            return
        # The first frame of a loop turn goes out at once (a lone reply waits for nothing).
        self._flush_scheduled = True
        asyncio.get_running_loop().call_soon(self._flush)
        if self.transport is not None:
            self.transport.write(frame)
            self._sent = True

    async def drain(self) -> None:
        """Wait until the write buffer is below the high-water mark (or the connection is gone)."""
        if self._out_bytes > self._high_water:
            self._flush()
        while not self.closed and not self._writable.is_set():
            await self._writable.wait()

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._out or self.transport is None or self.closed:
            self._out.clear()
            self._out_bytes = 0
            return
        out = self._out
        self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()
        self._out_bytes = 0
        self._sent = True

    # -- ticks -------------------------------------------------------------------------------

    def _on_tick(self) -> None:
        if self.closed or self.transport is None:
            return
        if not self._sent and not self._out:
            self.transport.write(_TICK)
        self._sent = False
        if self._received:
            self._silent_intervals = 0
        else:
            self._silent_intervals += 1
            if self._silent_intervals >= 4:  # net_ticktime without a byte: the peer is gone
                log.warning("%s: no data for a whole net_ticktime; closing", self)
                self.close()
                return
        self._received = False
        self._tick_handle = asyncio.get_running_loop().call_later(self._tick_interval_s, self._on_tick)

    # -- closing -----------------------------------------------------------------------------

    def _close_state(self) -> None:
        self.closed = True
        self._writable.set()
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        if self._deadline_handle is not None:
            self._deadline_handle.cancel()
            self._deadline_handle = None

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._flush()
            self.transport.close()
        self._close_state()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self._close_state()
