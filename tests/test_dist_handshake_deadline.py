"""Hostile peers on the distribution port: handshakes have a deadline and a cap (issue 12 item 7).

Connections that stay silent, or stop after ``send_name``, are closed after ``handshake_timeout_s``
(OTP's net_setuptime, 7 s); beyond ``max_handshakes`` accepted connections mid-handshake the oldest
is closed; both are counted on the node. Real sockets, a real ``erl`` node doing rpc throughout.
"""

from __future__ import annotations

import asyncio
import logging
import selectors
import socket
import statistics
import struct
import threading
import time
from dataclasses import dataclass, field

import pytest
from erl_support import HOST, ErlNode, erl_eval, unique_name

from py_nodes.erldist import Atom, Node, NodeDownError, epmd
from py_nodes.erldist import flags as F
from py_nodes.roles import echo

A = Atom


@dataclass
class Flood:
    """Idle TCP connections held by a thread; records when the node closes each one."""

    port: int
    count: int
    opened_at: list[float] = field(default_factory=list)
    closed_at: dict[int, float] = field(default_factory=dict)
    all_open: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, bound_s: float) -> None:
        sel = selectors.DefaultSelector()
        socks: list[socket.socket] = []
        try:
            for i in range(self.count):
                s = socket.create_connection((HOST, self.port), timeout=30)
                s.setblocking(False)
                self.opened_at.append(time.monotonic())
                sel.register(s, selectors.EVENT_READ, i)
                socks.append(s)
            self.all_open.set()
            deadline = time.monotonic() + bound_s
            while len(self.closed_at) < self.count and time.monotonic() < deadline and not self.stop.is_set():
                for key, _ in sel.select(timeout=0.2):
                    conn = key.fileobj
                    assert isinstance(conn, socket.socket)
                    try:
                        data = conn.recv(4096)
                    except ConnectionError:
                        data = b""
                    if not data:  # silent peers get nothing but the close
                        self.closed_at[key.data] = time.monotonic()
                        sel.unregister(conn)
        finally:
            self.all_open.set()
            for s in socks:
                s.close()
            sel.close()

    def hold_times_s(self) -> list[float]:
        return [self.closed_at[i] - self.opened_at[i] for i in sorted(self.closed_at)]


async def wait_for(condition: object, bound_s: float, what: str) -> None:
    """Poll ``condition()`` until true; fail after ``bound_s`` (generous: the machine is shared)."""
    deadline = time.monotonic() + bound_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {bound_s} s: {what}")
        await asyncio.sleep(0.05)


# Erlang side of the drill: rpc:call into the Python node in a loop for Ms milliseconds, returning
# [{StartedMs, LatencyUs}] per call, StartedMs from the loop's start (a failed call is a badmatch:
# the test fails).
PROBE = (
    "T0 = erlang:monotonic_time(millisecond),"
    " Loop = fun L(Acc) ->"
    "  Now = erlang:monotonic_time(millisecond),"
    "  case Now - T0 >= Ms of"
    "    true -> lists:reverse(Acc);"
    "    false -> {T, 1} = timer:tc(rpc, call, [N, echo, echo, [1], 10000]), timer:sleep(20),"
    "             L([{Now - T0, T} | Acc])"
    "  end end,"
    " Self ! probing,"
    " Loop([])."
)


