"""Builders for scheduler tests and the scheduler bench: short constructors with defaults, and
synthetic problems whose windows have pass-like statistics (LEO: a ~95 min orbit, ~60 min of it
sunlit; a few 5-12 min passes over each station a day, in two groups ~12 h apart)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from scheduler import Problem, SatelliteResources, Station, Task, TaskKind, Window

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def task(task_id: str, kind: str = "command", **kw: object) -> Task:
    fields: dict[str, object] = {
        "priority": 50,
        "earliest_utc": T0,
        "deadline_utc": at(86_400),
        "duration_s": 60.0,
    }
    fields.update(kw)
    return Task(task_id=task_id, kind=kind, **fields)  # type: ignore[arg-type]


def sat(sat_id: str = "sat-1", **kw: object) -> SatelliteResources:
    fields: dict[str, object] = {
        "battery_wh": 100.0,
        "energy_now_wh": 100.0,
        "reserve_wh": 20.0,
        "charge_w": 0.0,
        "load_w": {"nominal": 0.0, "science": 0.0, "downlink": 0.0, "maintenance": 0.0},
        "memory_capacity_mb": 1000.0,
        "memory_used_mb": 0.0,
    }
    fields.update(kw)
    return SatelliteResources(sat_id=sat_id, **fields)  # type: ignore[arg-type]


def station(station_id: str = "gs-1", **kw: object) -> Station:
    fields: dict[str, object] = {"downlink_mbps": 80.0}
    fields.update(kw)
    return Station(station_id=station_id, **fields)  # type: ignore[arg-type]


def window(sat_id: str, start_s: float, end_s: float, **kw: object) -> Window:
    return Window(sat_id, at(start_s), at(end_s), **kw)  # type: ignore[arg-type]


def problem(**kw: object) -> Problem:
    fields: dict[str, object] = {"now_utc": T0, "tasks": (), "satellites": (sat(),)}
    fields.update(kw)
    return Problem(**fields)  # type: ignore[arg-type]


def synthetic_problem(
    seed: int,
    *,
    n_tasks: int,
    n_sats: int,
    n_stations: int,
    horizon_s: float = 86_400.0,
    slot_s: float = 1.0,
    antennas: int = 1,
    dependencies: bool = True,
    tight: float = 1.0,
) -> Problem:
    """A random constellation day. Every time is a multiple of ``slot_s`` (so a CP-SAT model on
    that grid is exact). ``tight`` < 1 shrinks batteries and memories (more binding)."""
    rng = random.Random(seed)

    def grid(x: float) -> float:
        return round(x / slot_s) * slot_s

    sats: list[SatelliteResources] = []
    passes: list[Window] = []
    sunlit: list[Window] = []
    targets: list[Window] = []
    tasks: list[Task] = []
    stations = [
        Station(f"gs-{j}", downlink_mbps=rng.choice([50.0, 100.0, 200.0]), antennas=antennas,
                setup_gap_s=grid(rng.choice([60.0, 120.0, 180.0])))
        for j in range(n_stations)
    ]
    for i in range(n_sats):
        sat_id = f"sat-{i}"
        period = 5700.0 + rng.uniform(-150, 150)
        phase = rng.uniform(0, period)
        t = -phase
        while t < horizon_s:  # ~62% of each orbit sunlit
            a, b = max(0.0, grid(t)), min(horizon_s, grid(t + 0.62 * period))
            if b - a >= slot_s:
                sunlit.append(Window(sat_id, at(a), at(b)))
            t += period
        for st in stations:
            if rng.random() < 0.25:
                continue  # this station's latitude band does not see this orbit much
            for center in (rng.uniform(0, 43_200), rng.uniform(43_200, 86_400)):
                for k in range(rng.randint(1, 3)):
                    mid = (center + k * period) % 86_400 * horizon_s / 86_400
                    length = rng.uniform(300, 720)
                    a, b = grid(mid - length / 2), grid(mid + length / 2)
                    if a >= 0 and b <= horizon_s and b - a >= slot_s:
                        passes.append(Window(sat_id, at(a), at(b), station_id=st.station_id,
                                             max_elevation_deg=rng.uniform(5, 85)))  # fmt: skip
        battery = rng.uniform(80, 150) * tight
        sats.append(SatelliteResources(
            sat_id, battery_wh=battery, energy_now_wh=battery * rng.uniform(0.5, 1.0),
            reserve_wh=battery * 0.2, charge_w=rng.uniform(25, 40),
            load_w={"nominal": 10.0, "science": 35.0, "downlink": 25.0, "maintenance": 8.0},
            memory_capacity_mb=grid(rng.uniform(2000, 6000) * tight),
            memory_used_mb=rng.uniform(0, 500),
            available=rng.random() > 0.02,
        ))  # fmt: skip

    n_imaging = int(n_tasks * 0.45)
    n_downlink = int(n_tasks * 0.35)
    i = 0
    while len(tasks) < n_tasks:
        tid = f"t{i}"
        i += 1
        earliest = grid(rng.uniform(0, horizon_s * 0.7))
        deadline = grid(min(horizon_s * 1.05, earliest + rng.uniform(0.2, 1.0) * horizon_s))
        prio = rng.randint(0, 100)
        pinned = f"sat-{rng.randrange(n_sats)}" if rng.random() < 0.5 else None
        if len(tasks) < n_imaging:
            dur = grid(rng.uniform(30, 240))
            tasks.append(Task(tid, "imaging", prio, at(earliest), at(deadline), dur,
                              energy_wh=rng.uniform(0, 2), memory_mb=grid(rng.uniform(100, 800)),
                              sat_id=pinned, needs_sunlight=rng.random() < 0.5))  # fmt: skip
            viewers = [pinned] if pinned else rng.sample([s.sat_id for s in sats], min(n_sats, 8))
            for v in viewers:
                for _ in range(rng.randint(1, 3)):
                    mid = rng.uniform(0, horizon_s)
                    length = rng.uniform(dur, dur + 600)
                    a, b = grid(mid - length / 2), grid(mid + length / 2)
                    if a >= 0 and b <= horizon_s and b - a >= dur:
                        targets.append(Window(v, at(a), at(b), task_id=tid))
            if dependencies and rng.random() < 0.6 and len(tasks) < n_tasks:
                mem = tasks[-1].memory_mb
                tasks.append(Task(f"{tid}-dl", "downlink", min(100, prio + rng.randint(0, 10)),
                                  at(earliest), at(deadline), 0.0, memory_mb=mem,
                                  depends_on=(tid,), min_elevation_deg=rng.choice([0.0, 10.0, 20.0])))  # fmt: skip
        elif len(tasks) < n_imaging + n_downlink:
            tasks.append(Task(tid, "downlink", prio, at(earliest), at(deadline), grid(rng.uniform(60, 240)),
                              memory_mb=grid(rng.uniform(0, 100)), sat_id=f"sat-{rng.randrange(n_sats)}",
                              station_id=f"gs-{rng.randrange(n_stations)}" if rng.random() < 0.3 else None))  # fmt: skip
        else:
            kind: TaskKind = rng.choice(["maintenance", "command"])
            tasks.append(Task(tid, kind, prio, at(earliest), at(deadline),
                              grid(rng.uniform(60, 900) if kind == "maintenance" else slot_s * 2),
                              energy_wh=rng.uniform(0, 3), sat_id=f"sat-{rng.randrange(n_sats)}",
                              needs_sunlight=rng.random() < 0.2))  # fmt: skip
    return Problem(T0, tuple(tasks), tuple(sats), tuple(stations), tuple(passes), tuple(targets),
                   tuple(sunlit), horizon_s=horizon_s, slot_s=slot_s)  # fmt: skip
