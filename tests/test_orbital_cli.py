"""``stellarops propagate`` and ``stellarops passes``: output against the orbital library, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orbital import (
    Elements,
    GroundStation,
    find_passes,
    in_sunlight,
    make_elements,
    propagate,
    subsatellite_point,
    walker_delta,
)
from py_nodes.cli import main
from py_nodes.ground_stations import default_stations
from py_nodes.orbital_cli import iso_z, parse_time

ISS_TLE = """\
ISS (ZARYA)
1 25544U 98067A   13330.58127943  .00000814  00000-0  21834-4 0  1064
2 25544  51.6484  23.7537 0001246  74.1647  18.7420 15.50540527859894
"""
T0 = datetime(2013, 11, 26, 14, 0, tzinfo=UTC)
LEO = walker_delta(2, 1, 0, 550.0, 97.6, T0 - timedelta(hours=6), name_prefix="SSO")
STELLAROPS = Path(sys.executable).parent / "stellarops"


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def tle_file(tmp_path: Path) -> Path:
    path = tmp_path / "sats.tle"
    path.write_text(ISS_TLE + "".join(e.to_tle() for e in LEO))
    return path


def elements() -> list[Elements]:
    return [Elements.from_tle(*ISS_TLE.splitlines()[1:], name="ISS (ZARYA)"), *LEO]


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, object]]:
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out)
    assert isinstance(result, list)
    return result


# -- propagate --------------------------------------------------------------------------------------


def test_propagate_json_matches_the_library(
    tle_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    times = [T0, T0 + timedelta(minutes=30, milliseconds=250)]
    rows = run_json(
        capsys, "propagate", "--tle-file", str(tle_file),
        "--at", "2013-11-26T14:00:00Z", "--at", "2013-11-26T15:30:00.250+01:00",
    )  # fmt: skip
    sats = elements()
    assert len(rows) == len(sats) * len(times)
    states = propagate(sats, times)
    geo = subsatellite_point(states.r_teme_km, states.jd, states.fr)
    sunlit = in_sunlight(states.r_teme_km, times)
    for k, row in enumerate(rows):
        i, j = divmod(k, len(times))  # satellites in file order, each at every time
        assert set(row) == {"name", "norad_id", "t", "lat_deg", "lon_deg", "alt_km", "r_teme_km",
                            "v_teme_km_s", "in_sunlight", "error"}  # fmt: skip
        assert (row["name"], row["norad_id"], row["error"]) == (sats[i].name, sats[i].norad_id, 0)
        assert row["t"] == ["2013-11-26T14:00:00.000Z", "2013-11-26T14:30:00.250Z"][j]
        assert row["lat_deg"] == pytest.approx(geo.lat_deg[i, j], abs=1e-9)
        assert row["lon_deg"] == pytest.approx(geo.lon_deg[i, j], abs=1e-9)
        assert row["alt_km"] == pytest.approx(geo.alt_km[i, j], abs=1e-9)
        assert row["r_teme_km"] == pytest.approx(states.r_teme_km[i, j].tolist(), abs=1e-9)
        assert row["v_teme_km_s"] == pytest.approx(states.v_teme_km_s[i, j].tolist(), abs=1e-12)
        assert row["in_sunlight"] is bool(sunlit[i, j])
    assert all(350.0 < row["alt_km"] < 450.0 for row in rows[:2])  # type: ignore[operator]
    assert all(500.0 < row["alt_km"] < 600.0 for row in rows[2:])  # type: ignore[operator]


def test_propagate_defaults_to_now(tle_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = datetime.now(UTC)
    rows = run_json(capsys, "propagate", "--tle-file", str(tle_file))
    assert len(rows) == 3
    assert all(
        before - timedelta(seconds=1) <= parse(str(r["t"])) <= datetime.now(UTC) for r in rows
    )


def test_propagate_table_is_aligned(tle_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["propagate", "--tle-file", str(tle_file), "--at", "2013-11-26T14:00Z"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "NORAD",
        "TIME",
        "(UTC)",
        "LAT_DEG",
        "LON_DEG",
        "ALT_KM",
        "SUNLIT",
        "ERROR",
    ]
    assert len(lines) == 4 and len({len(line) for line in lines}) == 1
    assert lines[1].startswith("ISS (ZARYA)  25544  2013-11-26T14:00:00.000Z")
    end = lines[0].index("ALT_KM") + len("ALT_KM")  # numbers are right-aligned under their header
    assert all(
        line[end - 4] == "." and line[end - 1].isdigit() and line[end] == " " for line in lines[1:]
    )


def test_sgp4_failures_are_null(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    decay = make_elements(
        norad_id=99999, epoch_utc=T0, inclination_deg=51.6, raan_deg=0.0, eccentricity=0.001,
        arg_perigee_deg=0.0, mean_anomaly_deg=0.0, mean_motion_rev_day=16.3,
        bstar_per_earth_radius=0.05, name="DECAY",
    )  # fmt: skip
    path = tmp_path / "decay.tle"
    path.write_text(decay.to_tle())
    rows = run_json(
        capsys,
        "propagate",
        "--tle-file",
        str(path),
        "--at",
        "2013-11-26T14:00Z",
        "--at",
        "2013-11-28T14:00Z",
    )
    assert rows[0]["error"] == 0 and rows[0]["lat_deg"] is not None
    assert rows[1]["error"] == 1
    assert [rows[1][k] for k in ("lat_deg", "lon_deg", "alt_km", "in_sunlight")] == [None] * 4
    assert rows[1]["r_teme_km"] == [None] * 3 and rows[1]["v_teme_km_s"] == [None] * 3


# -- passes ---------------------------------------------------------------------------------------


def test_passes_json_matches_find_passes(
    tle_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = run_json(
        capsys, "passes", "--tle-file", str(tle_file), "--station", "45.0,7.0,300",
        "--station", "wallops", "--from", "2013-11-26T12:00:00Z", "--to", "2013-11-27T12:00:00Z",
    )  # fmt: skip
    stations = [GroundStation("45.0,7.0,300", "x", 45.0, 7.0, 300.0), default_stations()["wallops"]]
    expected = find_passes(elements(), stations, T0 - timedelta(hours=2), T0 + timedelta(hours=22))
    assert len(rows) == len(expected) > 10
    for row, want in zip(rows, expected, strict=True):
        assert set(row) == {
            "satellite",
            "norad_id",
            "station",
            "aos",
            "tca",
            "los",
            "max_el_deg",
            "aos_cut",
            "los_cut",
        }
        assert (row["satellite"], row["norad_id"], row["station"]) == (
            want.sat_name,
            want.norad_id,
            want.station_id,
        )
        for key, exact in (("aos", want.aos_utc), ("tca", want.tca_utc), ("los", want.los_utc)):
            text = str(row[key])
            assert text.endswith("Z") and len(text.split(".")[1]) == 2  # 0.1 s and the Z
            assert abs((parse(text) - exact).total_seconds()) <= 0.05 + 1e-6
        assert row["max_el_deg"] == pytest.approx(want.max_el_deg, abs=1e-9)
        assert (row["aos_cut"], row["los_cut"]) == (want.aos_cut, want.los_cut)
    assert {r["station"] for r in rows} == {"45.0,7.0,300", "wallops"}


def test_passes_min_el_and_table(tle_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["passes", "--tle-file", str(tle_file), "--station", "45,7,300", "--from", "2013-11-26T14:00Z",
            "--to", "2013-11-27T15:00+01:00"]  # fmt: skip
    low = run_json(capsys, *argv)
    high = run_json(capsys, *argv, "--min-el", "30")
    assert len(low) > len(high) and all(float(str(r["max_el_deg"])) >= 30.0 for r in high)
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["SATELLITE", "NORAD", "STATION"] and len(lines) > 2
    assert (
        "Z" in lines[1] and len({len(line.rstrip()) for line in lines}) <= 3
    )  # the CUT column varies


# -- user errors ----------------------------------------------------------------------------------


def expect_usage_error(capsys: pytest.CaptureFixture[str], argv: list[str], *fragments: str) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in captured.err, captured.err
    return captured.err


def test_malformed_tle_file_names_file_line_and_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.tle"
    path.write_text(ISS_TLE.replace("0  1064", "0  1065"))
    expect_usage_error(
        capsys,
        ["propagate", "--tle-file", str(path)],
        f"{path}: line 2, column 69: checksum is '5'",
    )
    path.write_text("ISS\n" + ISS_TLE.splitlines()[1] + "\n\n")
    expect_usage_error(
        capsys, ["propagate", "--tle-file", str(path)], str(path), "line 3", "missing TLE line 2"
    )
    path.write_text("\n\n")
    expect_usage_error(capsys, ["passes", "--tle-file", str(path), "--station", "svalbard",
                                "--from", "2024-01-01T00:00Z", "--to", "2024-01-02T00:00Z"],
                       "no TLE element sets")  # fmt: skip
    expect_usage_error(
        capsys,
        ["propagate", "--tle-file", str(tmp_path / "none.tle")],
        "cannot read TLE file",
        "none.tle",
    )


@pytest.mark.parametrize(
    ("station", "fragment"),
    [
        ("1,2", "is not LAT_DEG,LON_DEG,ALT_M"),
        ("a,b,c", "is not LAT_DEG,LON_DEG,ALT_M"),
        ("atlantis", "svalbard"),
        ("95,0,0", "lat_deg 95.0 is outside [-90, 90]"),
        ("0,400,0", "lon_deg 400.0 is outside"),
        ("nan,0,0", "finite"),
    ],
)
def test_bad_station(
    tle_file: Path, capsys: pytest.CaptureFixture[str], station: str, fragment: str
) -> None:
    argv = ["passes", "--tle-file", str(tle_file), "--station", station, "--from", "2013-11-26T12:00Z",
            "--to", "2013-11-27T12:00Z"]  # fmt: skip
    expect_usage_error(capsys, argv, "--station", fragment)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--from", "2013-11-27T12:00Z", "--to", "2013-11-27T12:00Z"], "must be before --to"),
        (["--from", "2013-11-27T12:00Z", "--to", "2013-11-27T13:00+02:00"], "must be before --to"),
        (
            ["--from", "yesterday", "--to", "2013-11-27T12:00Z"],
            "--from 'yesterday' is not an ISO 8601 time",
        ),
        (["--from", "2013-11-26T12:00", "--to", "2013-11-27T12:00Z"], "has no time zone"),
        (
            ["--from", "2013-11-26T12:00Z", "--to", "2013-11-27T12:00Z", "--min-el", "95"],
            "--min-el 95.0 is outside",
        ),
        (
            ["--from", "2013-11-26T12:00Z", "--to", "2013-11-27T12:00Z", "--workers", "0"],
            "--workers 0 must be at least 1",
        ),
    ],
)
def test_bad_window(
    tle_file: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    expect_usage_error(
        capsys, ["passes", "--tle-file", str(tle_file), "--station", "svalbard", *extra], fragment
    )


@pytest.mark.parametrize(
    ("at", "fragment"), [("2013-13-01T00:00Z", "not an ISO 8601"), ("2013-11-26", "no time zone")]
)
def test_bad_at(tle_file: Path, capsys: pytest.CaptureFixture[str], at: str, fragment: str) -> None:
    expect_usage_error(
        capsys, ["propagate", "--tle-file", str(tle_file), "--at", at], f"--at {at!r}", fragment
    )


def test_time_helpers() -> None:
    assert parse_time("2024-03-01T13:00:00+01:00", "--at") == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert (
        iso_z(datetime(2024, 3, 1, 23, 59, 59, 960_000, tzinfo=UTC), 1) == "2024-03-02T00:00:00.0Z"
    )
    assert (
        iso_z(datetime(2024, 3, 1, 12, 0, 0, 123_456, tzinfo=UTC), 3) == "2024-03-01T12:00:00.123Z"
    )
    assert iso_z(datetime(2024, 3, 1, 12, 0, 0, 500_000, tzinfo=UTC), 0) == "2024-03-01T12:00:00Z"


# -- the installed command ------------------------------------------------------------------------


def test_installed_command(tle_file: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(STELLAROPS), "propagate", "--tle-file", str(tle_file), "--at", "2013-11-26T14:00:00Z", "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["norad_id"] for r in rows] == [25544, *(e.norad_id for e in LEO)]
    assert 350.0 < rows[0]["alt_km"] < 450.0
    bad = tmp_path / "bad.tle"
    bad.write_text(ISS_TLE.replace("2 25544  51.6484", "2 25544  51.6X84"))
    done = subprocess.run(
        [str(STELLAROPS), "propagate", "--tle-file", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert f"{bad}: line 3, column 9: inclination" in done.stderr
    help_text = subprocess.run(
        [str(STELLAROPS), "passes", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "LAT_DEG,LON_DEG,ALT_M" in help_text and "svalbard" in help_text


# -- pipes, negative coordinates, old TLEs (through the installed command) ------------------------


def many_tles(tmp_path: Path, count: int) -> Path:
    """``count`` fresh LEO element sets (epoch T0 - 6 h): enough output to fill a pipe."""
    path = tmp_path / "many.tle"
    sats = walker_delta(count, count, 1, 550.0, 53.0, T0 - timedelta(hours=6), name_prefix="W")
    path.write_text("".join(e.to_tle() for e in sats))
    return path


@pytest.mark.parametrize("output", ["json", "table"])
@pytest.mark.parametrize("when", ["while writing", "before writing"])
def test_a_closed_pipe_ends_quietly_with_141(tmp_path: Path, output: str, when: str) -> None:
    """``stellarops ... | head``: no traceback, status 141 (128 + SIGPIPE) as documented."""
    ats = [f"--at=2013-11-26T{h:02d}:{m:02d}:00Z" for h in range(12, 16) for m in range(0, 60, 10)]
    argv = [str(STELLAROPS), "propagate", "--tle-file", str(many_tles(tmp_path, 40)), *ats]
    proc = subprocess.Popen(
        argv + (["--json"] if output == "json" else []),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    if when == "while writing":  # ~1000 rows: far more than a pipe holds, so the writer blocks
        assert len(proc.stdout.read(100)) == 100
    proc.stdout.close()  # the reader goes away (head has read its lines)
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141, err
    assert err == "", err  # no traceback, no "Exception ignored", no warning (fresh TLEs)


def test_negative_station_coordinates_work_without_equals(tle_file: Path) -> None:
    def passes(*station: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(STELLAROPS), "passes", "--tle-file", str(tle_file), *station,
             "--from", "2013-11-26T12:00Z", "--to", "2013-11-27T12:00Z", "--json"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    spaced = passes("--station", "-33.9,18.4,0", "--station", "-77.8,-166.7,10")
    assert spaced.returncode == 0, spaced.stderr
    joined = passes("--station=-33.9,18.4,0", "--station=-77.8,-166.7,10")
    assert joined.returncode == 0, joined.stderr
    rows = json.loads(spaced.stdout)
    assert rows == json.loads(joined.stdout)
    assert {r["station"] for r in rows} == {"-33.9,18.4,0", "-77.8,-166.7,10"}
    # A malformed negative value gets our message, not argparse's "expected one argument".
    bad = passes("--station", "-33.9,18.4")
    assert (
        bad.returncode == 2 and "--station '-33.9,18.4' is not LAT_DEG,LON_DEG,ALT_M" in bad.stderr
    )
    assert "expected one argument" not in bad.stderr


def test_old_tles_warn_per_satellite_with_their_age(tle_file: Path) -> None:
    # The ISS set's epoch is 2013-11-26T13:57:02Z, the two SSO sets' 2013-11-26T08:00Z.
    later = subprocess.run(
        [str(STELLAROPS), "propagate", "--tle-file", str(tle_file), "--at", "2013-11-26T14:00Z",
         "--at", "2016-11-25T14:00Z", "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert later.returncode == 0 and len(json.loads(later.stdout)) == 6  # the output still comes
    lines = later.stderr.splitlines()
    assert len(lines) == 3, later.stderr  # one per satellite
    assert lines[0].startswith("stellarops propagate: warning: ISS (ZARYA) (NORAD 25544):")
    assert "1095.0 days after its TLE epoch 2013-11-26T13:57:03Z" in lines[0]
    assert all("days after its TLE epoch" in line and "SSO" in line for line in lines[1:])
    earlier = subprocess.run(
        [str(STELLAROPS), "passes", "--tle-file", str(tle_file), "--station", "svalbard",
         "--from", "2013-10-01T00:00Z", "--to", "2013-10-02T00:00Z"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert earlier.returncode == 0
    assert (
        len(earlier.stderr.splitlines()) == 3 and "56.6 days before its TLE epoch" in earlier.stderr
    )
    fresh = subprocess.run(
        [str(STELLAROPS), "passes", "--tle-file", str(tle_file), "--station", "svalbard",
         "--from", "2013-11-20T00:00Z", "--to", "2013-12-10T00:00Z"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert fresh.returncode == 0 and fresh.stderr == ""  # within 14 days of every epoch
