"""The orbital role, called by a real Erlang node; TLE ids resolve through a fake ``stellar:tles/1``.

Values are compared with the orbital library called directly. The fake ``stellar`` module is
compiled into a temporary folder and loaded only by this module's own Erlang node, so it can never
shadow the real application's module. ``stellar:visible/2`` is also checked for real, through the
whole stack (``stellarops up``: the real ``stellar`` app and orbital node);
``{error, no_orbital_node}`` is covered by stellar_sat_SUITE (a real cluster without one).
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from erl_support import ErlNode, erl_eval, unique_name
from stack import UpStack

from orbital import (
    Elements,
    GroundStation,
    find_passes,
    in_sunlight_jd,
    jd_fr_from_utc,
    look_angles,
    make_elements,
    propagate,
    subsatellite_point,
    teme_to_ecef,
    walker_delta,
)
from py_nodes.cli import ROLES
from py_nodes.erldist import Atom, Node
from py_nodes.ground_stations import DEFAULT_STATIONS, default_stations
from py_nodes.roles import orbital as role_module
from py_nodes.roles.orbital import OrbitalServer, serve_orbital
from py_nodes.settings import Settings

A = Atom
OK, ERROR = A("ok"), A("error")
ISS_NAME = b"ISS (ZARYA)"
ISS_L1 = b"1 25544U 98067A   13330.58127943  .00000814  00000-0  21834-4 0  1064"
ISS_L2 = b"2 25544  51.6484  23.7537 0001246  74.1647  18.7420 15.50540527859894"
ISS = Elements.from_tle(ISS_L1.decode(), ISS_L2.decode(), ISS_NAME.decode())
BAD_L1 = ISS_L1[:-1] + b"5"  # wrong checksum
T0 = datetime(2013, 11, 26, 14, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
LEO = walker_delta(6, 2, 1, 550.0, 53.0, T0 - timedelta(hours=3), name_prefix="LEO")
DECAY = make_elements(
    norad_id=99999, epoch_utc=T0, inclination_deg=51.6, raan_deg=0.0, eccentricity=0.001,
    arg_perigee_deg=0.0, mean_anomaly_deg=0.0, mean_motion_rev_day=16.3,
    bstar_per_earth_radius=0.05, name="DECAY",
)  # fmt: skip  # re-enters within a day: SGP4 error 1 afterwards


def tle_term(e: Elements) -> tuple[bytes, bytes, bytes]:
    return (e.name.encode(), e.line1.encode(), e.line2.encode())


def _erl_bin(data: bytes) -> str:
    return "<<" + ",".join(str(b) for b in data) + ">>"


def _fake_stellar_source() -> str:
    """``stellar:tles/1`` over a fixed table: ``all`` gives the satellites that have a TLE."""
    table = {b"iss": (ISS_L1, ISS_L2), b"notle": None, b"badtle": (BAD_L1, ISS_L2)}
    table |= {e.name.lower().encode(): (e.line1.encode(), e.line2.encode()) for e in LEO}
    entries = ",\n        ".join(
        f"{_erl_bin(k)} => "
        + ("undefined" if v is None else f"{{{_erl_bin(v[0])}, {_erl_bin(v[1])}}}")
        for k, v in table.items()
    )
    return f"""-module(stellar).
-export([tles/1]).
tles(all) -> maps:filter(fun(_, Tle) -> Tle =/= undefined end, table());
tles(Ids) when is_list(Ids) -> maps:with(Ids, table()).
table() -> #{{
        {entries}}}.
