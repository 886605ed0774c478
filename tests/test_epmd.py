"""The EPMD client against a real epmd started by ``ensure_epmd`` on a port of its own.

The address is passed in (the library reads no environment); an ERL_EPMD_PORT in the
environment pointing elsewhere must not matter."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from collections.abc import Iterator

import pytest

from py_nodes.erldist import EpmdAddress, Node, NodeDownError, epmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def private_epmd(monkeypatch: pytest.MonkeyPatch) -> Iterator[EpmdAddress]:
    address = EpmdAddress("127.0.0.1", _free_port())
    monkeypatch.setenv("ERL_EPMD_PORT", str(_free_port()))  # a decoy: only the parameter counts
    yield address
    subprocess.run(["epmd", "-port", str(address.port), "-kill"], capture_output=True, check=False)


async def test_ensure_epmd_starts_one_then_register_and_lookup(private_epmd: EpmdAddress) -> None:
    port = private_epmd.port
    with pytest.raises(NodeDownError, match="cannot reach epmd"):
        await epmd.lookup("nobody", "127.0.0.1", epmd_port=port)
    await epmd.ensure_epmd(private_epmd)
    await epmd.ensure_epmd(private_epmd)  # idempotent when one answers
    reg = await epmd.register("alpha", 43210, epmd=private_epmd)
    assert reg.creation != 0
    address = await epmd.lookup("alpha", "127.0.0.1", epmd_port=port)
    assert (address.port, address.highest_version) == (43210, 6)
    with pytest.raises(NodeDownError, match="name in use"):
        await epmd.register("alpha", 43211, epmd=private_epmd)
    with pytest.raises(NodeDownError, match="not registered"):
        await epmd.lookup("beta", "127.0.0.1", epmd_port=port)
    await reg.close()  # closing the registration connection unregisters the node
    for _ in range(50):
        try:
            await epmd.lookup("alpha", "127.0.0.1", epmd_port=port)
        except NodeDownError:
            break
    else:
        pytest.fail("alpha stayed registered after its connection closed")
    again = await epmd.register("alpha", 43212, epmd=private_epmd)
    assert again.creation != reg.creation  # a new incarnation gets a new creation
    await again.close()


async def test_nodes_register_and_find_each_other_in_the_epmd_they_are_given(private_epmd: EpmdAddress) -> None:
    tag = f"{os.getpid()}_{secrets.token_hex(3)}"
    async with (
        Node(f"epa{tag}@127.0.0.1", cookie="c", epmd_address=private_epmd) as a,
        Node(f"epb{tag}@127.0.0.1", cookie="c", epmd_address=private_epmd) as b,
    ):
        address = await epmd.lookup(a.alive_name, "127.0.0.1", epmd_port=private_epmd.port)
        assert address.port == a.port
        with pytest.raises(NodeDownError):  # not in the default epmd (if one runs at all)
            await epmd.lookup(a.alive_name, "127.0.0.1")
        assert await b.ping(a.name)
        assert b.connected_nodes() == [a.name]


def test_epmd_address_rejects_nonsense() -> None:
    assert EpmdAddress() == EpmdAddress("127.0.0.1", 4369)
    with pytest.raises(ValueError, match="port must be 1-65535"):
        EpmdAddress("127.0.0.1", 0)
    with pytest.raises(ValueError, match="host must not be empty"):
        EpmdAddress("", 4369)
