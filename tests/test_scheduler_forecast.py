"""Energy and memory forecasts against values computed by hand."""

from __future__ import annotations

import pytest
from scheduler_support import at, problem, sat, task, window

from scheduler import Forecast, Placement, forecast_energy, forecast_memory

LOADS = {"nominal": 18.0, "science": 54.0, "downlink": 30.0, "maintenance": 9.0}


def _points(forecast: Forecast) -> list[tuple[float, float]]:
    return [((t - at(0)).total_seconds(), round(v, 9)) for t, v in zip(forecast.t_utc, forecast.values, strict=True)]


def test_energy_charges_in_sunlight_and_drains_in_eclipse() -> None:
    # +36 W sunlit - 18 W idle = +18 W for 1 h: 50 -> 68 Wh; then -18 W for 2 h: 68 -> 32 Wh.
    p = problem(
        satellites=(sat(energy_now_wh=50.0, charge_w=36.0, load_w=LOADS),),
        sunlit=(window("sat-1", 0, 3600),),
        horizon_s=10_800.0,
    )
    f = forecast_energy(p, [], "sat-1")
    assert _points(f) == [(0.0, 50.0), (3600.0, 68.0), (10_800.0, 32.0)]
    assert f.min_value == 32.0
    assert f.first_time_below(40.0) == at(10_800)


def test_a_task_drains_its_mode_load_and_its_own_energy() -> None:
    # Imaging 1800..3600 s in science mode (54 W instead of 18 W) with 9 Wh of its own over
    # 0.5 h (+18 W): net 36 - 54 - 18 = -36 W for 0.5 h. 50 +9 -> 59, -18 -> 41, -36 -> 5.
    p = problem(
        tasks=(task("img", "imaging", energy_wh=9.0, duration_s=1800.0),),
        satellites=(sat(energy_now_wh=50.0, charge_w=36.0, load_w=LOADS),),
        sunlit=(window("sat-1", 0, 3600),),
        horizon_s=10_800.0,
    )
    placed = Placement("img", "sat-1", at(1800), at(3600))
    f = forecast_energy(p, [placed], "sat-1")
    assert _points(f) == [(0.0, 50.0), (1800.0, 59.0), (3600.0, 41.0), (10_800.0, 5.0)]


def test_energy_stops_at_a_full_battery() -> None:
    # 95 Wh, +18 W: full (100 Wh) after 5/18 h = 1000 s, flat until 3600 s, then -18 W for 2 h.
    p = problem(
        satellites=(sat(energy_now_wh=95.0, charge_w=36.0, load_w=LOADS),),
        sunlit=(window("sat-1", 0, 3600),),
        horizon_s=10_800.0,
    )
    f = forecast_energy(p, [], "sat-1")
    assert _points(f) == [(0.0, 95.0), (1000.0, 100.0), (3600.0, 100.0), (10_800.0, 64.0)]
    assert f.max_value == 100.0


def test_a_running_task_drains_only_what_is_left_of_it() -> None:
    # Started 600 s ago, ends in 600 s: 1200 s long with 12 Wh of its own (36 W) in science
    # (+36 W over idle): -18 - 72 = -90 W for 600 s = -15 Wh, then -18 W for 3000 s = -15 Wh.
    p = problem(
        tasks=(task("img", "imaging", energy_wh=12.0, duration_s=1200.0, earliest_utc=at(-600)),),
        satellites=(sat(energy_now_wh=80.0, load_w=LOADS),),
        horizon_s=3600.0,
    )
    f = forecast_energy(p, [Placement("img", "sat-1", at(-600), at(600))], "sat-1")
    assert _points(f) == [(0.0, 80.0), (600.0, 65.0), (3600.0, 50.0)]


def test_memory_takes_at_start_frees_at_end_ends_first() -> None:
    p = problem(
        tasks=(
            task("a", "imaging", memory_mb=300.0),
            task("b", "downlink", memory_mb=250.0),
            task("c", "imaging", memory_mb=500.0),
        ),
        satellites=(sat(memory_used_mb=100.0),),
    )
    placements = [
        Placement("a", "sat-1", at(600), at(700)),
        Placement("b", "sat-1", at(1500), at(2000), station_id="gs-1", antenna=0),
        Placement("c", "sat-1", at(2000), at(2100)),
    ]
    f = forecast_memory(p, placements, "sat-1")
    assert _points(f) == [(0.0, 100.0), (600.0, 400.0), (2000.0, 150.0), (2000.0, 650.0)]
    assert (f.min_value, f.max_value) == (100.0, 650.0)
    assert f.first_time_above(600.0) == at(2000)


def test_memory_of_a_running_task_is_already_in_the_live_state() -> None:
    p = problem(
        tasks=(task("img", "imaging", memory_mb=300.0), task("dl", "downlink", memory_mb=200.0)),
        satellites=(sat(memory_used_mb=400.0),),
    )
    placements = [
        Placement("img", "sat-1", at(-60), at(60)),  # took its 300 MB before now
        Placement("dl", "sat-1", at(-30), at(90), station_id="gs-1", antenna=0),  # frees at 90 s
    ]
    assert _points(forecast_memory(p, placements, "sat-1")) == [(0.0, 400.0), (90.0, 200.0)]


def test_forecast_of_an_unknown_satellite_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no satellite 'sat-9'"):
        forecast_energy(problem(), [], "sat-9")
