"""The EPMD client against a real epmd started by ``ensure_epmd`` on a port of its own."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator

import pytest

from py_nodes.erldist import NodeDownError, epmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def private_epmd_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    port = _free_port()
    monkeypatch.setenv("ERL_EPMD_PORT", str(port))
    monkeypatch.setenv("ERL_EPMD_ADDRESS", "127.0.0.1")
    yield port
    subprocess.run(["epmd", "-kill"], env=dict(os.environ), capture_output=True, check=False)


async def test_ensure_epmd_starts_one_then_register_and_lookup(private_epmd_port: int) -> None:
    with pytest.raises(NodeDownError, match="cannot reach epmd"):
        await epmd.lookup("nobody", "127.0.0.1")
    await epmd.ensure_epmd()
    await epmd.ensure_epmd()  # idempotent when one answers
    reg = await epmd.register("alpha", 43210)
    assert reg.creation != 0
    address = await epmd.lookup("alpha", "127.0.0.1")
    assert (address.port, address.highest_version) == (43210, 6)
    with pytest.raises(NodeDownError, match="name in use"):
        await epmd.register("alpha", 43211)
    with pytest.raises(NodeDownError, match="not registered"):
        await epmd.lookup("beta", "127.0.0.1")
    await reg.close()  # closing the registration connection unregisters the node
    for _ in range(50):
        try:
            await epmd.lookup("alpha", "127.0.0.1")
        except NodeDownError:
            break
    else:
        pytest.fail("alpha stayed registered after its connection closed")
    again = await epmd.register("alpha", 43212)
    assert again.creation != reg.creation  # a new incarnation gets a new creation
    await again.close()
