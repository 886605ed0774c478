"""The mission scheduler in the real stack (``stellarops up``: real BEAM, scheduler, store and
gateway nodes, real PostgreSQL): bad tasks refused with the field and nothing stored; an
imaging + downlink pair planned, executed through the ledger (data collected then downlinked),
done; a station taken down moves its downlink; the scheduler node killed with SIGKILL mid-task
and the task still done with every step in the ledger once.

Windows are real passes of the demo constellation: the test puts its imaging targets and its own
ground stations under a satellite's ground track a minute or two ahead, so each drill is short.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from stack import UpStack

from orbital import ground_track, parse_tle
from py_nodes.db import Database
from py_nodes.demo import demo_constellation
from py_nodes.erldist import Atom

pytestmark = [pytest.mark.slow, pytest.mark.erlang]

SATELLITES = 4
ENV = {
    "STELLAROPS_DEMO_SATELLITES": str(SATELLITES),
    "STELLAROPS_SCHEDULER_FREEZE_S": "5",
    "STELLAROPS_SCHEDULER_HORIZON_S": "3600",
    "STELLAROPS_SCHEDULER_BACKOFF_S": "2",
    "STELLAROPS_SCHEDULER_SETUP_GAP_S": "5",
    "STELLAROPS_SCHEDULER_BUDGET_S": "1",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpStack]:
    up = UpStack(tmp_path_factory.mktemp("sched") / "home", f"stellar_sched{os.getpid()}", **ENV).start()
    try:
        yield up
    finally:
        up.stop()


class Api:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session, self.url, self.headers = session, url, {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, json=body, headers=self.headers) as resp:
            return resp.status, await resp.json()


async def with_api(stack: UpStack, body: Callable[[Api], Awaitable[None]]) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        await body(Api(session, stack.gateway_url(), stack.admin_token()))


async def until(what: str, check: Callable[[], Awaitable[Any]], timeout_s: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s (last: {last!r})")


def below(sat_id: str, at: datetime) -> tuple[float, float]:
    """The point under a demo satellite at ``at`` (lat, lon in degrees)."""
    demo = {s.sat_id: s for s in demo_constellation(SATELLITES)}[sat_id]
    track = ground_track(parse_tle(f"{demo.tle_line1}\n{demo.tle_line2}")[0], [at])
    return float(track.lat_deg[0][0]), float(track.lon_deg[0][0])


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def station_under(api: Api, station_id: str, sat_id: str, ahead_s: float) -> None:
    lat, lon = below(sat_id, datetime.now(UTC) + timedelta(seconds=ahead_s))
    status, body = await api.call("POST", "/api/ground-stations", {
        "id": station_id, "name": station_id, "lat_deg": lat, "lon_deg": lon, "min_el_deg": 10, "downlink_mbps": 50,
    })  # fmt: skip
    assert status == 201, body


async def task(api: Api, task_id: int) -> dict[str, Any]:
    status, body = await api.call("GET", f"/api/tasks/{task_id}")
    assert status == 200, body
    return dict(body)


async def ledger(stack: UpStack, task_id: int) -> list[tuple[str, str, str]]:
    """(idempotency key, kind, status) of every ledger command of a task's steps."""
    async with Database(stack.database().conninfo) as db, db.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT idempotency_key, kind, status FROM commands WHERE idempotency_key LIKE %s ORDER BY created_at",
                (f"task-{task_id}-%",),
            )
        ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


# -- bad input ---------------------------------------------------------------------------------