def quantiles_ms(latencies_us: list[int]) -> str:
    if len(latencies_us) < 2:
        return f"{len(latencies_us)} calls"
    q = statistics.quantiles(latencies_us, n=100, method="inclusive")
    return (
        f"{len(latencies_us)} calls, p50 {q[49] / 1000:.2f} ms, p99 {q[98] / 1000:.2f} ms, "
        f"max {max(latencies_us) / 1000:.2f} ms"
    )


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_400_idle_connections_are_closed_while_rpc_keeps_working(
    cookie: str, shared_erl: ErlNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="erldist")
    async with Node(unique_name("flooded"), cookie=cookie) as node:
        echo.start(node)
        inbox = node.process(name="probe_inbox")
        probe = asyncio.ensure_future(
            erl_eval(node, shared_erl, PROBE, timeout=120, N=node.name, Ms=16_000, Self=inbox.pid)
        )
        assert await inbox.receive(timeout=30) == "probing"
        probe_t0 = time.monotonic()
        await asyncio.sleep(1.0)  # a second of calls before the flood, for comparison
        flood = Flood(node.port, 400)
        flood_start = time.monotonic()
        thread = threading.Thread(target=flood.run, args=(60.0,), daemon=True)
        thread.start()
        try:
            await asyncio.get_running_loop().run_in_executor(None, flood.all_open.wait, 60)
            # A new, real peer gets in while the flood holds the cap (the oldest idle one makes room).
            async with Node(unique_name("latecomer"), cookie=cookie) as late:
                assert await late.call(("echo", node.name), A("in"), timeout=30) == "in"
            await wait_for(lambda: not thread.is_alive(), 90, "the flood thread saw every close")
        finally:
            flood.stop.set()
        held = flood.hold_times_s()
        flood_end = max(flood.closed_at.values(), default=flood_start)
        calls = await probe
    assert len(held) == 400, f"only {len(held)} of 400 idle connections were closed"
    assert max(held) <= 10.0, f"longest hold {max(held):.2f} s"
    assert node.handshake_timeout_s == 7.0 and node.max_handshakes == 256  # defaults: OTP's net_setuptime
    stats = node.handshake_stats
    assert stats.timed_out + stats.evicted >= 400 and stats.timed_out >= 1 and stats.evicted >= 1
    # Logged, but rate-limited: one line per cause (within a minute), not one per connection.
    drops = [r.getMessage() for r in caplog.records if "handshake" in r.getMessage()]
    assert len(drops) == 2, drops
    assert "closing the oldest" in drops[0] and "did not finish the handshake within 7.0 s" in drops[1]
    # rpc kept working throughout: every call answered (else a badmatch above), and many of them
    # while the flood was held.
    start_ms, end_ms = ((t - probe_t0) * 1000 for t in (flood_start, flood_end))
    before = [lat for at, lat in calls if at < start_ms]
    during = [lat for at, lat in calls if start_ms <= at <= end_ms]
    assert len(during) >= 20, f"{len(during)} rpc calls during the flood"
    print(
        f"\nflood: 400 idle connections, held {min(held):.2f}-{max(held):.2f} s "
        f"(median {statistics.median(held):.2f} s); timed out {stats.timed_out}, evicted {stats.evicted}"
        f"\nrpc before the flood: {quantiles_ms(before)}\nrpc during the flood: {quantiles_ms(during)}"
    )


def _send_name_packet(name: str) -> bytes:
    body = b"N" + struct.pack(">QIH", F.OUR_FLAGS, 1, len(name)) + name.encode()
    return len(body).to_bytes(2, "big") + body


async def test_a_peer_that_stops_after_send_name_is_closed_at_the_deadline(cookie: str) -> None:
    async with Node(unique_name("deadline"), cookie=cookie, handshake_timeout_s=2.0) as node:
        reader, writer = await asyncio.open_connection(HOST, node.port)
        started = time.monotonic()
        writer.write(_send_name_packet(unique_name("halfway")))
        status = await asyncio.wait_for(reader.readexactly(5), 30)
        assert status == b"\x00\x03sok"  # a valid send_name: the node answers and waits for our digest
        rest = await asyncio.wait_for(reader.read(), 60)  # EOF when the node gives up on us
        held_s = time.monotonic() - started
        writer.close()
        assert rest[2:3] == b"N"  # its challenge came before the close
        assert 1.9 <= held_s <= 30, held_s
        await wait_for(lambda: node.handshake_stats.timed_out == 1, 30, "the timeout is counted")
        assert node.handshake_stats.evicted == 0


async def test_silent_connection_is_closed_at_the_deadline(cookie: str) -> None:
    async with Node(unique_name("silent"), cookie=cookie, handshake_timeout_s=1.0) as node:
        reader, writer = await asyncio.open_connection(HOST, node.port)
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 60) == b""
        writer.close()
        assert 0.9 <= time.monotonic() - started <= 30
        await wait_for(lambda: node.handshake_stats.timed_out == 1, 30, "the timeout is counted")


