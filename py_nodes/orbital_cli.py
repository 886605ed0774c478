"""``stellarops propagate`` and ``stellarops passes``: the orbital library for people and scripts.

Both read a TLE file (2- or 3-line sets) and print an aligned table, or with ``--json`` one JSON
document on stdout (NaN never appears: SGP4 failures are ``null`` values and a non-zero ``error``).
Times are ISO 8601 with a zone (``Z`` or ``+01:00``); naive times are refused rather than guessed.
Output times are UTC with ``Z``. User mistakes (missing or malformed TLE file, bad time, bad
station, empty window) print one line on stderr saying what is wrong and exit with status 2.
A TLE whose epoch is more than ``TLE_MAX_AGE_DAYS`` from a requested time gets one warning on
stderr (per satellite, with the age in days); the output is still printed.
When the reader of stdout goes away (``stellarops passes ... | head``) the command stops quietly
with status 141 (128 + SIGPIPE, what a shell reports for ``cat`` in the same place).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np

from orbital import (
    Elements,
    ElementsError,
    GroundStation,
    Pass,
    find_passes,
    in_sunlight_jd,
    parse_tle,
    propagate,
    subsatellite_point,
)
from py_nodes.ground_stations import default_stations

__all__ = [
    "EXIT_BROKEN_PIPE",
    "TLE_MAX_AGE_DAYS",
    "UsageError",
    "add_orbital_commands",
    "attach_negative_values",
    "iso_z",
    "parse_time",
    "run",
    "tle_age_warnings",
]


# Exit status when stdout's reader has gone (128 + SIGPIPE), as for any Unix filter.
EXIT_BROKEN_PIPE: Final = 141

# SGP4's error for a LEO satellite grows by roughly 1-3 km a day away from its TLE's epoch
# (drag dominates); after two weeks it can be tens of km along the track, i.e. pass times off by
# several seconds or more, and operators refresh LEO TLEs daily. Beyond this, say so.
TLE_MAX_AGE_DAYS: Final = 14.0

# A value that argparse would take for an option: a negative number first (``-33.9,18.4,0``).
_NEGATIVE_VALUE: Final = re.compile(r"-\.?\d")
_VALUE_OPTIONS: Final = frozenset({"--station"})

_TIME_HELP = "ISO 8601 time with a zone, e.g. 2024-03-01T12:00:00Z or 2024-03-01T13:00+01:00"

_PROPAGATE_EPILOG = """\
--json prints a list with one object per satellite and time (satellites in file order, each at
every --at in order): {"name", "norad_id", "t" (UTC, ms), "lat_deg", "lon_deg", "alt_km" (WGS84
geodetic), "r_teme_km": [x, y, z], "v_teme_km_s": [vx, vy, vz], "in_sunlight", "error"}.
"error" is SGP4's code (0 = success); when it is not 0 the numbers and in_sunlight are null.
"""

_PASSES_EPILOG = """\
--station is LAT_DEG,LON_DEG,ALT_M (WGS84; elevation mask 0 deg unless --min-el) or the id of a
default station (mask 5 deg): {ids}. Repeat it for several stations.
--json prints a list of passes sorted by AOS: {{"satellite", "norad_id", "station", "aos", "tca",
"los" (UTC, 0.1 s), "max_el_deg", "aos_cut", "los_cut"}}; a cut pass was already in progress at
--from (aos is then --from) or still in progress at --to (los is then --to).
"""


class UsageError(Exception):
    """A mistake in the command line or its input files; the message says what to fix."""


def add_orbital_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``propagate`` and ``passes`` to the ``stellarops`` subcommands."""
    raw = argparse.RawDescriptionHelpFormatter
    prop = sub.add_parser(
        "propagate",
        help="positions of the satellites in a TLE file (SGP4)",
        epilog=_PROPAGATE_EPILOG,
        formatter_class=raw,
    )
    prop.add_argument("--tle-file", required=True, help="file of 2- or 3-line element sets")
    prop.add_argument(
        "--at", action="append", default=[], help=f"{_TIME_HELP}; repeatable; default now"
    )
    prop.add_argument("--json", action="store_true", help="print JSON instead of a table")

    ids = ", ".join(sorted(default_stations()))
    passes = sub.add_parser(
        "passes",
        help="passes of the satellites in a TLE file over ground stations",
        epilog=_PASSES_EPILOG.format(ids=ids),
        formatter_class=raw,
    )
    passes.add_argument("--tle-file", required=True, help="file of 2- or 3-line element sets")
    passes.add_argument(
        "--station", action="append", required=True, help="LAT_DEG,LON_DEG,ALT_M or a station id"
    )
    passes.add_argument("--from", dest="from_", required=True, help=_TIME_HELP)
    passes.add_argument("--to", required=True, help=_TIME_HELP)
    passes.add_argument(
        "--min-el", type=float, default=None, help="elevation mask in degrees for every station"
    )
    passes.add_argument("--json", action="store_true", help="print JSON instead of a table")
    passes.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes for a large search (default: every usable core; 1 = this process only)",
    )
    for parser in (prop, passes):
        parser.set_defaults(run=run)