SOON = datetime.now(UTC) + timedelta(days=1)
BAD: list[tuple[dict[str, Any], str]] = [
    ({"kind": "juggling"}, "kind"),
    ({"kind": "imaging", "priority": 101, "args": {"target_lat_deg": 0, "target_lon_deg": 0}}, "priority"),
    ({"kind": "downlink", "energy_pct": -1}, "energy_pct"),
    ({"kind": "downlink", "memory_mb": -5}, "memory_mb"),
    ({"kind": "downlink", "deadline": "2020-01-01T00:00:00Z"}, "deadline"),
    ({"kind": "downlink", "earliest_start": iso(SOON), "deadline": iso(SOON - timedelta(hours=1))}, "deadline"),
    ({"kind": "downlink", "duration_s": 3600, "deadline": iso(datetime.now(UTC) + timedelta(minutes=20))}, "duration_s"),
    ({"kind": "downlink", "satellite_id": "no-such-sat"}, "satellite_id"),
    ({"kind": "downlink", "ground_station_id": "no-such-station"}, "ground_station_id"),
    ({"kind": "downlink", "depends_on": 987654321}, "depends_on"),
    ({"kind": "imaging", "args": {"target_lat_deg": 95, "target_lon_deg": 0}}, "args.target_lat_deg"),
    ({"kind": "imaging", "args": {"target_lon_deg": 0}}, "args.target_lat_deg"),
    ({"kind": "maintenance", "args": {"mode": "party"}}, "args.mode"),
    ({"kind": "downlink", "earliest_start": "tomorrow"}, "earliest_start"),
]


def test_bad_tasks_are_refused_naming_the_field_and_nothing_is_stored(stack: UpStack) -> None:
    async def body(api: Api) -> None:
        _, before = await api.call("GET", "/api/tasks?limit=1000")
        for payload, field in BAD:
            status, answer = await api.call("POST", "/api/tasks", payload)
            assert (status, answer["error"]["details"].get("field")) == (422, field), (payload, answer)
        _, after = await api.call("GET", "/api/tasks?limit=1000")
        assert after["items"] == before["items"]
        # what-if checks the same way, and stores nothing either
        status, answer = await api.call("POST", "/api/plan/what-if", {"add": [{"kind": "downlink", "energy_pct": -1}]})
        assert (status, answer["error"]["details"]["field"]) == (422, "add[0].energy_pct")
        status, answer = await api.call("PATCH", "/api/ground-stations/no-such-station", {"active": False})
        assert status == 404, answer
        # A what-if plans a hypothetical task from live state and stores nothing.
        status, answer = await api.call("POST", "/api/plan/what-if", {"add": [{
            "kind": "maintenance", "satellite_id": "demo-01", "duration_s": 30, "args": {"mode": "maintenance"},
        }], "horizon_s": 3600})  # fmt: skip
        assert status == 200, answer
        assert [(p["hypothetical"], p["satellite_id"]) for p in answer["placements"] if p["hypothetical"]] == [(True, "demo-01")], answer
        _, after = await api.call("GET", "/api/tasks?limit=1000")
        assert after["items"] == before["items"]

    asyncio.run(with_api(stack, body))


# -- end to end --------------------------------------------------------------------------------


