"""Python node to Python node: simultaneous connects, backpressure, local semantics, bad frames."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

import pytest
from erl_support import unique_name

from py_nodes.erldist import (
    Atom,
    BackpressureError,
    CallError,
    Node,
    Process,
    ProcessExitError,
    encode,
)
from py_nodes.roles import echo

A = Atom


async def eventually(condition: Callable[[], bool], what: str, bound_s: float = 30.0) -> None:
    """Wait for ``condition()`` (polled), failing after a long bound: events, not sleeps."""
    deadline = time.monotonic() + bound_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {bound_s} s: {what}")
        await asyncio.sleep(0.01)


async def test_simultaneous_connect_ends_with_one_connection_each(cookie: str) -> None:
    async with Node(unique_name("sa"), cookie=cookie) as a, Node(unique_name("sb"), cookie=cookie) as b:
        ca, cb = await asyncio.gather(a.connect(b.name), b.connect(a.name))
        # The losing attempt is closed; then each side holds exactly the connection it returned.
        await eventually(
            lambda: a.handshakes_in_progress() == b.handshakes_in_progress() == 0, "the losing attempt closed"
        )
        assert a.connected_nodes() == [b.name] and b.connected_nodes() == [a.name]
        assert a.connection(b.name) is ca and b.connection(a.name) is cb
        assert not ca.closed and not cb.closed
        echo.start(b)
        assert await a.call(("echo", b.name), [1]) == [1]


async def test_messages_sent_while_connecting_arrive_in_order(cookie: str) -> None:
    async with Node(unique_name("oa"), cookie=cookie) as a, Node(unique_name("ob"), cookie=cookie) as b:
        inbox = b.process(name="inbox")
        sender = a.process()
        for i in range(100):
            sender.send(("inbox", b.name), i)  # the first sends start the connection
        assert [await inbox.receive(timeout=5) for _ in range(100)] == list(range(100))


async def test_links_and_monitors_between_python_nodes(cookie: str) -> None:
    async with Node(unique_name("la"), cookie=cookie) as a, Node(unique_name("lb"), cookie=cookie) as b:
        watcher = a.process()
        watcher.trap_exit = True
        target = b.process()
        watcher.link(target.pid)
        ref = watcher.monitor(target.pid)
        await eventually(lambda: watcher.pid in target.links and ref in target.watchers, "link and monitor at b")
        b.terminate(target, A("done"))
        got = {await watcher.receive(timeout=5) for _ in range(2)}
        assert got == {(A("EXIT"), target.pid, A("done")), (A("DOWN"), ref, A("process"), target.pid, A("done"))}


async def test_backpressure_when_the_peer_stops_reading(cookie: str) -> None:
    # A child process hosts the peer so that SIGSTOP freezes only it.
    name = unique_name("frozen")
    peer = await asyncio.create_subprocess_exec(
        ".venv/bin/stellarops", "node", "--role", "echo", "--name", name,
        env={**os.environ, "STELLAROPS_COOKIE": cookie}, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert peer.stdout is not None
        await asyncio.wait_for(peer.stdout.readline(), 20)
        async with Node(unique_name("flood"), cookie=cookie, high_water_bytes=1 << 20, hard_limit_bytes=4 << 20) as n:
            await n.connect(name)
            proc = n.process()
            os.kill(peer.pid, signal.SIGSTOP)
            blob = b"x" * 65536
            with pytest.raises(BackpressureError):
                for _ in range(10_000):  # 640 MB if nothing pushed back
                    proc.send(("sink", name), blob)
                    await asyncio.sleep(0)
            conn = n.connection(name)
            assert conn is not None and conn.buffered_bytes() <= (4 << 20) + 2 * 65536 + (2 << 20)
            waiting = asyncio.ensure_future(proc.asend(("sink", name), blob))
            await asyncio.sleep(0.3)  # an observation window, not a synchronisation:
            assert not waiting.done()  # asend waits while the peer is frozen (for any window)
            os.kill(peer.pid, signal.SIGCONT)
            await asyncio.wait_for(waiting, 20)
    finally:
        os.kill(peer.pid, signal.SIGCONT)
        peer.terminate()
        await peer.wait()


async def test_local_link_monitor_and_crash_semantics(py_node: Node) -> None:
    async def crasher(proc: Process) -> None:
        await proc.receive()
        raise KeyError("missing")

    boss = py_node.process()
    boss.trap_exit = True
    worker = py_node.spawn(crasher, link=boss.pid)
    ref = boss.monitor(worker.pid)
    boss.send(worker.pid, A("go"))
    reason = (A("python_exception"), b"KeyError", b"'missing'")
    got = {await boss.receive(timeout=5) for _ in range(2)}
    assert got == {(A("EXIT"), worker.pid, reason), (A("DOWN"), ref, A("process"), worker.pid, reason)}

    # A linked process that does not trap exits dies with the same reason.
    a = py_node.process()
    b = py_node.process()
    a.link(b.pid)
    py_node.terminate(b, A("boom"))
    assert not a.alive and a.exit_reason == "boom"
    with pytest.raises(ProcessExitError):
        await a.receive(timeout=1)


async def test_undecodable_and_malformed_frames_are_dropped_not_fatal(cookie: str) -> None:
    async with Node(unique_name("ga"), cookie=cookie) as a, Node(unique_name("gb"), cookie=cookie) as b:
        echo.start(b)
        conn = await a.connect(b.name)
        assert conn.transport is not None
        bad_frames = [
            b"p\x83\x68\x03\x61\x02",  # truncated control tuple
            b"p\x83\x79",  # LOCAL_EXT
            b"q\x83\x6a",  # not a pass-through frame
            b"p" + encode((2, A("")))[0:] + encode(1),  # SEND without a target
            b"p" + encode((99, 1, 2)),  # unknown operation
            b"p" + encode(A("not_a_tuple")),
            b"p" + encode((6, 1, A(""), A("echo"))) + encode(1),  # REG_SEND with a bad sender
        ]
        for body in bad_frames:
            conn.transport.write(len(body).to_bytes(4, "big") + body)
        # The call travels behind the bad frames on the same ordered connection: no wait needed.
        assert await a.call(("echo", b.name), A("still_alive")) == "still_alive"
        assert b.connected_nodes() == [a.name]


async def test_call_to_unreachable_node_raises_nodedown(py_node: Node) -> None:
    with pytest.raises(CallError) as exc:
        await py_node.call(("echo", "nobody_here@127.0.0.1"), 1, timeout=5)
    assert exc.value.reason == (A("nodedown"), A("nobody_here@127.0.0.1"))
