"""Limits and alarms through the whole stack (``stellarops up``: BEAM, sats, store, gateway,
embedded PostgreSQL): a limit edited over HTTP raises an alarm on a real satellite's next
samples, acknowledge, the value back within limits clears it, shelve returns it at expiry, a
full restart keeps the edited limit in force, edits are audited, bad limits change nothing."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from stack import UpStack
from web_support import read_sse

from py_nodes.db import AuditLog, Database

pytestmark = [pytest.mark.erlang, pytest.mark.slow]
SAT = "lim-1"
WAIT_S = 60.0


async def _until(probe: Callable[[], Awaitable[Any]], what: str, timeout_s: float = WAIT_S) -> Any:
    """Poll until ``probe`` answers something truthy (long bound: the machine is shared)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.3)


class Api:
    def __init__(self, http: aiohttp.ClientSession, token: str) -> None:
        self.http, self.headers = http, {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None, status: int | tuple[int, ...] = 200) -> Any:
        async with self.http.request(method, path, json=body, headers=self.headers) as r:
            expected = (status,) if isinstance(status, int) else status
            assert r.status in expected, f"{method} {path}: {r.status} {await r.text()}"
            return await r.json() if r.content_type == "application/json" else await r.text()

    async def alarms(self, query: str = "") -> list[dict[str, Any]]:
        return list((await self.call("GET", f"/api/alarms?sat={SAT}{query}"))["items"])

    async def alarm(self, alarm_id: int) -> dict[str, Any]:
        return dict((await self.call("GET", f"/api/alarms/{alarm_id}/history"))["alarm"])


ABOVE_ENERGY = {"warning_low": 90.0, "critical_low": 5.0, "hysteresis": 1.0, "persistence": 2, "latched": False}
BELOW_ENERGY = {**ABOVE_ENERGY, "warning_low": 20.0}


