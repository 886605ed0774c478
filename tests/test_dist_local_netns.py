"""A host that loses its network address keeps its Python nodes, and can still restart them: a
real network namespace (a veth pair, the namespace's own address and default route) runs
``stellarops up`` as a container does (``stellar@auto``, ``STELLAROPS_DIST_INTERFACE=auto``); then
the address is deleted (what ``podman network disconnect`` does to a container). The Python nodes
are on loopback (``STELLAROPS_PY_NODES_LOCAL``): they keep running, and one killed with SIGKILL is
started again and comes up (before, its name held the lost address, and the restarted node could
neither read ``auto`` nor listen there)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from erl_support import unique_name
from stack import UpStack

pytestmark = [
    pytest.mark.erlang,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 (ip netns)"),
]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def netns() -> Iterator[tuple[str, str, str]]:
    """(namespace, its device, its address/prefix): a veth pair to this host, a default route."""
    tag = os.getpid() % 100_000
    ns, outside, inside = f"c3ns{tag}", f"c3v{tag}a", f"c3v{tag}b"
    subnet = f"10.231.{tag % 200 + 20}"
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", ns)
        _ip("addr", "add", f"{subnet}.1/24", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("-n", ns, "addr", "add", f"{subnet}.2/24", "dev", inside)
        _ip("-n", ns, "link", "set", inside, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "route", "add", "default", "via", f"{subnet}.1")
        yield ns, inside, f"{subnet}.2/24"
    finally:
        subprocess.run(["ip", "link", "del", outside], capture_output=True, timeout=30, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30, check=False)


def _pids(node: str) -> list[int]:
    """Live OS processes of the Python node ``node`` (its CLI's ``--name``)."""
    found = subprocess.run(["pgrep", "-f", "--", f"--name {node} "], capture_output=True, text=True, timeout=30).stdout
    pids = [int(p) for p in found.split()]
    return [p for p in pids if Path(f"/proc/{p}/stat").exists() and Path(f"/proc/{p}/stat").read_text().rpartition(") ")[2][0] not in "ZX"]


def _until(what: str, condition: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_host_that_loses_its_address_keeps_and_restarts_its_python_nodes(
    tmp_path: Path, netns: tuple[str, str, str]
) -> None:
    ns, device, address = netns
    alive = unique_name("stellar_ns").partition("@")[0]
    stack = UpStack(tmp_path / "home", alive, STELLAROPS_NODE_NAME=f"{alive}@auto", STELLAROPS_DIST_INTERFACE="auto",
                    STELLAROPS_ROLES="sats=1,orbital=1", STELLAROPS_DEMO_SATELLITES="0")  # fmt: skip
    stack.prefix = ("ip", "netns", "exec", ns)
    stack.start(timeout_s=180)
    try:
        tag = address.partition("/")[0].replace(".", "-")
        names = {n["role"]: n["name"] for n in stack.cluster()["nodes"]}
        assert names["beam"] == f"{alive}@{address.partition('/')[0]}"
        sats, orbital = names["sats"], names["orbital"]
        assert (sats, orbital) == (f"{alive}_sats1-{tag}@127.0.0.1", f"{alive}_orbital1-{tag}@127.0.0.1")
        (sats_pid,), (orbital_pid,) = _pids(sats), _pids(orbital)
        _ip("-n", ns, "addr", "del", address, "dev", device)  # the host is cut off: its address is gone
        time.sleep(3)
        assert _pids(orbital) == [orbital_pid] and _pids(sats) == [sats_pid]
        os.kill(sats_pid, signal.SIGKILL)
        _until("the sats node restarted", lambda: any(p != sats_pid for p in _pids(sats)), 60)
        _until("and up again", lambda: any(f"Python node {sats} is up" in line for line in stack.log_tail), 60)
        assert _pids(orbital) == [orbital_pid]
        assert not any(f"Python node {orbital} went down" in line for line in stack.log_tail)
    finally:
        assert stack.stop() == 0