"""


@pytest.fixture(scope="module")
def fake_beam(
    cookie: str, erl_ebin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ErlNode]:
    """An Erlang node with a fake ``stellar`` module (only on this node's code path)."""
    workdir = tmp_path_factory.mktemp("fake_beam")
    (workdir / "stellar.erl").write_text(_fake_stellar_source())
    subprocess.run(["erlc", "-o", str(workdir), str(workdir / "stellar.erl")], check=True)
    node = ErlNode(unique_name("beam"), cookie, erl_ebin, workdir, ["-pa", str(workdir)]).start()
    yield node
    node.stop()


@pytest.fixture
async def role(py_node: Node, fake_beam: ErlNode) -> OrbitalServer:
    return serve_orbital(py_node, beam_node=fake_beam.name)


async def call(py_node: Node, erl: ErlNode, request: Any, timeout_s: float = 30.0) -> Any:
    """``gen_server:call({orbital, PyNode}, Request)`` made by the Erlang node."""
    return await erl_eval(
        py_node, erl, "gen_server:call({orbital, PyNode}, Req, Timeout).",
        timeout=timeout_s + 5, PyNode=A(py_node.name), Req=request, Timeout=int(timeout_s * 1000),
    )  # fmt: skip


async def call_src(py_node: Node, erl: ErlNode, source: str, **bindings: Any) -> Any:
    """Erlang ``source`` with ``Call(Request)`` bound to a call of the orbital server."""
    prelude = "Call = fun(R) -> gen_server:call({orbital, PyNode}, R, 30000) end, "
    return await erl_eval(
        py_node, erl, prelude + source, timeout=60, PyNode=A(py_node.name), **bindings
    )


def ms(t: datetime) -> int:
    return round((t - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))


def utc(t_ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=t_ms)


# -- propagate ------------------------------------------------------------------------------------


@pytest.mark.erlang
async def test_propagate_tle_tuples_matches_the_library(
    py_node: Node, fake_beam: ErlNode, role: OrbitalServer
) -> None:
    times_ms = [T0_MS, T0_MS + 600_000, T0_MS + HOUR_MS + 1]
    sats = [ISS, *LEO[:2]]
    reply = await call(py_node, fake_beam, (A("propagate"), [tle_term(e) for e in sats], times_ms))
    assert reply[0] == OK and len(reply[1]) == 3
    times = [utc(t) for t in times_ms]
    states = propagate(sats, times)
    geo = subsatellite_point(states.r_teme_km, states.jd, states.fr)
    jd, fr = jd_fr_from_utc(times)
    sunlit = in_sunlight_jd(states.r_teme_km, jd, fr)
    for i, (e, result) in enumerate(zip(sats, reply[1], strict=True)):
        assert set(result) == {A("id"), A("norad_id"), A("error"), A("positions")}
        assert (result[A("id")], result[A("norad_id")], result[A("error")]) == (
            e.name.encode(),
            e.norad_id,
            0,
        )
        for j, position in enumerate(result[A("positions")]):
            assert position[A("t")] == times_ms[j] and position[A("error")] == 0
            assert position[A("lat_deg")] == pytest.approx(geo.lat_deg[i, j], abs=1e-9)
            assert position[A("lon_deg")] == pytest.approx(geo.lon_deg[i, j], abs=1e-9)
            assert position[A("alt_km")] == pytest.approx(geo.alt_km[i, j], abs=1e-9)
            assert position[A("r_teme_km")] == pytest.approx(
                states.r_teme_km[i, j].tolist(), abs=1e-9
            )
            assert position[A("v_teme_km_s")] == pytest.approx(
                states.v_teme_km_s[i, j].tolist(), abs=1e-12
            )
            assert position[A("in_sunlight")] is bool(sunlit[i, j])
    iss_alts = [p[A("alt_km")] for p in reply[1][0][A("positions")]]
    assert all(350.0 < alt < 450.0 for alt in iss_alts)


@pytest.mark.erlang
async def test_propagate_resolves_ids_through_beam(
    py_node: Node, fake_beam: ErlNode, role: OrbitalServer
) -> None:
    items = [b"iss", b"ghost", b"notle", b"badtle", tle_term(ISS), b"iss"]
    reply = await call(py_node, fake_beam, (A("propagate"), items, [T0_MS]))
    assert reply[0] == OK
    iss, ghost, notle, badtle, copy, again = reply[1]
    assert iss[A("id")] == b"iss" and iss[A("norad_id")] == 25544 and iss[A("error")] == 0
    assert iss[A("positions")] == again[A("positions")]
    assert iss[A("positions")][0][A("lat_deg")] == copy[A("positions")][0][A("lat_deg")]
    assert ghost == {
        A("id"): b"ghost",
        A("error"): (A("unknown_satellite"), b"no satellite with this id"),
    }
    assert notle == {A("id"): b"notle", A("error"): (A("no_tle"), b"the satellite has no TLE")}
    assert badtle[A("id")] == b"badtle" and badtle[A("error")][0] == "bad_tle"
    assert b"line 1, column 69: checksum" in badtle[A("error")][1]


@pytest.mark.erlang
async def test_sgp4_failures_are_data(
    py_node: Node, fake_beam: ErlNode, role: OrbitalServer
) -> None:
    t0 = ms(DECAY.epoch_utc)
    reply = await call(
        py_node, fake_beam, (A("propagate"), [tle_term(DECAY)], [t0, t0 + 2 * DAY_MS])
    )
    (result,) = reply[1]
    assert result[A("error")] == 1
    ok, failed = result[A("positions")]
    assert ok[A("error")] == 0 and 150.0 < ok[A("alt_km")] < 250.0
    assert failed[A("error")] == 1 and failed[A("t")] == t0 + 2 * DAY_MS
    assert all(
        failed[A(k)] is None
        for k in ("lat_deg", "lon_deg", "alt_km", "r_teme_km", "v_teme_km_s", "in_sunlight")
    )


# -- passes ---------------------------------------------------------------------------------------


@pytest.mark.erlang
async def test_passes_match_find_passes(
    py_node: Node, fake_beam: ErlNode, role: OrbitalServer
) -> None:
    turin = {A("id"): b"turin", A("lat_deg"): 45, A("lon_deg"): 7.0, A("alt_m"): 300.0}
    stations = [default_stations()["wallops"], GroundStation("turin", "turin", 45.0, 7.0, 300.0)]
    start, end = T0_MS - 2 * HOUR_MS, T0_MS + DAY_MS
    for min_el in (None, 20.0):
        request = (A("passes"), [b"iss", tle_term(LEO[0])], [b"wallops", turin], start, end, min_el)
        reply = await call(py_node, fake_beam, request)
        assert reply[0] == OK
        expected = find_passes([ISS, LEO[0]], stations, utc(start), utc(end), min_el)
        assert len(reply[1]) == len(expected) > 5
        assert [p[A("aos")] for p in reply[1]] == sorted(p[A("aos")] for p in reply[1])
        for got, want in zip(reply[1], expected, strict=True):
            assert got[A("sat")] == [b"iss", b"LEO-1-1"][want.sat_index]
            assert got[A("station")] == want.station_id.encode()
            assert (got[A("aos")], got[A("tca")], got[A("los")]) == (
                ms(want.aos_utc),
                ms(want.tca_utc),
                ms(want.los_utc),
            )
            assert got[A("max_el_deg")] == pytest.approx(want.max_el_deg, abs=1e-9)
            assert (got[A("aos_cut")], got[A("los_cut")]) == (want.aos_cut, want.los_cut)
            mask_deg = (
                (5.0 if got[A("station")] == b"wallops" else 0.0) if min_el is None else min_el
            )
            assert got[A("max_el_deg")] >= mask_deg


@pytest.mark.erlang
async def test_passes_refusals(py_node: Node, fake_beam: ErlNode, role: OrbitalServer) -> None:
    replies = await call_src(
        py_node,
        fake_beam,
        """
        T = {<<"ISS">>, L1, L2},
        [Call({passes, [T], [<<"svalbard">>], T0, T0, undefined}),
         Call({passes, [T], [<<"svalbard">>], T0, T0 + 7 * 86400000 + 1, undefined}),
         Call({passes, [T], [<<"atlantis">>], T0, T0 + 1000, undefined}),
         Call({passes, [T], [<<"svalbard">>, #{id => <<"x">>, lat_deg => 91.0, lon_deg => 0.0}], T0, T0 + 1000, undefined}),
         Call({passes, [T], [svalbard], T0, T0 + 1000, undefined}),
         Call({passes, [<<"ghost">>], [<<"svalbard">>], T0, T0 + 1000, undefined}),
         Call({passes, [<<"notle">>], [<<"svalbard">>], T0, T0 + 1000, undefined}),
         Call({passes, [T], [<<"svalbard">>], T0, T0 + 1000, 90.0}),
         Call({passes, [T], [<<"svalbard">>], T0, T0 + 1000, <<"5">>}),
         Call({passes, [T], [<<"svalbard">>], 1.5, T0, undefined}),
         Call({passes, [T], <<"svalbard">>, T0, T0 + 1000, undefined}),
         Call({passes, T, [<<"svalbard">>], T0, T0 + 1000, undefined}),
         Call({passes, lists:duplicate(2000, T), [<<"svalbard">>, <<"kiruna">>], T0, T0 + 7 * 86400000, undefined}),
         Call({passes, [T], [<<"svalbard">>], T0, T0 + 1000})].
        """,
        L1=ISS_L1, L2=ISS_L2, T0=T0_MS,
    )  # fmt: skip
    assert replies == [
        (ERROR, A("bad_window")),
        (ERROR, (A("window_too_long"), 7 * DAY_MS)),
        (ERROR, (A("unknown_station"), b"atlantis")),
        (ERROR, (A("bad_station"), 2, A("lat_deg"))),
        (ERROR, (A("bad_station"), 1, A("station"))),
        (ERROR, (A("unknown_satellite"), b"ghost", b"no satellite with this id")),
        (ERROR, (A("no_tle"), b"notle", b"the satellite has no TLE")),
        (ERROR, (A("bad_request"), A("min_el_deg"))),
        (ERROR, (A("bad_request"), A("min_el_deg"))),
        (ERROR, (A("bad_request"), A("from"))),
        (ERROR, (A("bad_request"), A("stations"))),
        (ERROR, (A("bad_request"), A("sats"))),
        (ERROR, (A("too_large"), A("samples"), role_module.MAX_PASS_SAMPLES)),
        (ERROR, (A("bad_request"), A("request"))),
    ]


# -- visible --------------------------------------------------------------------------------------


@pytest.mark.erlang
async def test_visible_lists_satellites_above_the_mask(
    py_node: Node, fake_beam: ErlNode, role: OrbitalServer, caplog: pytest.LogCaptureFixture
) -> None:
    wallops = default_stations()["wallops"]
    iss_pass = find_passes([ISS], [wallops], T0, T0 + timedelta(days=1))[0]
    t_ms = ms(iss_pass.tca_utc)
    reply = await call(py_node, fake_beam, (A("visible"), b"wallops", t_ms))
    assert reply[0] == OK
    # Independently: look angles of every satellite with a usable TLE (badtle is skipped).
    sats = {b"iss": ISS} | {e.name.lower().encode(): e for e in LEO}
    states = propagate(list(sats.values()), [utc(t_ms)])
    r_ecef, v_ecef = teme_to_ecef(states.r_teme_km, states.v_teme_km_s, states.jd, states.fr)
    look = look_angles(wallops, r_ecef[:, 0], v_ecef[:, 0])
    expected = sorted(
        (
            (key, float(look.el_deg[i]))
            for i, key in enumerate(sats)
            if look.el_deg[i] >= wallops.min_el_deg
        ),
        key=lambda pair: -pair[1],
    )
    assert [(v[A("sat")], pytest.approx(v[A("el_deg")], abs=1e-9)) for v in reply[1]] == expected
    iss = reply[1][[v[A("sat")] for v in reply[1]].index(b"iss")]
    assert iss[A("el_deg")] == pytest.approx(iss_pass.max_el_deg, abs=1e-3)
    assert abs(iss[A("range_rate_km_s")]) < 0.05  # closest approach
    assert 0.0 <= iss[A("az_deg")] < 360.0 and 400.0 < iss[A("range_km")] < 2500.0
    assert "skipped 1 satellites with unusable TLEs" in caplog.text
    far = await call(
        py_node,
        fake_beam,
        (A("visible"), {A("id"): b"pole", A("lat_deg"): -90.0, A("lon_deg"): 0.0}, t_ms),
    )
    assert far == (OK, [])  # inclination 51.6° and 53°: never above the south pole's horizon


# -- stations -------------------------------------------------------------------------------------


@pytest.mark.erlang
async def test_put_stations_validates_then_replaces(
    py_node: Node, fake_beam: ErlNode, role: OrbitalServer
) -> None:
    listed = await call(py_node, fake_beam, A("stations"))
    assert listed[0] == OK
    assert [s[A("id")] for s in listed[1]] == sorted(
        s.station_id.encode() for s in DEFAULT_STATIONS
    )
    svalbard = next(s for s in listed[1] if s[A("id")] == b"svalbard")
    assert svalbard == {
        A("id"): b"svalbard", A("name"): b"Svalbard SvalSat", A("lat_deg"): 78.2297,
        A("lon_deg"): 15.4077, A("alt_m"): 500.0, A("min_el_deg"): 5.0,
    }  # fmt: skip
    replies = await call_src(
        py_node,
        fake_beam,
        """
        Good = #{id => <<"oslo">>, name => <<"Oslo">>, lat_deg => 59.91, lon_deg => 10.75, alt_m => 20, min_el_deg => 10.0},
        [Call({put_stations, [Good, maps:put(lat_deg, 91.0, Good)]}),
         Call({put_stations, [not_a_map]}),
         Call({put_stations, [maps:put(colour, red, Good)]}),
         Call({put_stations, [maps:remove(id, Good)]}),
         Call({put_stations, [maps:put(id, <<>>, Good)]}),
         Call({put_stations, [maps:put(id, <<"oslo">>, maps:put(name, oslo, Good))]}),
         Call({put_stations, [maps:put(lon_deg, <<"10">>, Good)]}),
         Call({put_stations, [maps:put(min_el_deg, 90.0, Good)]}),
         Call({put_stations, [maps:put(alt_m, 1.0e9, Good)]}),
         Call({put_stations, [maps:remove(lat_deg, Good)]}),
         Call({put_stations, [#{1 => 2}]}),
         Call({put_stations, Good}),
         Call(stations)].
        """,
    )
    *errors, after = replies
    assert errors == [
        (ERROR, (A("bad_station"), 2, A("lat_deg"))),
        (ERROR, (A("bad_station"), 1, A("station"))),
        (ERROR, (A("bad_station"), 1, A("colour"))),
        (ERROR, (A("bad_station"), 1, A("id"))),
        (ERROR, (A("bad_station"), 1, A("id"))),
        (ERROR, (A("bad_station"), 1, A("name"))),
        (ERROR, (A("bad_station"), 1, A("lon_deg"))),
        (ERROR, (A("bad_station"), 1, A("min_el_deg"))),
        (ERROR, (A("bad_station"), 1, A("alt_m"))),
        (ERROR, (A("bad_station"), 1, A("lat_deg"))),
        (ERROR, (A("bad_station"), 1, A("station"))),
        (ERROR, (A("bad_request"), A("stations"))),
    ]
    assert after == listed  # a refused put changes nothing, not even its valid items
    put = await call_src(
        py_node,
        fake_beam,
        """
        [Call({put_stations, [#{id => <<"oslo">>, lat_deg => 59.91, lon_deg => 10.75},
                              #{id => <<"svalbard">>, name => <<"SvalSat">>, lat_deg => 78.2297,
                                lon_deg => 15.4077, alt_m => 500.0, min_el_deg => 10.0}]}),
         Call(stations)].
        """,
    )
    assert put[0] == OK
    stations = {s[A("id")]: s for s in put[1][1]}
    assert stations[b"oslo"] == {
        A("id"): b"oslo", A("name"): b"oslo", A("lat_deg"): 59.91, A("lon_deg"): 10.75,
        A("alt_m"): 0.0, A("min_el_deg"): 0.0,
    }  # fmt: skip
    assert (
        stations[b"svalbard"][A("min_el_deg")] == 10.0
        and len(stations) == len(DEFAULT_STATIONS) + 1
    )
    passes = await call(
        py_node, fake_beam, (A("passes"), [b"iss"], [b"oslo"], T0_MS, T0_MS + DAY_MS, None)
    )
    expected = find_passes(
        [ISS], [GroundStation("oslo", "oslo", 59.91, 10.75)], T0, T0 + timedelta(days=1)
    )
    assert [p[A("aos")] for p in passes[1]] == [ms(p.aos_utc) for p in expected] and expected


# -- robustness -----------------------------------------------------------------------------------


@pytest.mark.erlang
async def test_bad_requests_get_errors_and_the_server_lives(
    py_node: Node, fake_beam: ErlNode, role: OrbitalServer
) -> None:
    replies = await call_src(
        py_node,
        fake_beam,
        """
        T = {<<"ISS">>, L1, L2},
        [Call(what),
         Call({warp, 9}),
         Call({}),
         Call(<<"propagate">>),
         Call({propagate, [T]}),
         Call({propagate, not_a_list, []}),
         Call({propagate, [42], []}),
         Call({propagate, [{<<"n">>, <<"l1">>}], []}),
         Call({propagate, [<<>>], []}),
         Call({propagate, [T], [1.5]}),
         Call({propagate, [T], [true]}),
         Call({propagate, [T], [1 bsl 70]}),
         Call({propagate, [T], not_a_list}),
         Call({propagate, lists:duplicate(10001, T), []}),
         Call({propagate, [T], lists:seq(1, 10001)}),
         Call({propagate, lists:duplicate(1000, T), lists:seq(1, 300)}),
         Call({propagate, [{<<"X">>, <<"1 junk">>, L2}], [0]}),
         Call({visible, 42, 0}),
         Call({visible, <<"svalbard">>, 1.5}),
         Call({visible, <<"atlantis">>, 0}),
         Call({put_stations, x}),
         Call({propagate, [], []})].
        """,
        L1=ISS_L1, L2=ISS_L2,
    )  # fmt: skip
    bad = [
        (ERROR, (A("bad_request"), A(f)))
        for f in ("request", "sats", "sats", "sats", "sats", "times", "times", "times", "times")
    ]
    assert replies[:4] == [(ERROR, A("unknown_call"))] * 4
    assert replies[4:13] == bad
    assert replies[13:16] == [
        (ERROR, (A("too_large"), A("sats"), role_module.MAX_SATS)),
        (ERROR, (A("too_large"), A("times"), role_module.MAX_TIMES)),
        (ERROR, (A("too_large"), A("points"), role_module.MAX_POINTS)),
    ]
    (junk,) = replies[16][1]
    assert (
        junk[A("id")] == b"X"
        and junk[A("error")][0] == "bad_tle"
        and b"line 1" in junk[A("error")][1]
    )
    assert replies[17:] == [
        (ERROR, (A("bad_request"), A("station"))),
        (ERROR, (A("bad_request"), A("time"))),
        (ERROR, (A("unknown_station"), b"atlantis")),
        (ERROR, (A("bad_request"), A("stations"))),
        (OK, []),
    ]
    assert role.process.alive


@pytest.mark.erlang
async def test_python_exceptions_become_internal_errors(
    py_node: Node,
    fake_beam: ErlNode,
    role: OrbitalServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(role_module, "propagate_results", boom)
    caplog.set_level(logging.ERROR, logger="stellarops.orbital")
    reply = await call(py_node, fake_beam, (A("propagate"), [tle_term(ISS)], [T0_MS]))
    assert reply == (ERROR, (A("internal"), b"RuntimeError: boom"))
    assert "orbital: request" in caplog.text and "RuntimeError: boom" in caplog.text
    assert (await call(py_node, fake_beam, A("stations")))[0] == OK and role.process.alive


@pytest.mark.erlang
async def test_beam_unavailable(py_node: Node, fake_beam: ErlNode) -> None:
    serve_orbital(py_node, beam_node=None)
    replies = await call_src(
        py_node,
        fake_beam,
        """[Call({propagate, [<<"iss">>], [0]}), Call({visible, <<"svalbard">>, 0}),
            Call({propagate, [{<<"ISS">>, L1, L2}], [0]})].""",
        L1=ISS_L1, L2=ISS_L2,
    )  # fmt: skip
    unset = (ERROR, (A("beam_unavailable"), b"STELLAROPS_BEAM_NODE is not set on this node"))
    assert replies[:2] == [unset, unset]
    assert replies[2][0] == OK and replies[2][1][0][A("error")] == 0  # TLE tuples need no BEAM


@pytest.mark.erlang
async def test_unreachable_beam_node(py_node: Node, fake_beam: ErlNode) -> None:
    serve_orbital(py_node, beam_node=unique_name("nobody"))
    reply = await call(py_node, fake_beam, (A("propagate"), [b"iss"], [0]))
    assert (
        reply[0] == ERROR and reply[1][0] == "beam_unavailable" and isinstance(reply[1][1], bytes)
    )


@pytest.mark.erlang
async def test_node_answers_while_computing(
    py_node: Node, fake_beam: ErlNode, role: OrbitalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The computation runs in a thread: the node's net_kernel answers a ping meanwhile.

    The computation is held until the ping has been answered (no race with the machine's speed);
    were it run on the node's event loop, the hold would stall the ping and this test would fail.
    """
    running, release = threading.Event(), threading.Event()
    real_passes_results = role_module.passes_results

    def held_passes_results(*args: Any) -> Any:
        running.set()
        if not release.wait(20):
            raise TimeoutError("the ping was not answered while computing")
        return real_passes_results(*args)

    monkeypatch.setattr(role_module, "passes_results", held_passes_results)
    request = (A("passes"), [tle_term(ISS)], [b"wallops"], T0_MS, T0_MS + DAY_MS, None)
    passes = asyncio.create_task(call(py_node, fake_beam, request))
    deadline = time.monotonic() + 60
    while not running.is_set():
        assert time.monotonic() < deadline and not passes.done(), "the computation never started"
        await asyncio.sleep(0.01)
    pong = await erl_eval(py_node, fake_beam, "net_adm:ping(PyNode).", timeout=60, PyNode=A(py_node.name))
    assert pong == "pong" and not passes.done()  # answered while the computation is held
    release.set()
    reply = await passes
    assert reply[0] == OK and len(reply[1]) > 0, reply


# -- the real cluster ------------------------------------------------------------------------------


def _library_visible(
    tles: dict[bytes, tuple[bytes, bytes]], station: GroundStation, t_ms: int
) -> list[tuple[bytes, float, float]]:
    """(sat, az_deg, el_deg) above the station's mask at t_ms, from the library, highest first."""
    keys = sorted(tles)
    elements = [Elements.from_tle(tles[k][0].decode(), tles[k][1].decode(), k.decode()) for k in keys]
    at = utc(t_ms)
    states = propagate(elements, [at])
    jd, fr = jd_fr_from_utc([at])
    r_ecef, v_ecef = teme_to_ecef(states.r_teme_km, states.v_teme_km_s, jd, fr)
    look = look_angles(station, r_ecef[:, 0, :], v_ecef[:, 0, :])
    above = [i for i in range(len(keys)) if look.el_deg[i] >= station.min_el_deg]
    return sorted(
        ((keys[i], float(look.az_deg[i]), float(look.el_deg[i])) for i in above), key=lambda v: -v[2]
    )


@pytest.mark.erlang
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_visible_through_the_real_cluster(tmp_path: Path) -> None:
    """``stellar:visible/2`` on a real ``stellarops up`` (the BEAM app, its real orbital node and
    the satellites' TLEs in BEAM) agrees with the library, for a station and time with satellites
    in view and for one with none."""
    stack = UpStack(tmp_path / "home", "stellar_visible", STELLAROPS_DEMO_SATELLITES="24").start()

    async def check() -> None:
        async with stack.ctl("visible") as ctl:
            tles = await stack.rpc(ctl, "stellar", "tles", [A("all")])
            assert len(tles) == 24
            nodes = await stack.rpc(ctl, "stellar", "nodes", [])
            (orbital_node,) = [n[A("name")] for n in nodes if n[A("role")] == "orbital"]
            ok, station_terms = await stack.rpc(
                ctl, "gen_server", "call", [(A("orbital"), orbital_node), A("stations")]
            )
            assert ok == "ok" and station_terms
            stations = [
                GroundStation(t[A("id")].decode(), t[A("name")].decode(), t[A("lat_deg")], t[A("lon_deg")],
                              t[A("alt_m")], t[A("min_el_deg")])
                for t in station_terms
            ]  # fmt: skip
            # The library picks a (station, minute) with satellites in view and one with none.
            now_ms = int(time.time()) * 1000
            cases: dict[bool, tuple[GroundStation, int]] = {}
            for k in range(0, 24 * 60, 7):
                for station in stations:
                    t_ms = now_ms + k * 60_000
                    cases.setdefault(bool(_library_visible(tles, station, t_ms)), (station, t_ms))
                if len(cases) == 2:
                    break
            assert set(cases) == {True, False}, "the demo constellation is never in view"
            for in_view, (station, t_ms) in cases.items():
                expected = _library_visible(tles, station, t_ms)
                reply = await stack.rpc(ctl, "stellar", "visible", [station.station_id.encode(), t_ms], timeout=60)
                assert reply[0] == OK, reply
                got = reply[1]
                assert [v[A("sat")] for v in got] == [e[0] for e in expected]
                assert bool(got) is in_view
                for v, (_, az_deg, el_deg) in zip(got, expected, strict=True):
                    assert v[A("az_deg")] == pytest.approx(az_deg, abs=1e-6)
                    assert v[A("el_deg")] == pytest.approx(el_deg, abs=1e-6)
                    assert v[A("el_deg")] >= station.min_el_deg and 400 < v[A("range_km")] < 4000
            # Refusals come back as data through the facade, and the node keeps serving.
            bad = await stack.rpc(ctl, "stellar", "visible", [b"atlantis", now_ms])
            assert bad == (ERROR, (A("unknown_station"), b"atlantis"))

    try:
        asyncio.run(check())
    finally:
        assert stack.stop() == 0


# -- configuration --------------------------------------------------------------------------------


def test_role_is_registered_and_reads_its_beam_node() -> None:
    assert ROLES["orbital"] is role_module.start
    assert Settings.from_env({}).node.beam_node is None
    assert Settings.from_env({"STELLAROPS_BEAM_NODE": " stellar@127.0.0.1 "}).node.beam_node == "stellar@127.0.0.1"
    with pytest.raises(ValueError, match="STELLAROPS_BEAM_NODE"):
        Settings.from_env({"STELLAROPS_BEAM_NODE": "stellar"})


def test_times_in_milliseconds_are_split_exactly() -> None:
    jd, fr = role_module.jd_fr_from_ms([0, -1, 86_400_000 * 20000 + 43_200_123])
    assert jd.tolist() == [2440587.5, 2440586.5, 2460587.5]
    assert fr.tolist() == [0.0, 86_399_999 / 86_400_000, 43_200_123 / 86_400_000]
    assert role_module.ms_from_utc(role_module.utc_from_ms(T0_MS + 7)) == T0_MS + 7


def test_default_stations_are_valid_and_distinct() -> None:
    ids = [s.station_id for s in DEFAULT_STATIONS]
    assert len(set(ids)) == len(ids) >= 7
    assert default_stations()["svalbard"].lat_deg == pytest.approx(78.2297)
    assert default_stations() is not default_stations()