def test_an_imaging_and_downlink_pair_is_planned_executed_and_done(stack: UpStack) -> None:
    sat = "demo-01"

    async def body(api: Api) -> None:
        started = time.monotonic()
        events: list[dict[str, Any]] = []
        listening = asyncio.Event()

        async def listen() -> None:
            async with api.session.get(api.url + "/api/events?types=task,plan", headers=api.headers,
                                       timeout=aiohttp.ClientTimeout(total=None)) as resp:  # fmt: skip
                listening.set()
                async for raw in resp.content:
                    line = raw.decode().strip()
                    if line.startswith("data: "):
                        events.append(json.loads(line.removeprefix("data: ")))

        listener = asyncio.create_task(listen())
        await asyncio.wait_for(listening.wait(), 30)
        await station_under(api, "e2e-gs", sat, 60)
        lat, lon = below(sat, datetime.now(UTC) + timedelta(seconds=40))
        status, imaging = await api.call("POST", "/api/tasks", {
            "kind": "imaging", "satellite_id": sat, "priority": 80, "duration_s": 20, "memory_mb": 10,
            "args": {"target_lat_deg": lat, "target_lon_deg": lon, "min_el_deg": 10},
            "deadline": iso(datetime.now(UTC) + timedelta(minutes=15)),
        })  # fmt: skip
        assert status == 201, imaging
        status, downlink = await api.call("POST", "/api/tasks", {
            "kind": "downlink", "satellite_id": sat, "ground_station_id": "e2e-gs", "priority": 80, "duration_s": 20,
            "depends_on": imaging["id"], "deadline": iso(datetime.now(UTC) + timedelta(minutes=15)),
        })  # fmt: skip
        assert status == 201, downlink

        async def scheduled() -> Any:
            a, b = await task(api, imaging["id"]), await task(api, downlink["id"])
            return (a, b) if a["placement"] and b["placement"] else None

        a, b = await until("both tasks placed", scheduled, 60)
        assert b["placement"]["station_id"] == "e2e-gs" and b["placement"]["start"] >= a["placement"]["end"]
        _, plan = await api.call("GET", "/api/plan")
        assert plan["run"]["cause"] in ("task_added", "station_up", "takeover", "freeze_passed"), plan["run"]
        assert {p["task_id"] for p in plan["placements"]} >= {imaging["id"], downlink["id"]}

        memory: dict[str, float] = {}

        async def ran(task_id: int, label: str) -> Any:
            t = await task(api, task_id)
            _, sat_now = await api.call("GET", f"/api/satellites/{sat}")
            memory[f"{label}:{t['status']}"] = sat_now["memory_used_mb"]
            return t if t["status"] in ("done", "failed") else None

        done_a = await until("imaging finished", lambda: ran(imaging["id"], "imaging"), 120)
        assert done_a["status"] == "done", done_a
        after_imaging = memory["imaging:done"]
        done_b = await until("downlink finished", lambda: ran(downlink["id"], "downlink"), 120)
        assert done_b["status"] == "done", done_b
        # The data went down: the memory after the downlink is below what the imaging left.
        await asyncio.sleep(2)
        _, sat_now = await api.call("GET", f"/api/satellites/{sat}")
        assert sat_now["memory_used_mb"] < after_imaging, (memory, sat_now["memory_used_mb"])
        # Each step once in the ledger, done: collect then back to nominal, downlink then nominal.
        assert await ledger(stack, imaging["id"]) == [
            (f"task-{imaging['id']}-a1-start", "collect", "done"), (f"task-{imaging['id']}-a1-stop", "set_mode", "done")]
        assert await ledger(stack, downlink["id"]) == [
            (f"task-{downlink['id']}-a1-start", "downlink", "done"), (f"task-{downlink['id']}-a1-stop", "set_mode", "done")]
        # The stream told it live: plan runs, and each task's way to done.
        listener.cancel()
        seen = [(e["type"], e["data"].get("id"), e["data"].get("status")) for e in events]
        assert any(kind == "plan" for kind, _, _ in seen), seen
        for task_id in (imaging["id"], downlink["id"]):
            states = [status for kind, tid, status in seen if kind == "task" and tid == task_id]
            assert states[-1] == "done" and "scheduled" in states and "running" in states, (task_id, seen)

        async def metrics() -> Any:
            async with api.session.get(api.url + "/metrics", headers=api.headers) as resp:
                text = await resp.text()
            wanted = ('stellar_tasks{state="done"}', "stellar_tasks_pending", "stellar_tasks_failed_total",
                      'stellar_replans_total{cause="takeover"}', "stellar_plan_solve_seconds")  # fmt: skip
            lines = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line and line[0] != "#"}
            return lines if all(w in lines for w in wanted) and lines['stellar_tasks{state="done"}'] >= 2 else None

        figures = await until("the scheduler's metrics", metrics, 30)
        assert figures['stellar_replans_total{cause="takeover"}'] >= 1
        print(f"\nend to end (submit -> downlink done): {time.monotonic() - started:.1f} s;"
              f" plan run {plan['run']['id']} solved in {plan['run']['solve_ms']:.1f} ms")  # fmt: skip

    asyncio.run(with_api(stack, body))