def attach_negative_values(argv: Sequence[str]) -> list[str]:
    """``--station -33.9,18.4,0`` as ``--station=-33.9,18.4,0``, so that argparse takes the
    negative latitude for the option's value rather than for an unknown option."""
    out: list[str] = []
    pending = False
    for arg in argv:
        if pending and _NEGATIVE_VALUE.match(arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
        pending = arg in _VALUE_OPTIONS
    return out


def run(args: argparse.Namespace, settings: object = None) -> int:
    """Run ``propagate`` or ``passes`` (they need no settings); 0 on success, 2 (with a message on stderr) on user error,
    ``EXIT_BROKEN_PIPE`` (quietly) when stdout's reader has stopped reading."""
    try:
        if args.command == "propagate":
            _propagate(args)
        else:
            _passes(args)
        sys.stdout.flush()  # for short outputs, a closed pipe shows up only here
    except UsageError as exc:
        print(f"stellarops {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    return 0


def _discard_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered must not fail again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a real file (tests capturing output): nothing to do
        pass


# -- inputs ------------------------------------------------------------------------------------


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 time with a zone, as UTC; naive times are refused (their zone is a guess)."""
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option} {text!r} is not an ISO 8601 time ({_TIME_HELP})") from None
    if t.tzinfo is None or t.utcoffset() is None:
        raise UsageError(
            f"{option} {text!r} has no time zone: add Z for UTC or an offset such as +01:00"
        )
    return t.astimezone(UTC)


def read_elements(path: str) -> list[Elements]:
    """The element sets in a TLE file; errors name the file, line, column and problem."""
    try:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise UsageError(f"cannot read TLE file {path}: {exc.strerror}") from None
    try:
        elements = parse_tle(text)
    except ElementsError as exc:
        raise UsageError(f"{path}: {exc}") from None
    if not elements:
        raise UsageError(f"{path}: no TLE element sets found")
    return elements


def parse_station(text: str, known: dict[str, GroundStation]) -> GroundStation:
    """``LAT_DEG,LON_DEG,ALT_M`` (mask 0°) or the id of a default station."""
    spec = text.strip()
    if spec in known:
        return known[spec]
    parts = spec.split(",")
    try:
        lat_deg, lon_deg, alt_m = (float(p) for p in parts)
    except ValueError:
        raise UsageError(
            f"--station {text!r} is not LAT_DEG,LON_DEG,ALT_M (e.g. 78.23,15.41,500) "
            f"nor a station id ({', '.join(sorted(known))})"
        ) from None
    if not all(math.isfinite(v) for v in (lat_deg, lon_deg, alt_m)):
        raise UsageError(f"--station {text!r}: coordinates must be finite numbers")
    try:
        return GroundStation(spec, spec, lat_deg, lon_deg, alt_m)
    except ValueError as exc:
        raise UsageError(f"--station {text!r}: {exc}") from None


# -- propagate ---------------------------------------------------------------------------------


def tle_age_warnings(elements: Sequence[Elements], times_utc: Sequence[datetime]) -> list[str]:
    """One line per satellite whose TLE epoch is more than ``TLE_MAX_AGE_DAYS`` from the
    requested time farthest from it."""
    lines = []
    for sat in elements:
        age_days = max(((t - sat.epoch_utc) / timedelta(days=1) for t in times_utc), key=abs)
        if abs(age_days) > TLE_MAX_AGE_DAYS:
            side = "before" if age_days < 0 else "after"
            lines.append(
                f"warning: {sat.name or 'satellite'} (NORAD {sat.norad_id}): the requested time is "
                f"{abs(age_days):.1f} days {side} its TLE epoch {iso_z(sat.epoch_utc, 0)} "
                f"(more than {TLE_MAX_AGE_DAYS:g}): SGP4 positions that far from the epoch are "
                "unreliable; use a recent TLE"
            )
    return lines


def _warn_old_elements(
    command: str, elements: Sequence[Elements], times: Sequence[datetime]
) -> None:
    for line in tle_age_warnings(elements, times):
        print(f"stellarops {command}: {line}", file=sys.stderr)


def _propagate(args: argparse.Namespace) -> None:
    times = [parse_time(t, "--at") for t in args.at] or [datetime.now(UTC)]
    elements = read_elements(args.tle_file)
    _warn_old_elements("propagate", elements, times)
    rows = propagate_rows(elements, times)
    if args.json:
        _print_json(rows)
        return
    headers = ["NAME", "NORAD", "TIME (UTC)", "LAT_DEG", "LON_DEG", "ALT_KM", "SUNLIT", "ERROR"]
    table = [
        [
            row["name"],
            str(row["norad_id"]),
            row["t"],
            _fixed(row["lat_deg"], 4),
            _fixed(row["lon_deg"], 4),
            _fixed(row["alt_km"], 3),
            "-" if row["in_sunlight"] is None else ("yes" if row["in_sunlight"] else "no"),
            str(row["error"]),
        ]
        for row in rows
    ]
    _print_table(headers, table, right={1, 3, 4, 5, 7})


def propagate_rows(
    elements: Sequence[Elements], times_utc: Sequence[datetime]
) -> list[dict[str, Any]]:
    """One JSON-ready row per satellite × time (one vectorised SGP4 call for all of them)."""
    states = propagate(elements, times_utc)
    geo = subsatellite_point(states.r_teme_km, states.jd, states.fr)
    sunlit = in_sunlight_jd(states.r_teme_km, states.jd, states.fr)
    rows = []
    for i, sat in enumerate(elements):
        for j, t in enumerate(times_utc):
            error = int(states.error[i, j])
            ok = error == 0
            rows.append(
                {
                    "name": sat.name,
                    "norad_id": sat.norad_id,
                    "t": iso_z(t, 3),
                    "lat_deg": _number(geo.lat_deg[i, j]),
                    "lon_deg": _number(geo.lon_deg[i, j]),
                    "alt_km": _number(geo.alt_km[i, j]),
                    "r_teme_km": [_number(x) for x in states.r_teme_km[i, j]],
                    "v_teme_km_s": [_number(x) for x in states.v_teme_km_s[i, j]],
                    "in_sunlight": bool(sunlit[i, j]) if ok else None,
                    "error": error,
                }
            )
    return rows


# -- passes ------------------------------------------------------------------------------------


def _passes(args: argparse.Namespace) -> None:
    known = default_stations()
    stations = [parse_station(s, known) for s in args.station]
    start, end = parse_time(args.from_, "--from"), parse_time(args.to, "--to")
    if start >= end:
        raise UsageError(f"--from {iso_z(start, 1)} must be before --to {iso_z(end, 1)}")
    if args.min_el is not None and not -90.0 <= args.min_el < 90.0:
        raise UsageError(f"--min-el {args.min_el} is outside [-90, 90) degrees")
    workers = usable_cores() if args.workers is None else args.workers
    if workers < 1:
        raise UsageError(f"--workers {args.workers} must be at least 1")
    elements = read_elements(args.tle_file)
    _warn_old_elements("passes", elements, [start, end])
    found = find_passes(elements, stations, start, end, args.min_el, workers=workers)
    rows = [pass_row(p, elements) for p in found]
    if args.json:
        _print_json(rows)
        return
    headers = [
        "SATELLITE",
        "NORAD",
        "STATION",
        "AOS (UTC)",
        "TCA (UTC)",
        "LOS (UTC)",
        "MAX_EL",
        "CUT",
    ]
    table = [
        [
            row["satellite"],
            str(row["norad_id"]),
            row["station"],
            row["aos"],
            row["tca"],
            row["los"],
            f"{row['max_el_deg']:.1f}",
            ("aos " if row["aos_cut"] else "") + ("los" if row["los_cut"] else ""),
        ]
        for row in rows
    ]
    _print_table(headers, table, right={1, 6})


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def pass_row(found: Pass, elements: Sequence[Elements]) -> dict[str, Any]:
    sat = elements[found.sat_index]
    return {
        "satellite": sat.name or str(sat.norad_id),
        "norad_id": found.norad_id,
        "station": found.station_id,
        "aos": iso_z(found.aos_utc, 1),
        "tca": iso_z(found.tca_utc, 1),
        "los": iso_z(found.los_utc, 1),
        "max_el_deg": found.max_el_deg,
        "aos_cut": found.aos_cut,
        "los_cut": found.los_cut,
    }


# -- output ------------------------------------------------------------------------------------


def iso_z(t: datetime, decimals: int) -> str:
    """UTC ISO 8601 with ``decimals`` digits of seconds (0-6), rounded, and a trailing Z."""
    t = t.astimezone(UTC)
    quantum_us = 10 ** (6 - decimals)
    rounded = t.replace(microsecond=0) + timedelta(
        microseconds=round(t.microsecond / quantum_us) * quantum_us
    )
    fraction = f".{rounded.microsecond // quantum_us:0{decimals}d}" if decimals else ""
    return f"{rounded:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def _number(value: float | np.floating[Any]) -> float | None:
    x = float(value)
    return x if math.isfinite(x) else None


def _fixed(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


def _print_json(rows: list[dict[str, Any]]) -> None:
    print(json.dumps(rows, indent=2, allow_nan=False))


def _print_table(headers: list[str], rows: list[list[str]], right: set[int]) -> None:
    if not rows:
        print("(none)")
        return
    widths = [max(len(r[k]) for r in [headers, *rows]) for k in range(len(headers))]
    for row in [headers, *rows]:
        cells = [
            c.rjust(w) if k in right else c.ljust(w)
            for k, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