async def test_beyond_the_cap_the_oldest_handshake_is_closed(cookie: str) -> None:
    async with Node(unique_name("capped"), cookie=cookie, handshake_timeout_s=120.0, max_handshakes=4) as node:
        echo.start(node)
        conns = []
        for _ in range(10):
            conns.append(await asyncio.open_connection(HOST, node.port))
            await wait_for(lambda: node.handshakes_in_progress() == min(len(conns), 4), 30, "accepted")
        # The first six were evicted (oldest first); the last four are still open.
        for i, (reader, _) in enumerate(conns):
            if i < 6:
                assert await asyncio.wait_for(reader.read(), 30) == b"", i
            else:
                assert not reader.at_eof()
        assert (node.handshake_stats.evicted, node.handshake_stats.timed_out) == (6, 0)
        # A real peer still gets in (it evicts one more idle connection) and is not counted as dropped.
        async with Node(unique_name("peer"), cookie=cookie) as peer:
            assert await peer.call(("echo", node.name), [1], timeout=30) == [1]
        assert node.handshake_stats.evicted == 7 and node.handshakes_in_progress() == 3
        for _, writer in conns:
            writer.close()


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="handshake_timeout_s"):
        Node("a@h", cookie="c", handshake_timeout_s=0)
    with pytest.raises(ValueError, match="max_handshakes"):
        Node("a@h", cookie="c", max_handshakes=0)


async def test_a_trickling_peer_is_closed_at_the_deadline_too(cookie: str) -> None:
    """The deadline counts from the connection, not from the last byte: trickling does not help."""
    async with Node(unique_name("trickle"), cookie=cookie, handshake_timeout_s=1.0) as node:
        reader, writer = await asyncio.open_connection(HOST, node.port)
        started = time.monotonic()
        packet = _send_name_packet(unique_name("slow"))
        for byte in packet:  # a valid send_name, one byte every 0.2 s (~8 s in all)
            if reader.at_eof():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.2)
        assert await asyncio.wait_for(reader.read(), 60) == b""
        writer.close()
        assert time.monotonic() - started < 6.0  # closed long before the packet was complete
        await wait_for(lambda: node.handshake_stats.timed_out == 1, 30, "the timeout is counted")


@pytest.mark.parametrize(
    ("connect_timeout_s", "handshake_timeout_s", "counted"), [(7.0, 1.0, 1), (1.0, 120.0, 0)]
)
async def test_our_own_connect_to_a_silent_peer_gives_up_and_closes(
    cookie: str, connect_timeout_s: float, handshake_timeout_s: float, counted: int
) -> None:
    """A 'node' registered in epmd that accepts and never answers: connect fails, socket closed
    (whichever limit ends it: the handshake deadline, counted, or the caller's connect timeout)."""
    closed = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # EOF when the node gives up
        closed.set()
        writer.close()

    server = await asyncio.start_server(mute, HOST, 0)
    alive = unique_name("mute").split("@")[0]
    registration = await epmd.register(alive, server.sockets[0].getsockname()[1])
    try:
        async with Node(
            unique_name("caller"),
            cookie=cookie,
            connect_timeout_s=connect_timeout_s,
            handshake_timeout_s=handshake_timeout_s,
        ) as node:
            with pytest.raises(NodeDownError):
                await node.connect(f"{alive}@{HOST}")
            await asyncio.wait_for(closed.wait(), 30)
            assert node.handshake_stats.timed_out == counted
    finally:
        await registration.close()
        server.close()


async def test_garbage_is_closed_at_once_and_counted(cookie: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="erldist")
    async with Node(unique_name("garbage"), cookie=cookie) as node:
        for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00\x05hello", b"\x00\x00"):
            reader, writer = await asyncio.open_connection(HOST, node.port)
            writer.write(junk)
            assert await asyncio.wait_for(reader.read(), 30) == b""  # long before the 7 s deadline
            writer.close()
        await wait_for(lambda: node.handshake_stats.failed == 3, 30, "three failures counted")
        assert node.handshake_stats.timed_out == 0
    logged = [r.getMessage() for r in caplog.records if "closed a connection from" in r.getMessage()]
    assert len(logged) == 1, logged  # at most one line a minute for garbage
