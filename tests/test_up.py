"""The main job, ``stellarops up``, and ``stellarops status``, as an operator runs them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from stack import CLI, UpStack

from py_nodes.erldist import Atom, Node

BEAM = "stellar_uptest@127.0.0.1"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is not running


def test_up_runs_the_demo_constellation_and_stops_cleanly(tmp_path: Path) -> None:
    stack = UpStack(tmp_path / "home", "stellar_uptest")
    env = stack.env
    stack.start(timeout_s=60)
    try:
        banner = stack.banner
        assert "satellites:   24 (demo constellation of 24 seeded now)" in banner and "stellar_uptest@127.0.0.1" in banner
        assert "passfile" not in banner and "password" not in banner.lower()
        cookie_file = tmp_path / "home" / "cookie"
        assert oct(cookie_file.stat().st_mode & 0o777) == "0o600"
        assert cookie_file.read_text() not in banner
        status = subprocess.run([*CLI, "status"], env=env, capture_output=True, text=True, timeout=30, check=True)
        report = json.loads(status.stdout)
        assert report["satellites"]["total"] == 24
        assert report["satellites"]["by_mode"] == {"nominal": 24}
        # The only cluster on its database: it owns it and its commands go to its own store.
        assert report["ownership"] == {"owner": True, "reason": "", "route": "local", "owner_node": "stellar_uptest@127.0.0.1"}
        # Python nodes named after the BEAM node: this test can run beside `make run`.
        assert sorted(report["satellites"]["by_node"]) == ["stellar_uptest_sats1@127.0.0.1", "stellar_uptest_sats2@127.0.0.1"]
        roles = sorted((n["role"], n["status"]) for n in report["nodes"])
        assert roles == [("beam", "up"), ("gateway", "up"), ("orbital", "up"), ("sats", "up"), ("sats", "up"), ("scheduler", "up"), ("store", "up")]
        # The admin token: generated on the first run into a 0600 file, shown once in the banner.
        token_file = tmp_path / "home" / "admin-token"
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        assert f"admin token:  {token_file.read_text().strip()}" in banner and stack.gateway_url().startswith("http://127.0.0.1:")
        # The dashboard, and a sign-in link carrying the token in the fragment (never sent to the server).
        url = stack.gateway_url()
        assert f"  dashboard:    {url}/\n" in banner and f"  sign in:      {url}/#token={token_file.read_text().strip()}\n" in banner
        # up-status.json says where the stack is, for scripts and tests: 0600, no secrets, and
        # the same gateway as the banner.
        status_path = tmp_path / "home" / "up-status.json"
        assert oct(status_path.stat().st_mode & 0o777) == "0o600"
        cluster = stack.cluster()
        assert sorted((n["name"], n["role"]) for n in cluster["nodes"]) == sorted((n["name"], n["role"]) for n in report["nodes"])
        assert cluster["gateway"] == {"url": url, "port": int(url.rsplit(":", 1)[1])}
        assert f"  API:          {url}/api/satellites" in banner
        status_text = status_path.read_text()
        assert token_file.read_text().strip() not in status_text and cookie_file.read_text().strip() not in status_text
        py_pids = [n["os_pid"] for n in report["nodes"] if n["role"] != "beam"]
        asyncio.run(_check_orbits(cookie_file.read_bytes().strip()))
    finally:
        rc = stack.stop()
    assert rc == 0
    assert not any(_alive(pid) for pid in py_pids)  # no orphans
    assert not status_path.exists()
    after = subprocess.run([*CLI, "status"], env=env, capture_output=True, text=True, timeout=30)
    assert after.returncode == 1 and "is not running" in after.stderr


async def _check_orbits(cookie: bytes) -> None:
    """The demo satellites fly their TLEs: positions in the shell API's maps, and the orbital
    node answers BEAM's propagate and passes for them (ids resolved through stellar:tles/1)."""
    A = Atom
    async with Node(f"uptest_ctl{os.getpid()}@127.0.0.1", cookie=cookie) as ctl:
        deadline = time.monotonic() + 10
        while True:
            sats: list[Any] = await ctl.rpc(BEAM, "stellar", "sats", [])
            if all(isinstance(s[A("lat_deg")], float) for s in sats) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert len(sats) == 24
        for sat in sats:
            assert -53.5 < sat[A("lat_deg")] < 53.5 and 520 < sat[A("alt_km")] < 590
            assert type(sat[A("in_sunlight")]) is bool
        now_ms = int(time.time() * 1000)
        ok, [result] = await ctl.rpc(BEAM, "stellar", "propagate", [[b"demo-01"], [now_ms]], timeout=30)
        assert ok == "ok" and result[A("id")] == b"demo-01" and result[A("error")] == 0
        assert 520 < result[A("positions")][0][A("alt_km")] < 590
        day_ms = 86_400_000
        ok, passes = await ctl.rpc(
            BEAM, "stellar", "passes", [[b"demo-01", b"demo-13"], [b"wallops", b"svalbard"], now_ms, now_ms + day_ms, None], timeout=60
        )
        assert ok == "ok" and len(passes) >= 4
        # Wallops (38° N) is under a 53° shell several times a day; Svalbard (78° N) never is:
        # 550 km and a 5° mask reach 18° of arc beyond the ground track, up to 71° N.
        assert {p[A("station")] for p in passes} == {b"wallops"}
        assert all(p[A("aos")] <= p[A("tca")] <= p[A("los")] for p in passes)
        unknown = await ctl.rpc(BEAM, "stellar", "propagate", [[b"no-such-sat"], [now_ms]], timeout=30)
        assert unknown[0] == "ok" and unknown[1][0][A("error")][0] == "unknown_satellite"


def test_banner_gateway_lines() -> None:
    """The dashboard line always; the sign-in link only with a token shown now, right after it."""
    from py_nodes.up import _gateway_text

    token_file = Path("/home/ops/.stellarops/admin-token")
    lines = _gateway_text("http://127.0.0.1:8080", token_file, "sto_abc-DEF_123").splitlines()
    assert "  dashboard:    http://127.0.0.1:8080/" in lines
    at = lines.index("  admin token:  sto_abc-DEF_123")
    assert lines[at + 1].strip() == f"(shown once; kept in {token_file}, mode 0600)"
    assert lines[at + 2] == "  sign in:      http://127.0.0.1:8080/#token=sto_abc-DEF_123"
    assert any(line.startswith("  API:          http://127.0.0.1:8080/api/satellites") for line in lines)
    later = _gateway_text("http://127.0.0.1:8080", token_file, None)
    assert "  dashboard:    http://127.0.0.1:8080/\n" in later and "sign in" not in later and "#token=" not in later
    assert _gateway_text(None, token_file, "sto_x") == ""
