"""Python nodes stay local to their BEAM node (``STELLAROPS_PY_NODES_LOCAL``, default true), with
real ``erl`` nodes running the ``stellar`` app and real Python nodes it starts: one BEAM node on
this machine's non-loopback address (as in a container, ``STELLAROPS_DIST_INTERFACE``) and one on
loopback, joined as peers.

Checked: the first one's Python nodes are named after its host but on 127.0.0.1
(``sats1-<host>@127.0.0.1``) and listen on loopback only, so a host that loses its interface
keeps them; each BEAM node places its satellites' actors on its own ``sats`` nodes only (with
``false``, across both); a call to the other node's Python node goes through that BEAM node, which
never connects to it directly."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from erl_support import unique_name

from py_nodes.dist_config import kernel_dist_config, py_nodes_local_config, stellar_cluster_config
from py_nodes.erldist import Atom, EpmdAddress, Node, epmd
from py_nodes.settings import Settings, default_route_address
from py_nodes.up import render_sys_config

ROOT = Path(__file__).resolve().parent.parent
PY_NODES = "{py_nodes, [#{role => sats, count => 1}]}"


class Beam:
    """A BEAM node running the ``stellar`` app (and the Python nodes it starts) with the sys.config
    ``stellarops up`` would render for ``env``."""

    def __init__(self, name: str, folder: Path, cookie: str, epmd_port: int, env: dict[str, str]) -> None:
        self.name = name
        folder.mkdir(parents=True)
        cluster = Settings.from_env({"STELLAROPS_NODE_NAME": name, **env}).cluster
        app_env = ", ".join(e for e in (stellar_cluster_config(cluster), py_nodes_local_config(cluster)) if e)
        config = render_sys_config(
            {"STELLAROPS_LOG_FORMAT": "text"}, folder, py_nodes=PY_NODES, cluster=app_env, dist=kernel_dist_config(cluster)
        )
        home = folder / "home"
        home.mkdir()
        (home / ".erlang.cookie").write_text(cookie)
        (home / ".erlang.cookie").chmod(0o400)
        ebins = sorted(str(p) for p in (ROOT / "_build" / "default" / "lib").glob("*/ebin"))
        start = '{ok, _} = application:ensure_all_started(stellar), io:format("stellar started~n").'
        self.proc = subprocess.Popen(
            ["erl", "-name", name, "-noshell", "-pa", *ebins, "-config", str(config), "-eval", start],
            env={**os.environ, "HOME": str(home), "ERL_EPMD_ADDRESS": "127.0.0.1", "ERL_EPMD_PORT": str(epmd_port),
                 "STELLAROPS_PY": str(ROOT / ".venv" / "bin" / "stellarops")},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + 60
        while not any("stellar started" in line for line in self.lines):
            assert self.proc.poll() is None and time.monotonic() < deadline, "".join(self.lines[-30:])
            time.sleep(0.1)

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # init:stop(): the app stops its Python nodes
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def beams(tmp_path: Path, cookie: str) -> Iterator[Callable[..., Beam]]:
    started: list[Beam] = []

    def make(name: str, epmd_port: int, **env: str) -> Beam:
        beam = Beam(name, tmp_path / name.split("@")[0], cookie, epmd_port, env)
        started.append(beam)
        return beam

    yield make
    for beam in started:
        beam.stop()


@pytest.fixture
def epmd_port() -> Iterator[int]:
    """An epmd of this test's own port (on the interface too, as ``stellarops up`` starts it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    yield port
    subprocess.run(["epmd", "-port", str(port), "-kill"], capture_output=True, timeout=30, check=False)


async def _until(ctl: Node, node: str, module: str, function: str, args: list[Any], ok: Callable[[Any], bool]) -> Any:
    deadline = time.monotonic() + 90
    value: Any = None
    while time.monotonic() < deadline:
        value = await ctl.rpc(node, module, function, args, timeout=10)
        if ok(value):
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"{module}:{function}() on {node}: {value}")


def _sats_nodes(beam: str) -> Callable[[Any], bool]:
    return lambda nodes: any(n[Atom("role")] == "sats" and n[Atom("status")] == "up" and n[Atom("beam")] == beam for n in nodes)


