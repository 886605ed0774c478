"""Satellite positions and sunlight from their TLEs: the tracker, and the sats role reporting them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from erl_support import ErlNode, erl_eval
from test_sats_role import SHADOW_SRC, STATE_SRC, TICKS_FANOUT_SRC, is_tagged, shadow_got

from orbital import Elements, in_sunlight, make_elements, propagate, subsatellite_point
from py_nodes import proto_v1
from py_nodes.demo import demo_constellation
from py_nodes.erldist import Atom, Node, Process
from py_nodes.roles.sats import SatsServer, serve_sats
from py_nodes.satellite.orbit import OrbitTracker

A = Atom
DEMO = demo_constellation(24)
T_UTC = datetime(2026, 3, 20, 12, 0, 0, tzinfo=UTC)


def tle_of(i: int) -> tuple[bytes, bytes]:
    return DEMO[i].tle_line1.encode(), DEMO[i].tle_line2.encode()


def expected(i: int, t_utc: datetime) -> tuple[float, float, float, bool]:
    """The same quantities straight from the orbital library."""
    elements = Elements.from_tle(DEMO[i].tle_line1, DEMO[i].tle_line2)
    prop = propagate(elements, t_utc)
    point = subsatellite_point(prop.r_teme_km, prop.jd, prop.fr)
    sunlit = in_sunlight(prop.r_teme_km, [t_utc])
    return float(point.lat_deg[0, 0]), float(point.lon_deg[0, 0]), float(point.alt_km[0, 0]), bool(sunlit[0, 0])


def test_fixes_match_the_orbital_library() -> None:
    tracker = OrbitTracker()
    for i in range(24):
        assert tracker.track(f"s{i}".encode(), tle_of(i))
    fixes = tracker.fixes(T_UTC.timestamp())
    assert len(fixes) == 24
    for i in range(24):
        fix = fixes[f"s{i}".encode()]
        lat, lon, alt, sunlit = expected(i, T_UTC)
        assert fix.lat_deg == pytest.approx(lat, abs=1e-9)
        assert fix.lon_deg == pytest.approx(lon, abs=1e-9)
        assert fix.alt_km == pytest.approx(alt, abs=1e-9)
        assert fix.in_sunlight is sunlit
        assert 520 < fix.alt_km < 590 and -53.5 < fix.lat_deg < 53.5
    # A 53° shell at an equinox: some satellites in the Earth's shadow, most in sunlight.
    sunlit_count = sum(f.in_sunlight for f in fixes.values())
    assert 12 <= sunlit_count < 24


def test_satellites_without_a_usable_tle_have_no_fix() -> None:
    tracker = OrbitTracker()
    assert not tracker.track(b"no-tle", None)
    line1, line2 = tle_of(0)
    assert not tracker.track(b"bad-checksum", (line1[:-1] + b"0" if line1[-1:] != b"0" else line1[:-1] + b"1", line2))
    assert not tracker.track(b"not-ascii", (b"\xff" * 69, line2))
    assert tracker.track(b"good", (line1, line2))
    assert set(tracker.fixes(T_UTC.timestamp())) == {b"good"}
    tracker.forget(b"good")
    assert len(tracker) == 0 and tracker.fixes(T_UTC.timestamp()) == {}


def test_a_decayed_satellite_is_left_out_not_raised() -> None:
    decaying = make_elements(
        norad_id=99999, epoch_utc=datetime(2020, 1, 1, tzinfo=UTC), inclination_deg=51.6, raan_deg=0.0,
        eccentricity=0.0001, arg_perigee_deg=0.0, mean_anomaly_deg=0.0, mean_motion_rev_day=16.2,
        bstar_per_earth_radius=0.5,
    )  # fmt: skip
    tracker = OrbitTracker()
    assert tracker.track(b"decayed", (decaying.line1.encode(), decaying.line2.encode()))
    assert tracker.track(b"fine", tle_of(1))
    assert set(tracker.fixes(datetime(2020, 1, 1, tzinfo=UTC).timestamp())) == {b"decayed", b"fine"}
    assert set(tracker.fixes(datetime(2024, 1, 1, tzinfo=UTC).timestamp())) == {b"fine"}


@pytest.fixture
async def role(py_node: Node, shared_erl: ErlNode) -> SatsServer:
    await erl_eval(py_node, shared_erl, TICKS_FANOUT_SRC)  # ticks come batched: see test_sats_role
    return serve_sats(py_node, tick_s=0.1)


@pytest.mark.erlang
async def test_an_actor_with_a_tle_reports_where_it_is(py_node: Node, shared_erl: ErlNode, role: SatsServer) -> None:
    async with py_node.process() as inbox:
        await _place_with_tle(py_node, shared_erl, inbox, b"orb-1", tle_of(3))
        await _place_with_tle(py_node, shared_erl, inbox, b"orb-2", None)
        seen: dict[bytes, Any] = {}
        while len(seen) < 2:
            tick = await shadow_got(inbox, "sat_tick")
            assert proto_v1.conforms(tick, proto_v1.SHAPES["sat_tick"])
            seen[tick[2]] = tick[3]
    with_tle, without = seen[b"orb-1"], seen[b"orb-2"]
    t_utc = datetime.fromtimestamp(with_tle[A("updated_at")] / 1000, tz=UTC)
    lat, lon, alt, sunlit = expected(3, t_utc)
    # updated_at is the tick's time rounded down to the ms: at 7.6 km/s that is < 0.01 km.
    assert np.hypot(with_tle[A("lat_deg")] - lat, (with_tle[A("lon_deg")] - lon) * np.cos(np.radians(lat))) < 1e-3
    assert with_tle[A("alt_km")] == pytest.approx(alt, abs=0.05)
    assert with_tle[A("in_sunlight")] is sunlit
    assert without[A("lat_deg")] is None and without[A("lon_deg")] is None and without[A("alt_km")] is None
    assert type(without[A("in_sunlight")]) is bool


async def _place_with_tle(py_node: Node, erl: ErlNode, inbox: Process, sat_id: bytes, tle: tuple[bytes, bytes] | None) -> None:
    await erl_eval(
        py_node, erl, f"State0 = {STATE_SRC}, State = State0#{{tle => Tle}}, {SHADOW_SRC}",
        PyNode=A(py_node.name), Inbox=inbox.pid, Id=sat_id, Link=True, Tle=tle,
    )  # fmt: skip
    placed = await inbox.receive(is_tagged("placed"), timeout=5)
    assert placed[2][0] == "ok", placed