@pytest.mark.parametrize("how", ["active", "window"])
def test_a_station_taken_down_moves_its_downlink(stack: UpStack, how: str) -> None:
    """Taken down with ``active: false``, or with a down window (``unavailable``) over the pass."""
    sat = "demo-02"
    now = datetime.now(UTC)
    down, up = ({"active": False}, {"active": True}) if how == "active" else (
        {"unavailable": [{"from": iso(now - timedelta(minutes=1)), "to": iso(now + timedelta(minutes=30))}]}, {"unavailable": []})  # fmt: skip

    async def body(api: Api) -> None:
        await station_under(api, f"move-a-{how}", sat, 150)
        await station_under(api, f"move-b-{how}", sat, 160)
        status, downlink = await api.call("POST", "/api/tasks", {
            "kind": "downlink", "satellite_id": sat, "priority": 60, "duration_s": 20,
            "earliest_start": iso(datetime.now(UTC) + timedelta(seconds=90)),
            "deadline": iso(datetime.now(UTC) + timedelta(minutes=10)),
        })  # fmt: skip
        assert status == 201, downlink

        seen: list[Any] = []

        async def placed() -> Any:
            t = await task(api, downlink["id"])
            seen[:] = [t]
            return t["placement"] if t["placement"] and t["placement"]["station_id"] else None

        try:  # on one of ours, or on a real station with a pass of the satellite then
            first = await until("downlink placed on a station", placed, 60)
        except AssertionError:
            raise AssertionError(f"not placed: {seen}") from None
        status, changed = await api.call("PATCH", f"/api/ground-stations/{first['station_id']}", down)
        assert status == 200 and changed["changed"] and changed["request_id"], changed

        async def moved() -> Any:
            t = await task(api, downlink["id"])
            p = t["placement"]
            return p if p and p["station_id"] != first["station_id"] and p["plan_run_id"] != first["plan_run_id"] else None

        second = await until("downlink moved off the station taken down", moved, 60)
        assert second["station_id"] is not None
        _, plan = await api.call("GET", "/api/plan")
        assert any(r["cause"] == "station_down" and first["station_id"] in r["detail"] for r in plan["runs"]), plan["runs"]
        assert isinstance(plan["changes"], list)
        await api.call("POST", f"/api/tasks/{downlink['id']}/cancel")
        await api.call("PATCH", f"/api/ground-stations/{first['station_id']}", up)

    asyncio.run(with_api(stack, body))


def test_the_scheduler_node_killed_mid_task_another_takes_over_and_no_step_runs_twice(stack: UpStack) -> None:
    sat = "demo-03"

    async def body(api: Api) -> None:
        ctl = stack.ctl("schedkill")
        async with ctl:
            async def scheduler_node() -> Any:
                nodes = await stack.rpc(ctl, "stellar", "nodes", [])
                found = [n for n in nodes if n.get(Atom("role")) == "scheduler" and n.get(Atom("status")) == "up"]
                return found[0] if found else None

            first = await until("a scheduler node up", scheduler_node, 60)
            lat, lon = below(sat, datetime.now(UTC) + timedelta(seconds=30))
            status, imaging = await api.call("POST", "/api/tasks", {
                "kind": "imaging", "satellite_id": sat, "priority": 70, "duration_s": 30, "memory_mb": 15,
                "args": {"target_lat_deg": lat, "target_lon_deg": lon, "min_el_deg": 10},
                "deadline": iso(datetime.now(UTC) + timedelta(minutes=10)),
            })  # fmt: skip
            assert status == 201, imaging

            async def running() -> Any:
                t = await task(api, imaging["id"])
                return t if t["status"] == "running" and t["steps"] else None

            await until("imaging running with its start step in the ledger", running, 90)
            os.kill(first[Atom("os_pid")], signal.SIGKILL)

            async def replaced() -> Any:
                node = await scheduler_node()
                return node if node and node[Atom("os_pid")] != first[Atom("os_pid")] else None

            await until("the scheduler node restarted", replaced, 60)

            async def finished() -> Any:
                t = await task(api, imaging["id"])
                return t if t["status"] in ("done", "failed") else None

            final = await until("imaging finished after the takeover", finished, 120)
            assert final["status"] == "done" and final["attempts"] == 1, final
            steps = await ledger(stack, imaging["id"])
            assert steps == [(f"task-{imaging['id']}-a1-start", "collect", "done"),
                             (f"task-{imaging['id']}-a1-stop", "set_mode", "done")], steps  # fmt: skip
            _, plan = await api.call("GET", "/api/plan")
            assert any(r["cause"] == "takeover" for r in plan["runs"]), plan["runs"]

    asyncio.run(with_api(stack, body))



