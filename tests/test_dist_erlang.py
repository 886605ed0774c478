"""The distribution library against real OTP nodes: ping, calls, rpc, links, monitors, signals."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable

import pytest
from erl_support import ErlNode, erl_eval, unique_name

from py_nodes.erldist import (
    Atom,
    CallError,
    CallTimeout,
    GenServer,
    Node,
    NodeDownError,
    Pid,
    Process,
    ProcessExitError,
    RpcError,
)
from py_nodes.roles import echo

A = Atom


async def eventually(condition: Callable[[], bool | Awaitable[bool]], what: str, bound_s: float = 30.0) -> None:
    """Wait for ``condition()`` (polled; may be async), failing after a long bound: events, not sleeps."""
    deadline = time.monotonic() + bound_s
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {bound_s} s: {what}")
        await asyncio.sleep(0.01)


async def _is(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


async def erl_links(node: Node, erl: ErlNode, pid: Pid) -> list[Pid]:
    links: list[Pid] = await erl_eval(node, erl, "element(2, process_info(P, links)).", P=pid)
    return links


async def test_ping_both_ways(py_node: Node, shared_erl: ErlNode) -> None:
    assert await py_node.ping(shared_erl.name)
    assert await erl_eval(py_node, shared_erl, f"net_adm:ping('{py_node.name}').") == "pong"


async def test_hidden_by_default_and_published_as_option(py_node: Node, shared_erl: ErlNode, cookie: str) -> None:
    await py_node.connect(shared_erl.name)
    nodes = await erl_eval(py_node, shared_erl, "{nodes(), nodes(hidden)}.")
    assert py_node.name not in nodes[0] and py_node.name in nodes[1]
    async with Node(unique_name("pub"), cookie=cookie, published=True) as pub:
        await pub.connect(shared_erl.name)
        visible = await erl_eval(pub, shared_erl, "nodes().")
        assert pub.name in visible


async def test_erlang_calls_python_gen_server(py_node: Node, shared_erl: ErlNode) -> None:
    echo.start(py_node)
    term = (A("hello"), [1, 2, 3], b"bin", {A("k"): 1.5}, -(2**70))
    got = await erl_eval(py_node, shared_erl, f"gen_server:call({{echo, '{py_node.name}'}}, T).", T=term)
    assert got == term


async def test_python_calls_erlang_gen_server(py_node: Node, shared_erl: ErlNode) -> None:
    # The driver itself is an Erlang gen_server; start another plain one too.
    pid = await erl_eval(
        py_node,
        shared_erl,
        "{ok, P} = gen_server:start(dist_test_server, [], []), P.",
    )
    assert type(pid) is Pid and pid.node == shared_erl.name
    assert await py_node.call(pid, (A("echo"), b"x")) == (A("ok"), b"x")
    py_node.cast(pid, (A("store"), 7))
    assert await py_node.call(pid, A("stored")) == 7


async def test_call_errors_timeout_noproc_and_crash(py_node: Node, shared_erl: ErlNode) -> None:
    pid = await erl_eval(py_node, shared_erl, "{ok, P} = gen_server:start(dist_test_server, [], []), P.")
    with pytest.raises(CallTimeout):
        await py_node.call(pid, (A("sleep"), 500), timeout=0.1)
    # The server answers this call only after the late reply, which travels ahead of it on the
    # same connection: when this returns, the late reply has arrived (and must not leak anywhere).
    assert await py_node.call(pid, (A("echo"), 1)) == (A("ok"), 1)
    with pytest.raises(CallError) as crash:
        await py_node.call(pid, (A("crash"), A("boom")))
    assert crash.value.reason == "boom"
    with pytest.raises(CallError) as dead:
        await py_node.call(pid, A("stored"))
    assert dead.value.reason == "noproc"
    with pytest.raises(CallError) as unknown:
        await py_node.call(("no_such_server", shared_erl.name), 1)
    assert unknown.value.reason == "noproc"
    assert len(py_node._procs) == 1 + 0  # only net_kernel: every call's process is gone


async def test_python_handler_exception_reaches_erlang_caller(py_node: Node, shared_erl: ErlNode) -> None:
    class Fragile(GenServer):
        def handle_call(self, request: object, caller: object) -> object:
            raise RuntimeError("handler broke")

    py_node.start_server(Fragile(), name="fragile")
    got = await erl_eval(py_node, shared_erl, f"catch gen_server:call({{fragile, '{py_node.name}'}}, x).")
    assert got[0] == "EXIT"
    assert got[1][0] == (A("python_exception"), b"RuntimeError", b"handler broke")


async def test_rpc_call_functions_undef_and_exceptions(py_node: Node, shared_erl: ErlNode) -> None:
    echo.start(py_node)
    n = py_node.name
    assert await erl_eval(py_node, shared_erl, f"rpc:call('{n}', echo, echo, [{{a, <<\"b\">>, 3}}]).") == (
        A("a"),
        b"b",
        3,
    )
    undef = await erl_eval(py_node, shared_erl, f"rpc:call('{n}', os, cmd, [\"ls\"]).")
    assert undef[0] == "badrpc" and undef[1][0] == "EXIT" and undef[1][1][0] == "undef"
    failed = await erl_eval(py_node, shared_erl, f"rpc:call('{n}', echo, fail, [<<\"boom\">>]).")
    assert failed[0] == "badrpc" and failed[1][0] == "EXIT"
    assert failed[1][1][0] == (A("python_exception"), b"ValueError", b"boom")
    assert await erl_eval(py_node, shared_erl, f"erpc:call('{n}', echo, echo, [[1,2]]).") == [1, 2]
    assert await erl_eval(py_node, shared_erl, f"rpc:cast('{n}', echo, echo, [1]).") is True


async def test_async_rpc_function(py_node: Node, shared_erl: ErlNode) -> None:
    async def slow_add(a: int, b: int) -> int:
        await asyncio.sleep(0.01)
        return a + b

    py_node.register_rpc("math", "add", slow_add)
    assert await erl_eval(py_node, shared_erl, f"rpc:call('{py_node.name}', math, add, [2, 3]).") == 5


async def test_send_by_pid_and_name_both_ways(py_node: Node, shared_erl: ErlNode) -> None:
    async with py_node.process(name="inbox") as proc:
        # Erlang -> Python by {Name, Node} and by pid
        await erl_eval(py_node, shared_erl, f"{{inbox, '{py_node.name}'}} ! {{by_name, 1}}, P ! by_pid.", P=proc.pid)
        assert await proc.receive(timeout=5) == (A("by_name"), 1)
        assert await proc.receive(timeout=5) == "by_pid"
        # Python -> Erlang by name and by pid: an Erlang process forwards what it gets to us.
        fwd = await erl_eval(
            py_node, shared_erl, "P = spawn(fun L() -> receive M -> Me ! {got, M}, L() end end), register(fwd, P), P.",
            Me=proc.pid,
        )
        proc.send(("fwd", shared_erl.name), A("hello"))
        proc.send(fwd, [1, 2])
        assert await proc.receive(timeout=5) == (A("got"), A("hello"))
        assert await proc.receive(timeout=5) == (A("got"), [1, 2])
        proc.exit(fwd, A("kill"))


async def test_selective_receive_keeps_order(py_node: Node) -> None:
    async with py_node.process() as proc:
        for m in ("a", "b", "c", "b2"):
            proc.send(proc.pid, A(m))
        assert await proc.receive(lambda m: m.startswith("b")) == "b"
        assert await proc.receive(lambda m: m.startswith("b")) == "b2"
        assert [await proc.receive() for _ in range(2)] == ["a", "c"]
        with pytest.raises(TimeoutError):
            await proc.receive(timeout=0.05)
        late = asyncio.get_running_loop().call_later(0.05, proc.send, proc.pid, A("late"))
        assert await proc.receive(lambda m: m == "late", timeout=2) == "late"
        late.cancel()


async def test_link_python_to_erlang_exit_and_trap(py_node: Node, shared_erl: ErlNode) -> None:
    spawn_waiter = "spawn(fun() -> receive {exit, R} -> exit(R) end end)."
    async with py_node.process() as trapper:
        trapper.trap_exit = True
        epid = await erl_eval(py_node, shared_erl, spawn_waiter)
        trapper.link(epid)
        await eventually(lambda: _is(erl_links(py_node, shared_erl, epid), [trapper.pid]), "Erlang sees the link")
        trapper.send(epid, (A("exit"), A("boom")))
        assert await trapper.receive(timeout=5) == (A("EXIT"), epid, A("boom"))

    victim = py_node.process()
    epid = await erl_eval(py_node, shared_erl, spawn_waiter)
    victim.link(epid)  # LINK then the message, one sender to one receiver: Erlang keeps the order
    victim.send(epid, (A("exit"), A("bad")))
    with pytest.raises(ProcessExitError) as exc:
        await victim.receive(timeout=5)
    assert exc.value.reason == "bad" and not victim.alive


async def test_link_erlang_to_python_and_python_exit_reaches_erlang(py_node: Node, shared_erl: ErlNode) -> None:
    async def body(proc: Process) -> None:
        message = await proc.receive()
        raise RuntimeError(f"asked to fail: {message}")

    proc = py_node.spawn(body)
    watcher = await erl_eval(
        py_node,
        shared_erl,
        "Self = self(), spawn(fun() -> process_flag(trap_exit, true), link(P), Self ! linked,"
        " receive M -> Me ! {erl_saw, M} end end), receive linked -> ok end.",
        P=proc.pid,
        Me=(await _inbox(py_node)).pid,
    )
    assert watcher == "ok"
    await eventually(lambda: len(proc.links) == 1, "the link from Erlang arrived")
    py_node.send(proc.pid, proc.pid, A("go"))
    inbox = py_node.named(A("test_inbox"))
    assert inbox is not None
    got = await inbox.receive(timeout=5)
    assert got[0] == "erl_saw" and got[1][0] == "EXIT" and got[1][1] == proc.pid
    assert got[1][2] == (A("python_exception"), b"RuntimeError", b"asked to fail: go")


async def _inbox(node: Node) -> Process:
    return node.named(A("test_inbox")) or node.process(name="test_inbox")


async def test_link_and_monitor_noproc(py_node: Node, shared_erl: ErlNode) -> None:
    dead = await erl_eval(
        py_node, shared_erl, "P = spawn(fun() -> ok end), R = monitor(process, P), receive {'DOWN', R, _, _, _} -> P end."
    )
    async with py_node.process() as proc:
        proc.trap_exit = True
        proc.link(dead)
        assert await proc.receive(timeout=5) == (A("EXIT"), dead, A("noproc"))
        ref = proc.monitor(dead)
        assert await proc.receive(timeout=5) == (A("DOWN"), ref, A("process"), dead, A("noproc"))
        ref = proc.monitor(("nobody", shared_erl.name))
        down = await proc.receive(timeout=5)
        assert down == (A("DOWN"), ref, A("process"), (A("nobody"), shared_erl.name), A("noproc"))
    # Erlang monitors a Python pid that is gone, and a Python name nobody has.
    gone = py_node.process()
    py_node.terminate(gone, A("normal"))
    got = await erl_eval(
        py_node,
        shared_erl,
        "R1 = monitor(process, P), R2 = monitor(process, {ghost, N}),"
        " [receive {'DOWN', R, process, _, Why} -> Why after 5000 -> timeout end || R <- [R1, R2]].",
        P=gone.pid,
        N=py_node.name,
    )
    assert got == [A("noproc"), A("noproc")]


async def test_monitors_both_ways_with_reasons(py_node: Node, shared_erl: ErlNode) -> None:
    async with py_node.process() as proc:
        epid = await erl_eval(py_node, shared_erl, "spawn(fun() -> receive R -> exit(R) end end).")
        ref = proc.monitor(epid)  # MONITOR_P then the message: ordered from one sender to one receiver
        proc.send(epid, (A("custom"), 1))
        assert await proc.receive(timeout=5) == (A("DOWN"), ref, A("process"), epid, (A("custom"), 1))
        # demonitor: no DOWN afterwards
        epid2 = await erl_eval(py_node, shared_erl, "spawn(fun() -> receive R -> exit(R) end end).")
        ref2 = proc.monitor(epid2)
        proc.demonitor(ref2)
        proc.send(epid2, A("bye"))
        with pytest.raises(TimeoutError):
            await proc.receive(timeout=0.3)

    target = py_node.process(name="watched")
    got_task = asyncio.ensure_future(
        erl_eval(
            py_node,
            shared_erl,
            "R = monitor(process, {watched, N}), Self ! ready,"
            " receive {'DOWN', R, process, Obj, Why} -> {Obj, Why} after 5000 -> timeout end.",
            N=py_node.name,
            Self=(await _inbox(py_node)).pid,
        )
    )
    inbox = await _inbox(py_node)
    assert await inbox.receive(timeout=5) == "ready"
    await eventually(lambda: len(target.watchers) == 1, "Erlang's monitor arrived")
    py_node.terminate(target, (A("shutdown"), b"why"))
    assert await got_task == ((A("watched"), py_node.name), (A("shutdown"), b"why"))


async def test_exit_signals_kill_normal_and_trap(py_node: Node, shared_erl: ErlNode) -> None:
    trapper = py_node.process()
    trapper.trap_exit = True
    await erl_eval(py_node, shared_erl, "exit(P, kill).", P=trapper.pid)
    with pytest.raises(ProcessExitError) as exc:
        await trapper.receive(timeout=5)
    assert exc.value.reason == "killed"  # kill cannot be trapped

    calm = py_node.process()
    # The exit signal travels ahead of the eval's reply on the same connection: handled by now.
    await erl_eval(py_node, shared_erl, "exit(P, normal).", P=calm.pid)
    assert calm.alive  # normal exit signals are ignored when not trapping

    catcher = py_node.process()
    catcher.trap_exit = True
    sender = await erl_eval(py_node, shared_erl, "exit(P, please_stop), self().", P=catcher.pid)
    assert await catcher.receive(timeout=5) == (A("EXIT"), sender, A("please_stop"))

    got = await erl_eval(
        py_node,
        shared_erl,
        "R = monitor(process, P), exit(P, kill), receive {'DOWN', R, _, _, W} -> W after 5000 -> timeout end.",
        P=calm.pid,
    )
    assert got == "killed" and not calm.alive


async def test_unlink_stops_exit_propagation(py_node: Node, shared_erl: ErlNode) -> None:
    async with py_node.process() as proc:
        epid = await erl_eval(py_node, shared_erl, "spawn(fun() -> receive R -> exit(R) end end).")
        proc.link(epid)
        await eventually(lambda: _is(erl_links(py_node, shared_erl, epid), [proc.pid]), "Erlang sees the link")
        proc.unlink(epid)
        await eventually(lambda: _is(erl_links(py_node, shared_erl, epid), []), "Erlang sees the unlink")
        proc.send(epid, A("boom"))
        with pytest.raises(TimeoutError):
            await proc.receive(timeout=0.3)
        assert proc.alive


async def test_noconnection_when_erlang_node_is_killed(py_node: Node, erl_factory: object) -> None:
    erl = erl_factory("victim")  # type: ignore[operator]
    async with py_node.process() as proc:
        proc.trap_exit = True
        epid = await erl_eval(py_node, erl, "spawn(fun() -> timer:sleep(infinity) end).")
        proc.link(epid)
        ref = proc.monitor(epid)
        proc.monitor_node(erl.name)
        await eventually(lambda: _is(erl_links(py_node, erl, epid), [proc.pid]), "Erlang sees the link")
        erl.kill(signal.SIGKILL)
        got = {await proc.receive(timeout=10) for _ in range(3)}
        assert got == {
            (A("EXIT"), epid, A("noconnection")),
            (A("DOWN"), ref, A("process"), epid, A("noconnection")),
            (A("nodedown"), A(erl.name)),
        }
    assert erl.name not in py_node.connected_nodes()


async def test_noconnection_when_python_node_is_killed(cookie: str, shared_erl: ErlNode, tmp_path: object) -> None:
    name = unique_name("pykill")
    env = {"STELLAROPS_COOKIE": cookie}
    proc = await asyncio.create_subprocess_exec(
        ".venv/bin/stellarops", "node", "--role", "echo", "--name", name,
        env={**__import__("os").environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    assert b"up" in line
    async with Node(unique_name("obs"), cookie=cookie) as observer:
        task = asyncio.ensure_future(
            erl_eval(
                observer,
                shared_erl,
                "R = monitor(process, {echo, N}), pong = net_adm:ping(N), Me ! ready,"
                " receive {'DOWN', R, process, _, Why} -> Why after 15000 -> timeout end.",
                N=A(name),
                Me=(await _inbox(observer)).pid,
                timeout=20,
            )
        )
        inbox = await _inbox(observer)
        assert await inbox.receive(timeout=10) == "ready"
        proc.kill()
        await proc.wait()
        assert await task == "noconnection"


async def test_reconnect_after_peer_restart(py_node: Node, erl_factory: object) -> None:
    erl = erl_factory("phoenix")  # type: ignore[operator]
    assert await erl_eval(py_node, erl, "1 + 1.") == 2
    erl.kill()
    await eventually(lambda: erl.name not in py_node.connected_nodes(), "the connection is seen lost")
    with pytest.raises(CallError):
        await erl_eval(py_node, erl, "ok.")
    erl.start()
    assert await erl_eval(py_node, erl, "2 + 2.") == 4


async def test_wrong_cookie_is_refused_with_one_warning(
    py_node: Node, erl_factory: object, caplog: pytest.LogCaptureFixture, cookie: str
) -> None:
    caplog.set_level(logging.WARNING)
    stranger = erl_factory("stranger", node_cookie="not-the-cookie")  # type: ignore[operator]
    # Python -> Erlang with the wrong cookie
    with pytest.raises(NodeDownError):
        await py_node.connect(stranger.name)
    # Erlang -> Python with the wrong cookie: pang (driven from a good node via rpc)
    async with Node(unique_name("good"), cookie="not-the-cookie") as liar:
        assert await erl_eval(liar, stranger, f"net_adm:ping('{py_node.name}').") == "pang"
    refusals = [r for r in caplog.records if "wrong cookie" in r.getMessage()]
    assert len(refusals) == 2  # one per refused connection
    assert all(cookie not in r.getMessage() and "not-the-cookie" not in r.getMessage() for r in caplog.records)
    assert py_node.started and await py_node.ping(stranger.name) is False


async def test_net_ticktime_drops_a_silent_peer(cookie: str, erl_factory: object) -> None:
    erl = erl_factory("sleepy", extra=["-kernel", "net_ticktime", "2"])  # type: ignore[operator]
    async with Node(unique_name("ticky"), cookie=cookie, net_ticktime_s=2.0) as node:
        async with node.process() as proc:
            await node.connect(erl.name)
            proc.monitor_node(erl.name)
            await asyncio.sleep(3.0)  # idle longer than the ticktime: ticks keep it up
            assert erl.name in node.connected_nodes()
            erl.kill(signal.SIGSTOP)  # silent but its socket stays open
            try:
                assert await proc.receive(timeout=30) == (A("nodedown"), A(erl.name))
            finally:
                erl.kill(signal.SIGCONT)


async def test_python_rpc_into_erlang(py_node: Node, shared_erl: ErlNode) -> None:
    assert await py_node.rpc(shared_erl.name, "lists", "reverse", [[1, 2, 3]]) == [3, 2, 1]
    assert await py_node.rpc(shared_erl.name, "erlang", "node", []) == shared_erl.name
    with pytest.raises(RpcError) as undef:
        await py_node.rpc(shared_erl.name, "no_such_module", "f", [])
    assert undef.value.kind == "error" and undef.value.reason == "undef"
    with pytest.raises(RpcError) as thrown:
        await py_node.rpc(shared_erl.name, "erlang", "throw", [A("ball")])
    assert (thrown.value.kind, thrown.value.reason) == ("throw", "ball")
    with pytest.raises(RpcError) as exited:
        await py_node.rpc(shared_erl.name, "erlang", "exit", [A("bye")])
    assert (exited.value.kind, exited.value.reason) == ("exit", "bye")
    with pytest.raises(RpcError) as slow:
        await py_node.rpc(shared_erl.name, "timer", "sleep", [2000], timeout=0.2)
    assert slow.value.kind == "timeout"
    assert len(py_node._procs) == 1  # nothing left behind but net_kernel
    with pytest.raises(NodeDownError):
        await py_node.rpc("nobody_here@127.0.0.1", "lists", "reverse", [[]])