@pytest.mark.timeout(420)
def test_limits_and_the_alarm_lifecycle_on_a_real_stack(tmp_path: Path) -> None:
    stack = UpStack(tmp_path / "home", "stellar_alarms", STELLAROPS_DEMO_SATELLITES="0")

    async def first_run() -> int:
        async with aiohttp.ClientSession(stack.gateway_url()) as http:
            api = Api(http, stack.admin_token())
            # Energy 50 % in safe mode (drains 0.01 %/s): well inside 20..90 for the whole test.
            await api.call("POST", "/api/satellites", {"id": SAT, "name": "Limits", "mode": "safe", "energy_pct": 50.0}, 201)
            async with http.get(f"/api/events?sat={SAT}&types=alarm", headers=api.headers) as stream:
                await read_sse(stream, 1)  # the stream is open
                # Bad limits: 422 naming the field (404 for an unknown satellite), nothing changed.
                before = await api.call("GET", "/api/limits")
                for path, body, status, field in [
                    (f"/api/satellites/{SAT}/limits/energy_pct", {"warning_low": 30, "warning_high": 20}, 422, "warning_low"),
                    (f"/api/satellites/{SAT}/limits/energy_pct", {"warning_low": 30, "persistence": -1}, 422, "persistence"),
                    ("/api/limits/temperature", {"warning_low": 1}, 422, "parameter"),
                    ("/api/satellites/nope/limits/energy_pct", {"warning_low": 1}, 404, "sat_id"),
                ]:
                    error = (await api.call("PUT", path, body, status))["error"]
                    assert error["details"]["field"] == field, error
                assert await api.call("GET", "/api/limits") == before

                # A limit the value breaks: raised on the next samples (persistence 2).
                await api.call("PUT", f"/api/satellites/{SAT}/limits/energy_pct", ABOVE_ENERGY, 201)
                [alarm] = await _until(api.alarms, "the alarm raised")
                assert (alarm["kind"], alarm["severity"], alarm["state"], alarm["active"]) == ("low_energy", "warning", "unacknowledged", True)
                assert "below 90 %" in alarm["message"] and 40 < alarm["value"] < 60
                acked = await api.call("POST", f"/api/alarms/{alarm['id']}/acknowledge", {"comment": "on it"})
                assert acked["state"] == "acknowledged" and acked["comment"] == "on it" and acked["acknowledged_by"]
                # The value back within limits (the limit moved under it): cleared by the system.
                await api.call("PUT", f"/api/satellites/{SAT}/limits/energy_pct", BELOW_ENERGY)
                cleared = await _until(lambda: api.alarms("&state=cleared"), "the alarm cleared")
                assert cleared[0]["id"] == alarm["id"] and cleared[0]["cleared_by"] == "system"
                history = (await api.call("GET", f"/api/alarms/{alarm['id']}/history"))["items"]
                assert [h["transition"] for h in history] == ["raised", "acknowledged", "returned", "cleared"]

                # Shelved for 3 s: back, unacknowledged, at expiry (still out of limits).
                await api.call("PUT", f"/api/satellites/{SAT}/limits/energy_pct", ABOVE_ENERGY)
                [second] = await _until(api.alarms, "a new alarm")
                assert second["id"] != alarm["id"]
                shelved = await api.call("POST", f"/api/alarms/{second['id']}/shelve", {"duration_s": 3, "comment": "known"})
                assert shelved["state"] == "shelved" and shelved["shelved_until"]
                conflict = await api.call("POST", f"/api/alarms/{second['id']}/acknowledge", {}, 409)
                assert "shelved" in conflict["error"]["message"]

                async def back() -> bool:
                    return (await api.alarm(second["id"]))["state"] == "unacknowledged"

                await _until(back, "the shelf expired")
                history = (await api.call("GET", f"/api/alarms/{second['id']}/history"))["items"]
                assert [(h["transition"], h["actor"]) for h in history][-2:] == [("shelved", history[-2]["actor"]), ("unshelved", "system")]
                metrics = await api.call("GET", "/metrics")
                assert re.search(r'stellar_alarms\{severity="warning",state="unacknowledged"\} 1\.0', metrics), metrics[-2000:]

                # Every transition reached the event stream.
                seen: list[str] = []
                async with asyncio.timeout(30):
                    while "unshelved" not in seen:
                        frames = await read_sse(stream, 1, timeout=30)
                        seen += [json.loads(f["data"])["data"].get("transition", "?") for f in frames if f.get("event") == "alarm"]
                assert seen[:4] == ["raised", "acknowledged", "returned", "cleared"] and "shelved" in seen
            # Cleared by hand while still out of limits: not raised again before the value returns.
            await api.call("POST", f"/api/alarms/{second['id']}/clear")
            await asyncio.sleep(3)
            assert await api.alarms() == []
            return int(second["id"])

    stack.start()
    try:
        second_id = asyncio.run(first_run())
    finally:  # a failed check must not leave the stack running
        assert stack.stop() == 0
    stack.start()

    async def second_run() -> None:
        async with aiohttp.ClientSession(stack.gateway_url()) as http:
            api = Api(http, stack.admin_token())
            [limit] = [x for x in (await api.call("GET", f"/api/limits?sat={SAT}"))["items"] if x["parameter"] == "energy_pct"]
            assert limit["satellite_id"] == SAT and limit["warning_low"] == 90.0
            # Still in force: the restarted store judges the value by it and raises a new alarm.
            [third] = await _until(api.alarms, "an alarm after the restart")
            assert third["id"] != second_id and "below 90 %" in third["message"]
        server = stack.database()
        async with Database(server.conninfo) as db:
            entries = await AuditLog(db).entries(entity="limit", entity_id=f"{SAT}/energy_pct")
            assert [e.action for e in entries] == ["limit.update"] * 3
            assert entries[-1].details["old"] is None and entries[0].details["new"]["warning_low"] == 90.0
            assert entries[0].details["old"]["warning_low"] == 20.0
            actions = {e.action for e in await AuditLog(db).entries(entity="alarm")}
            assert {"alarm.acknowledge", "alarm.shelve", "alarm.clear"} <= actions

    try:
        asyncio.run(second_run())
    finally:
        assert stack.stop() == 0