def test_the_shell_submits_lists_plans_and_cancels_tasks(stack: UpStack) -> None:
    async def body() -> None:
        ctl = stack.ctl("schedshell")
        async with ctl:
            deadline_ms = int((datetime.now(UTC) + timedelta(hours=2)).timestamp() * 1000)
            bad = await stack.rpc(ctl, "stellar", "submit_task", [{Atom("kind"): Atom("downlink"), Atom("energy_pct"): -3}])
            assert bad == (Atom("error"), (Atom("bad_field"), b"energy_pct")), bad
            unknown = await stack.rpc(ctl, "stellar", "submit_task", [{Atom("kind"): Atom("downlink"), Atom("satellite_id"): b"nope"}])
            assert unknown == (Atom("error"), (Atom("not_found"), Atom("satellite_id"))), unknown
            ok, task_id = await stack.rpc(ctl, "stellar", "submit_task", [{
                Atom("kind"): Atom("maintenance"), Atom("satellite_id"): b"demo-04", Atom("deadline_ms"): deadline_ms,
                Atom("args"): {Atom("mode"): Atom("maintenance")}, Atom("priority"): 10,
            }])  # fmt: skip
            assert ok == Atom("ok") and isinstance(task_id, int)
            ok, tasks = await stack.rpc(ctl, "stellar", "tasks", [])
            assert ok == Atom("ok") and task_id in [t[Atom("id")] for t in tasks]
            ok, one = await stack.rpc(ctl, "stellar", "task", [task_id])
            assert (ok, one[Atom("kind")], one[Atom("satellite_id")]) == (Atom("ok"), Atom("maintenance"), b"demo-04")
            ok, plan = await stack.rpc(ctl, "stellar", "plan", [])
            assert ok == Atom("ok") and plan[Atom("run")] is not None and isinstance(plan[Atom("tasks")], list)
            # Another task stays open: an idle scheduler does not re-plan for nothing.
            ok, other_id = await stack.rpc(ctl, "stellar", "submit_task", [{
                Atom("kind"): Atom("command"), Atom("satellite_id"): b"demo-04", Atom("deadline_ms"): deadline_ms,
                Atom("earliest_start_ms"): deadline_ms - 600_000, Atom("args"): {Atom("command"): Atom("noop")},
            }])  # fmt: skip
            assert ok == Atom("ok")

            async def planned() -> Any:  # both in a plan run already: the cancel is news of its own
                found = [(await stack.rpc(ctl, "stellar", "task", [i]))[1] for i in (task_id, other_id)]
                return all(t[Atom("planned")] is not None or t[Atom("reason")] is not None for t in found)

            await until("both tasks planned", planned, 30)
            assert await stack.rpc(ctl, "stellar", "cancel_task", [task_id]) == Atom("ok")

            async def replanned() -> Any:
                _, now_plan = await stack.rpc(ctl, "stellar", "plan", [])
                run = now_plan[Atom("run")]
                return run if run[Atom("cause")] == "task_cancelled" else None

            await until("a re-plan for the cancel", replanned, 30)
            assert await stack.rpc(ctl, "stellar", "cancel_task", [other_id]) == Atom("ok")
            assert await stack.rpc(ctl, "stellar", "cancel_task", [task_id]) == (Atom("error"), (Atom("already"), Atom("cancelled")))
            assert await stack.rpc(ctl, "stellar", "task", [10**12]) == (Atom("error"), Atom("not_found"))
            assert await stack.rpc(ctl, "stellar", "task", [-1]) == (Atom("error"), (Atom("bad_field"), Atom("id")))

    asyncio.run(body())


