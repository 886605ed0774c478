"""BEAM nodes finding each other (``stellar_cluster``), configured as ``stellarops up`` configures
them: the settings (``STELLAROPS_CLUSTER_*``, ``STELLAROPS_DIST_*``) rendered into the
``sys.config`` written from ``rel/sys.config.src``. Real ``erl`` nodes running the ``stellar`` app
(without Python nodes: discovery is between BEAM nodes), a real ``kill -9`` and a real return.
The DNS strategy runs against a real nameserver on loopback (a small one in this file; OTP's
resolver asks it over UDP). A network alias shared by containers (aardvark-dns), each node on its
own address, belongs to the container tier."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from erl_support import unique_name
from prometheus_client import CollectorRegistry, generate_latest
from stack import CLI, UpStack

from py_nodes.dist_config import kernel_dist_config, stellar_cluster_config
from py_nodes.erldist import Atom, EpmdAddress, Node, epmd
from py_nodes.settings import Settings, default_route_address
from py_nodes.up import render_sys_config
from web.cluster import ErldistCluster
from web.metrics import BeamCollector
from web.routes.system import NODE

ROOT = Path(__file__).resolve().parent.parent
ENV = {"STELLAROPS_LOG_FORMAT": "text"}
NO_PY_NODES = "{py_nodes, []}"


def rendered(tmp_path: Path, **env: str) -> Path:
    """The sys.config ``up`` would write for ``env`` (no Python nodes)."""
    cluster = Settings.from_env(env).cluster
    tmp_path.mkdir(parents=True, exist_ok=True)
    return render_sys_config(
        ENV, tmp_path, py_nodes=NO_PY_NODES, cluster=stellar_cluster_config(cluster), dist=kernel_dist_config(cluster)
    )


class BeamNode:
    """A bare BEAM node running the ``stellar`` app with a rendered sys.config; its output kept."""

    def __init__(self, name: str, config: Path, home: Path, cookie: str, epmd_port: int = 4369) -> None:
        self.name, self.config, self.home, self.epmd_port = name, config, home, epmd_port
        home.mkdir(parents=True, exist_ok=True)
        cookie_file = home / ".erlang.cookie"
        if not cookie_file.exists():
            cookie_file.write_text(cookie)
            cookie_file.chmod(0o400)
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []

    def start(self) -> BeamNode:
        ebins = sorted(str(p) for p in (ROOT / "_build" / "default" / "lib").glob("*/ebin"))
        start = "{ok, _} = application:ensure_all_started(stellar), io:format(\"stellar started~n\")."
        self.proc = subprocess.Popen(
            ["erl", "-name", self.name, "-noshell", "-pa", *ebins, "-config", str(self.config), "-eval", start],
            env={**os.environ, "HOME": str(self.home), "ERL_EPMD_ADDRESS": "127.0.0.1", "ERL_EPMD_PORT": str(self.epmd_port)},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()
        wait_for(f"{self.name} started", lambda: any("stellar started" in line for line in self.lines) or self._dead(), 60)
        assert not self._dead(), "".join(self.lines)
        return self

    def _dead(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def _drain(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.lines = []

    def logged(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]


def wait_for(what: str, condition: Callable[[], object], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.1)


@pytest.fixture
def nodes(tmp_path: Path, cookie: str) -> Iterator[Callable[..., BeamNode]]:
    started: list[BeamNode] = []

    def make(name: str, epmd_port: int = 4369, **env: str) -> BeamNode:
        env.setdefault("STELLAROPS_NODE_NAME", name)
        node = BeamNode(name, rendered(tmp_path / name, **env), tmp_path / name / "home", cookie, epmd_port)
        started.append(node)
        return node

    yield make
    for node in started:
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait(10)


async def rpc(ctl: Node, node: str, function: str) -> Any:
    return await ctl.rpc(node, "stellar", function, [], timeout=10)


async def poll(ctl: Node, node: str, function: str, condition: Callable[[Any], bool], timeout_s: float = 30.0) -> Any:
    """``stellar:function()`` on ``node`` until ``condition`` holds (the last value is in the error)."""
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        value = await rpc(ctl, node, function)
        if condition(value):
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"stellar:{function}() on {node}: {value}")


def connected_to(*names: str) -> Callable[[Any], bool]:
    """A condition on ``stellar:cluster()``: connected to exactly ``names``."""
    return lambda info: bool(info[Atom("connected")] == [Atom(n) for n in names])


def beams(nodes_info: list[Any]) -> dict[str, dict[Atom, Any]]:
    return {str(n[Atom("name")]): n for n in nodes_info if n[Atom("role")] == "beam"}


@pytest.mark.erlang
async def test_a_static_peer_joins_leaves_on_kill_and_joins_again(nodes: Callable[..., BeamNode], cookie: str) -> None:
    """A lists B as its peer (B lists nobody: A alone reconnects). Both see both; kill -9 of B is
    logged and counted on A as a leave, B shown down; B's return is a join, found by A's polling."""
    b_name = unique_name("clb")
    a = nodes(unique_name("cla"), STELLAROPS_CLUSTER_PEERS=b_name, STELLAROPS_CLUSTER_DNS_POLL_S="0.2")
    b = nodes(b_name)
    a.start()
    b.start()
    async with Node(unique_name("clctl"), cookie=cookie) as ctl:
        both = {a.name, b.name}
        listed = await poll(ctl, a.name, "nodes", lambda ns: {n for n, i in beams(ns).items() if i[Atom("status")] == "up"} == both)
        assert beams(listed)[b.name][Atom("joins")] == 1 and beams(listed)[b.name][Atom("leaves")] == 0
        await poll(ctl, b.name, "nodes", lambda ns: {n for n, i in beams(ns).items() if i[Atom("status")] == "up"} == both)
        info = await rpc(ctl, a.name, "cluster")
        assert info[Atom("peers")] == [Atom(b.name)] and info[Atom("poll_ms")] == 200
        assert (info[Atom("joins")], info[Atom("leaves")]) == (1, 0) and info[Atom("connected")] == [Atom(b.name)]
        wait_for("A logs B's join", lambda: a.logged(f"cluster: node {b.name} joined"), 10)

        b.kill()
        down = await poll(ctl, a.name, "cluster", lambda i: i[Atom("leaves")] == 1)
        assert down[Atom("connected")] == [] and down[Atom("joins")] == 1
        listed = await poll(ctl, a.name, "nodes", lambda ns: b.name in beams(ns))
        assert beams(listed)[b.name][Atom("status")] == "down" and beams(listed)[b.name][Atom("leaves")] == 1
        wait_for("A logs B's leave", lambda: a.logged(f"cluster: node {b.name} left (connection_closed"), 10)
        # The API's cluster view (GET /api/nodes answers what the gateway's client returns).
        api = {n["name"]: n for n in await ErldistCluster(ctl, a.name).nodes()}
        assert {k: api[b.name][k] for k in ("role", "status", "joins", "leaves")} == {"role": "beam", "status": "down", "joins": 1, "leaves": 1}
        assert api[a.name]["status"] == "up"
        for item in api.values():  # every field the API answers is documented
            assert set(NODE["required"]) <= set(item) <= set(NODE["properties"]), item
        assert len(a.logged(f"cluster: node {b.name} left")) == 1

        b.start()  # B knows no peers: the join comes from A's polling
        back = await poll(ctl, a.name, "cluster", lambda i: i[Atom("joins")] == 2)
        assert back[Atom("leaves")] == 1 and back[Atom("connected")] == [Atom(b.name)]
        listed = await poll(ctl, a.name, "nodes", lambda ns: beams(ns).get(b.name, {}).get(Atom("status")) == "up")
        assert (beams(listed)[b.name][Atom("joins")], beams(listed)[b.name][Atom("leaves")]) == (2, 1)
        assert len(a.logged(f"cluster: node {b.name} joined")) == 2
        # The same counts as Prometheus metrics (what the gateway's /metrics exports).
        beam = BeamCollector()
        beam.set(await ErldistCluster(ctl, a.name).beam_metrics(10.0))
        registry = CollectorRegistry()
        registry.register(beam)
        exposition = generate_latest(registry).decode()
        for line in ("stellar_cluster_joins_total 2.0", "stellar_cluster_leaves_total 1.0", "stellar_cluster_discovered_peers 1.0"):
            assert line in exposition.splitlines(), exposition
        # B may be connected to before its stellar_cluster watches (A polls as soon as B's
        # distribution is up): it lists A as up either way.
        await poll(ctl, b.name, "nodes", lambda ns: beams(ns).get(a.name, {}).get(Atom("status")) == "up")


@pytest.mark.erlang
async def test_the_distribution_listens_in_the_configured_port_range(nodes: Callable[..., BeamNode], cookie: str) -> None:
    low = min(free_port(), 65535 - 20)  # a free port to start the range at (the range is 20 ports)
    node = nodes(unique_name("clport"), STELLAROPS_DIST_PORT_MIN=str(low), STELLAROPS_DIST_PORT_MAX=str(low + 20)).start()
    address = await epmd.lookup(node.name.split("@")[0], "127.0.0.1")
    assert low <= address.port <= low + 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def epmd_on(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Any]]:
    """An epmd of this test's own (its own port), started as ``stellarops up`` starts it for a
    non-loopback interface; killed at the end."""
    port = free_port()

    async def start(address: str) -> int:
        await epmd.ensure_epmd(EpmdAddress(address, port))
        return port

    yield start
    subprocess.run(["epmd", "-port", str(port), "-kill"], capture_output=True, timeout=30, check=False)


@pytest.mark.erlang
async def test_a_node_on_a_non_loopback_interface_listens_there_only(
    nodes: Callable[..., BeamNode], cookie: str, epmd_on: Callable[[str], Any]
) -> None:
    """STELLAROPS_DIST_INTERFACE=auto and a node named <alive>@auto (as in a container): the
    distribution listens on the default route's address and not on loopback; epmd answers there;
    a peer (on loopback) finds and joins the node through it."""
    address = default_route_address()
    if address is None:
        pytest.skip("this machine has no default route (no non-loopback address)")
    port = await epmd_on(address)
    auto = {"STELLAROPS_NODE_NAME": unique_name("clfar").replace("127.0.0.1", "auto"), "STELLAROPS_DIST_INTERFACE": "auto"}
    far = nodes(Settings.from_env(auto).up.node_name, epmd_port=port, **auto).start()
    assert far.name.endswith(f"@{address}")
    near = nodes(unique_name("clnear"), epmd_port=port, STELLAROPS_CLUSTER_PEERS=far.name, STELLAROPS_CLUSTER_DNS_POLL_S="0.2").start()
    found = await epmd.lookup(far.name.split("@")[0], address, epmd_port=port)  # epmd on the interface
    with socket.create_connection((address, found.port), timeout=5):
        pass
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", found.port), timeout=5):
        pass
    async with Node(unique_name("clctl"), cookie=cookie, epmd_address=EpmdAddress("127.0.0.1", port)) as ctl:
        info = await poll(ctl, near.name, "cluster", lambda i: i[Atom("joins")] == 1)
        assert info[Atom("connected")] == [Atom(far.name)]
    assert near.logged(f"cluster: node {far.name} joined")


class Nameserver:
    """A DNS server on 127.0.0.1 (UDP) answering A queries from ``records``: what the DNS
    strategy asks of a Kubernetes headless Service or a network alias, on loopback."""

    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = records
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.queries = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                query, client = self.sock.recvfrom(512)
            except OSError:  # closed
                return
            self.queries += 1
            try:
                self.sock.sendto(self.answer(query), client)
            except OSError:  # closed meanwhile
                return

    def answer(self, query: bytes) -> bytes:
        labels, at = [], 12
        while query[at]:
            labels.append(query[at + 1 : at + 1 + query[at]].decode())
            at += 1 + query[at]
        question = query[12 : at + 5]  # the name, its terminator, QTYPE and QCLASS
        qtype = int.from_bytes(query[at + 1 : at + 3], "big")
        name = ".".join(labels).lower()
        ips = self.records.get(name, []) if qtype == 1 else []
        rcode = 0 if name in self.records else 3  # NXDOMAIN
        recursion_desired = int.from_bytes(query[2:4], "big") & 0x0100  # echoed, as resolvers expect
        header = query[:2] + struct.pack(">HHHHH", 0x8400 | recursion_desired | rcode, 1, len(ips), 0, 0)
        answers = b"".join(struct.pack(">HHHIH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton(ip) for ip in ips)
        return header + question + answers

    def close(self) -> None:
        self.sock.close()


@pytest.mark.erlang
async def test_dns_peers_join_leave_and_return(tmp_path: Path, cookie: str) -> None:
    """The DNS strategy end to end, against a real nameserver: one name with two A records,
    127.0.0.1 (where both nodes run) and 127.0.0.3 (where nobody does: discovered, never up).
    One epmd serves both nodes here, so they differ in alive name and each names the other's
    (``basename``); on separate hosts all share one. A kill -9 is a leave, the return a join."""
    dns = Nameserver({"stellar.cluster.test": ["127.0.0.1", "127.0.0.3"]})
    one_alive, two_alive = (unique_name(p).partition("@")[0] for p in ("cldnsa", "cldnsb"))
    started: list[BeamNode] = []
    try:
        for alive, other_alive in ((one_alive, two_alive), (two_alive, one_alive)):
            cluster = (
                f'{{cluster, #{{dns => "stellar.cluster.test", basename => "{other_alive}",'
                f" nameservers => [{{{{127,0,0,1}}, {dns.port}}}], poll_ms => 200}}}}"
            )
            (tmp_path / alive).mkdir()
            config = render_sys_config(ENV, tmp_path / alive, py_nodes=NO_PY_NODES, cluster=cluster)
            started.append(BeamNode(f"{alive}@127.0.0.1", config, tmp_path / alive / "home", cookie).start())
        one, two = started
        async with Node(unique_name("clctl"), cookie=cookie) as ctl:
            for node, other in ((one, two), (two, one)):
                info = await poll(ctl, node.name, "cluster", connected_to(other.name))
                nowhere = other.name.replace("127.0.0.1", "127.0.0.3")
                assert info[Atom("discovered")] == [Atom(other.name), Atom(nowhere)]
                assert info[Atom("dns")] == b"stellar.cluster.test" and info[Atom("last_error")] is None
            listed = beams(await rpc(ctl, one.name, "nodes"))
            assert listed[two.name][Atom("status")] == "up"
            assert listed[two.name.replace("127.0.0.1", "127.0.0.3")][Atom("status")] == "down"  # discovered, not there
            two.kill()
            info = await poll(ctl, one.name, "cluster", lambda i: i[Atom("leaves")] == 1)
            assert info[Atom("connected")] == [] and Atom(two.name) in info[Atom("discovered")]
            listed = await poll(ctl, one.name, "nodes", lambda ns: beams(ns)[two.name][Atom("status")] == "down")
            assert beams(listed)[two.name][Atom("leaves")] == 1
            two.start()
            await poll(ctl, one.name, "cluster", connected_to(two.name))
            wait_for("one logs the leave and both joins", lambda: one.logged(f"cluster: node {two.name} left")
                     and len(one.logged(f"cluster: node {two.name} joined")) == 2, 10)  # fmt: skip
        assert dns.queries >= 4
    finally:
        dns.close()
        for node in started:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait(10)


@pytest.mark.erlang
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_stellarops_up_joins_its_configured_peer(tmp_path: Path, cookie: str, nodes: Callable[..., BeamNode]) -> None:
    """The settings reach the BEAM node `stellarops up` starts: it joins its static peer (a bare
    BEAM node here); `stellarops status` and the gateway's GET /api/nodes list the peer with its
    joins, and after its kill -9 as down with one leave, which the stack logs."""
    peer = nodes(unique_name("clpeer")).start()
    stack = UpStack(
        tmp_path / "home", unique_name("stellar_cl").partition("@")[0], STELLAROPS_COOKIE=cookie,
        STELLAROPS_CLUSTER_PEERS=peer.name, STELLAROPS_CLUSTER_DNS_POLL_S="0.5",
        STELLAROPS_ROLES="gateway=1", STELLAROPS_DEMO_SATELLITES="0",
    ).start(timeout_s=240)  # fmt: skip
    try:

        def status_peer() -> dict[str, Any]:
            done = subprocess.run([*CLI, "status"], env=stack.env, capture_output=True, text=True, timeout=60, check=True)
            found: dict[str, Any] = {n["name"]: n for n in json.loads(done.stdout)["nodes"]}.get(peer.name, {})
            return found

        def api_peer() -> dict[str, Any]:
            request = urllib.request.Request(f"{stack.gateway_url()}/api/nodes", headers={"Authorization": f"Bearer {stack.admin_token()}"})
            with urllib.request.urlopen(request, timeout=30) as response:
                items = json.loads(response.read())["items"]
            found: dict[str, Any] = {n["name"]: n for n in items}.get(peer.name, {})
            return found

        wait_for("status lists the peer up", lambda: status_peer().get("status") == "up", 60)
        wait_for("the API lists the peer up", lambda: api_peer().get("status") == "up", 60)
        assert {k: api_peer()[k] for k in ("role", "joins", "leaves")} == {"role": "beam", "joins": 1, "leaves": 0}
        wait_for("the peer logs the stack's join", lambda: peer.logged(f"cluster: node {stack.beam} joined"), 30)
        peer.kill()
        wait_for("the API lists the peer down", lambda: api_peer().get("status") == "down", 60)
        assert {k: api_peer()[k] for k in ("role", "joins", "leaves")} == {"role": "beam", "joins": 1, "leaves": 1}
        assert status_peer()["status"] == "down"
        wait_for("the stack logs the leave", lambda: any(f"cluster: node {peer.name} left" in line for line in stack.log_tail), 30)
    finally:
        assert stack.stop() == 0


@pytest.mark.erlang
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_stellarops_up_on_its_own_address(tmp_path: Path) -> None:
    """A stack as a container runs it (name@auto, STELLAROPS_DIST_INTERFACE=auto): up starts
    epmd on that address too, the BEAM node is named after it, its Python nodes (on loopback) after
    its host, and they come up.
    An epmd already running for loopback only on that port is a clear refusal instead."""
    address = default_route_address()
    if address is None:
        pytest.skip("this machine has no default route (no non-loopback address)")
    loopback_only = free_port()
    subprocess.run(["epmd", "-daemon", "-address", "127.0.0.1", "-port", str(loopback_only)], check=True, timeout=30)
    try:
        alive = unique_name("stellar_auto").partition("@")[0]
        auto = {"STELLAROPS_NODE_NAME": f"{alive}@auto", "STELLAROPS_DIST_INTERFACE": "auto", "STELLAROPS_ROLES": "sats=1",
                "STELLAROPS_DEMO_SATELLITES": "0"}  # fmt: skip
        refused = UpStack(tmp_path / "refused", alive, ERL_EPMD_PORT=str(loopback_only), **auto)
        done = subprocess.run([*CLI, "up"], env=refused.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and f"STELLAROPS_DIST_INTERFACE={address}: epmd does not listen there" in done.stderr, done.stderr
    finally:
        subprocess.run(["epmd", "-port", str(loopback_only), "-kill"], capture_output=True, timeout=30, check=False)
    port = free_port()  # up starts this epmd itself (killed below)
    stack = UpStack(tmp_path / "home", alive, ERL_EPMD_PORT=str(port), **auto).start(timeout_s=240)
    try:
        done = subprocess.run([*CLI, "status"], env=stack.env, capture_output=True, text=True, timeout=60, check=True)
        names = sorted((n["role"], n["name"], n["status"]) for n in json.loads(done.stdout)["nodes"])
        # Its Python nodes stay on loopback, named after its host (STELLAROPS_PY_NODES_LOCAL).
        sats = f"{alive}_sats1-{address.replace('.', '-')}@127.0.0.1"
        assert names == [("beam", f"{alive}@{address}", "up"), ("sats", sats, "up")]
        found = asyncio.run(epmd.lookup(alive, address, epmd_port=port))  # peers find it on its address
        with socket.create_connection((address, found.port), timeout=5):
            pass
    finally:
        assert stack.stop() == 0
        subprocess.run(["epmd", "-port", str(port), "-kill"], capture_output=True, timeout=30, check=False)


def test_the_rendered_config_is_what_stellar_config_reads(tmp_path: Path) -> None:
    """A real erl reads the rendered file; stellar_config:cluster/0 accepts it as rendered."""
    config = rendered(
        tmp_path, STELLAROPS_CLUSTER_PEERS="stellar@10.0.0.6,ops_2@db-1.ops", STELLAROPS_CLUSTER_DNS="stellar.ops.svc.",
        STELLAROPS_CLUSTER_DNS_POLL_S="2.5", STELLAROPS_DIST_PORT_MIN="9100", STELLAROPS_DIST_PORT_MAX="9110",
        STELLAROPS_CLUSTER_SIZE="3", STELLAROPS_CLUSTER_FAILURE_MS="1500",
    )  # fmt: skip
    expr = (
        "application:load(stellar), {ok, C} = stellar_config:cluster(),"
        " {ok, Iface} = application:get_env(kernel, inet_dist_use_interface),"
        " {ok, Min} = application:get_env(kernel, inet_dist_listen_min),"
        " {ok, Max} = application:get_env(kernel, inet_dist_listen_max),"
        ' io:format("~p.", [{C, Iface, Min, Max}]), halt().'
    )
    ebin = ROOT / "_build" / "default" / "lib" / "stellar" / "ebin"
    done = subprocess.run(
        ["erl", "-noshell", "-config", str(config), "-pa", str(ebin), "-eval", expr],
        capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "{#{basename => \"nonode\",dns => \"stellar.ops.svc.\",failure_ms => 1500,\n"
        "   nameservers => [],\n"
        "   peers => ['stellar@10.0.0.6','ops_2@db-1.ops'],\n"
        "   poll_ms => 2500,size => 3},\n {127,0,0,1},\n 9100,9110}."
    )


def test_without_cluster_settings_nothing_is_added() -> None:
    cluster = Settings.from_env({}).cluster
    assert stellar_cluster_config(cluster) == ""
    # The quorum settings alone (one host of a cluster sized by hand) are written.
    sized = stellar_cluster_config(Settings.from_env({"STELLAROPS_CLUSTER_SIZE": "3"}).cluster)
    assert sized == "{cluster, #{peers => [], poll_ms => 5000, size => 3, failure_ms => 3000}}"
    assert kernel_dist_config(cluster) == "{inet_dist_use_interface, {127,0,0,1}}"
