"""One table of ground stations: the seed, ``stellarops passes --station ID`` and the orbital role
all use ``py_nodes.ground_stations`` (issue 12 item 10; the seeded database is checked in
test_db_seed.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from orbital import walker_delta
from py_nodes.db.seed import GROUND_STATIONS
from py_nodes.ground_stations import DEFAULT_STATIONS, default_stations
from py_nodes.roles.orbital import OrbitalServer

STELLAROPS = Path(sys.executable).parent / "stellarops"
T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)


def as_rows() -> list[tuple[str, str, float, float, float, float]]:
    return [
        (s.station_id, s.name, s.lat_deg, s.lon_deg, s.alt_m, s.min_el_deg)
        for s in DEFAULT_STATIONS
    ]


def test_the_seed_is_the_table() -> None:
    seeded = [(s.id, s.name, s.lat_deg, s.lon_deg, s.alt_m, s.min_el_deg) for s in GROUND_STATIONS]
    assert seeded == as_rows()
    assert len(seeded) == 7 and all(spec.checked() == spec for spec in GROUND_STATIONS)


def test_the_orbital_role_starts_from_the_table() -> None:
    assert OrbitalServer(beam_node=None).stations == default_stations()


def test_the_cli_uses_the_table(tmp_path: Path) -> None:
    """``--station ID`` gives the same passes as the table's coordinates and mask written inline."""
    tle = tmp_path / "sats.tle"
    tle.write_text(
        "".join(e.to_tle() for e in walker_delta(6, 3, 1, 550.0, 97.6, T0, name_prefix="P"))
    )
    window = ["--from", T0.isoformat(), "--to", "2024-03-02T12:00:00+00:00", "--json"]
    ids = [s.station_id for s in DEFAULT_STATIONS]
    by_id = subprocess.run(
        [str(STELLAROPS), "passes", "--tle-file", str(tle), *(f"--station={i}" for i in ids), *window],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert by_id.returncode == 0, by_id.stderr
    masks = {s.min_el_deg for s in DEFAULT_STATIONS}
    assert len(masks) == 1  # one --min-el for all the inline ones
    inline = {f"{s.lat_deg},{s.lon_deg},{s.alt_m}": s.station_id for s in DEFAULT_STATIONS}
    done = subprocess.run(
        [str(STELLAROPS), "passes", "--tle-file", str(tle), *(f"--station={c}" for c in inline),
         "--min-el", str(masks.pop()), *window],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = [{**p, "station": inline[p["station"]]} for p in json.loads(done.stdout)]
    got = json.loads(by_id.stdout)
    assert got == expected
    assert {p["station"] for p in got} == set(ids)  # every station has passes in the window
    help_text = subprocess.run(
        [str(STELLAROPS), "passes", "--help"], capture_output=True, text=True, timeout=60
    )
    assert ", ".join(sorted(ids)) in " ".join(help_text.stdout.split())