def test_a_failing_step_is_retried_with_backoff_then_the_task_fails_with_an_alarm(stack: UpStack) -> None:
    sat = "demo-04"

    async def body(api: Api) -> None:
        # In maintenance a collect is refused by the satellite (maintenance -> science is no transition).
        status, answer = await api.call("PATCH", f"/api/satellites/{sat}", {"mode": "maintenance"})
        assert status == 200, answer
        status, created = await api.call("POST", "/api/tasks", {
            "kind": "command", "satellite_id": sat, "args": {"command": "collect"}, "duration_s": 5, "max_retries": 1,
            "deadline": iso(datetime.now(UTC) + timedelta(minutes=10)),
        })  # fmt: skip
        assert status == 201, created

        async def final() -> Any:
            t = await task(api, created["id"])
            return t if t["status"] in ("done", "failed") else None

        failed = await until("the command task failed after its retry", final, 120)
        assert (failed["status"], failed["reason"], failed["attempts"]) == ("failed", "execution_failed", 2), failed
        steps = await ledger(stack, created["id"])
        assert [(key, status) for key, _, status in steps] == [
            (f"task-{created['id']}-a1-start", "failed"), (f"task-{created['id']}-a2-start", "failed")], steps
        _, alarms = await api.call("GET", "/api/alarms")
        mine = [a for a in alarms["items"] if a["satellite_id"] == sat and a["kind"] == "task_failed"]
        assert mine and f"task {created['id']}" in mine[0]["message"], alarms
        _, plan = await api.call("GET", "/api/plan")
        assert any(r["cause"] == "execution_failed" for r in plan["runs"]), plan["runs"]
        await api.call("PATCH", f"/api/satellites/{sat}", {"mode": "standby"})

    asyncio.run(with_api(stack, body))


def test_a_satellite_in_safe_mode_gets_nothing_new_and_its_tasks_are_replanned(stack: UpStack) -> None:
    sat = "demo-04"

    async def body(api: Api) -> None:
        await api.call("PATCH", f"/api/satellites/{sat}", {"mode": "standby"})
        await api.call("PATCH", f"/api/satellites/{sat}", {"mode": "nominal"})
        status, created = await api.call("POST", "/api/tasks", {
            "kind": "command", "satellite_id": sat, "args": {"command": "noop"}, "duration_s": 10,
            "earliest_start": iso(datetime.now(UTC) + timedelta(minutes=5)),
            "deadline": iso(datetime.now(UTC) + timedelta(minutes=30)),
        })  # fmt: skip
        assert status == 201, created

        async def placed() -> Any:
            t = await task(api, created["id"])
            return t if t["placement"] else None

        await until("the task placed", placed, 60)
        status, answer = await api.call("PATCH", f"/api/satellites/{sat}", {"mode": "safe"})
        assert status == 200, answer

        async def unplaced() -> Any:
            t = await task(api, created["id"])
            return t if t["status"] == "pending" and t["reason"] == "satellite_unavailable" else None

        await until("the task unplaced: its satellite is in safe mode", unplaced, 60)
        _, plan = await api.call("GET", "/api/plan")
        assert any(r["cause"] == "satellite_unavailable" and sat in r["detail"] for r in plan["runs"]), plan["runs"]
        await api.call("POST", f"/api/tasks/{created['id']}/cancel")
        await api.call("PATCH", f"/api/satellites/{sat}", {"mode": "standby"})

    asyncio.run(with_api(stack, body))