async def _placement(ctl: Node, beam: str, ids: list[str]) -> dict[str, str]:
    """Where each satellite's actor runs (its Python node), once all run."""

    def running(sats: Any) -> bool:
        by_id = {bytes(s[Atom("id")]).decode(): s for s in sats}
        return all(i in by_id and by_id[i].get(Atom("node")) not in (None, "undefined") for i in ids)

    sats = await _until(ctl, beam, "stellar", "sats", [], running)
    return {bytes(s[Atom("id")]).decode(): str(s[Atom("node")]) for s in sats if bytes(s[Atom("id")]).decode() in ids}


async def _create(ctl: Node, beam: str, ids: list[str]) -> None:
    for sat_id in ids:
        assert await ctl.rpc(beam, "stellar", "create", [{Atom("id"): sat_id.encode(), Atom("name"): sat_id.encode()}], timeout=10) == (
            Atom("ok"), sat_id.encode())  # fmt: skip


@pytest.mark.erlang
@pytest.mark.timeout(240)
@pytest.mark.parametrize("local", [True, False], ids=["local", "across-hosts"])
async def test_python_nodes_stay_on_loopback_and_actors_on_their_own_beam_node(
    beams: Callable[..., Beam], epmd_port: int, cookie: str, local: bool
) -> None:
    address = default_route_address()
    if address is None:
        pytest.skip("this machine has no default route (no non-loopback address)")
    await epmd.ensure_epmd(EpmdAddress(address, epmd_port))
    setting = {"STELLAROPS_PY_NODES_LOCAL": "true" if local else "false"}
    near_name = unique_name("locnear")
    far_name = unique_name("locfar").replace("@127.0.0.1", f"@{address}")
    near = beams(near_name, epmd_port, **setting)
    far = beams(far_name, epmd_port, STELLAROPS_DIST_INTERFACE=address, STELLAROPS_CLUSTER_PEERS=near_name,
                STELLAROPS_CLUSTER_DNS_POLL_S="0.2", **setting)  # fmt: skip
    far_sats = f"{far_name.split('@')[0]}_sats1" + (f"-{address.replace('.', '-')}@127.0.0.1" if local else f"@{address}")
    near_sats = f"{near_name.split('@')[0]}_sats1@127.0.0.1"
    async with Node(unique_name("locctl"), cookie=cookie, epmd_address=EpmdAddress("127.0.0.1", epmd_port)) as ctl:
        for beam in (far, near):
            nodes = await _until(ctl, beam.name, "stellar", "nodes", [], lambda ns: _sats_nodes(far.name)(ns) and _sats_nodes(near.name)(ns))
            assert {str(n[Atom("name")]) for n in nodes if n[Atom("role")] == "sats"} == {far_sats, near_sats}, beam.lines[-20:]
        # Where the far node's sats node listens: loopback only when local, its interface else.
        found = await epmd.lookup(far_sats.split("@")[0], "127.0.0.1", epmd_port=epmd_port)
        reachable, refused = ("127.0.0.1", address) if local else (address, "127.0.0.1")
        with socket.create_connection((reachable, found.port), timeout=5):
            pass
        with pytest.raises(ConnectionRefusedError), socket.create_connection((refused, found.port), timeout=5):
            pass
        # Placement: each BEAM node's satellites on its own sats node when local; else spread.
        far_ids, near_ids = [f"loc-far-{i}" for i in range(6)], [f"loc-near-{i}" for i in range(6)]
        await _create(ctl, far.name, far_ids)
        await _create(ctl, near.name, near_ids)
        placed = await _placement(ctl, far.name, far_ids + near_ids)
        if local:
            assert {placed[i] for i in far_ids} == {far_sats}
            assert {placed[i] for i in near_ids} == {near_sats}
        else:
            assert set(placed.values()) == {far_sats, near_sats}
            assert {placed[i] for i in far_ids} != {far_sats} or {placed[i] for i in near_ids} != {near_sats}
        # A call to the other BEAM node's Python node: through that BEAM node when local.
        load = await ctl.rpc(far.name, "stellar_py_node", "call", [Atom(near_sats), Atom("sats"), Atom("load"), 10_000], timeout=20)
        assert load[0] == "ok"
        far_connected = await ctl.rpc(far.name, "erlang", "nodes", [Atom("connected")])
        assert (Atom(near_sats) in far_connected) is not local
