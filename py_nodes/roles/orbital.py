"""The ``orbital`` role: SGP4 positions, passes and visibility for the cluster, as plain terms.

Registers ``orbital``, a GenServer. Times are integer milliseconds since the Unix epoch (UTC);
satellites are ids (binaries, whose TLEs come from the BEAM node ``STELLAROPS_BEAM_NODE`` through
``stellar:tles/1``) or TLE tuples ``{Name, Line1, Line2}``; stations are ids of the registry
(the database's ``ground_stations``, the one source of station data, re-read on use at most every
``STATION_REFRESH_S``; the defaults of ``py_nodes.ground_stations`` on a node without a database;
``put_stations`` adds to them on this node) or inline maps. Calls::

    {propagate, Sats, TimesMs}                    -> {ok, [SatResult]}  (one per item, in order)
    {passes, Sats, Stations, FromMs, ToMs, MinEl} -> {ok, [Pass]}       (sorted by aos)
    {visible, Station, TimeMs}                    -> {ok, [Look]}       (highest first)
    {put_stations, [StationMap]}                  -> ok
    stations                                      -> {ok, [StationMap]} (sorted by id)

Refusals are ``{error, Reason}`` and change nothing: ``{bad_request, Field}``, ``unknown_call``,
``{too_large, What, Max}``, ``bad_window``, ``{window_too_long, MaxMs}``, ``{unknown_station,
Id}``, ``{bad_station, Index, Field}`` (1-based), ``{beam_unavailable, Message}``, for passes
``{unknown_satellite | no_tle | bad_tle, Id, Message}``, and ``{internal, Message}`` for a bug
(logged). The server never crashes on a request.

The work is CPU-bound, so it runs in a worker thread (``asyncio.to_thread``) while the node keeps
answering distribution ticks; calls are served one at a time, in arrival order. The bounds
(``MAX_*``) keep one call within a few seconds and a reply within a few tens of MB (a position is
~190 bytes of external term format).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from orbital import (
    Elements,
    ElementsError,
    GroundStation,
    find_passes,
    in_sunlight_jd,
    look_angles,
    propagate_jd,
    subsatellite_point,
    teme_to_ecef,
)
from orbital.timescale import jd_fr_from_ms, ms_from_utc, utc_from_ms
from py_nodes.db import Database, DbError, Stations
from py_nodes.erldist import Atom, Caller, ErldistError, GenServer, Node
from py_nodes.ground_stations import DEFAULT_STATIONS
from py_nodes.settings import Settings

__all__ = [
    "MAX_PASS_SAMPLES",
    "MAX_POINTS",
    "MAX_SATS",
    "MAX_TIMES",
    "MAX_WINDOW_MS",
    "OrbitalServer",
    "serve_orbital",
    "start",
]

log = logging.getLogger("stellarops.orbital")

MAX_SATS: Final = 10_000  # satellites in one propagate or passes call
MAX_TIMES: Final = 10_000  # times in one propagate call
MAX_POINTS: Final = 250_000  # satellites × times in one propagate call (~50 MB reply, ~1 s)
MAX_WINDOW_MS: Final = 7 * 86_400_000  # passes window
PASS_STEP_S: Final = 30.0  # orbital.find_passes' min_pass_s: no pass this long or longer is missed
# satellites × stations × window / 30 s: a bound on the work (~1.5 s at the limit; find_passes
# scans a coarser grid per orbit, 240 s in LEO, so counting 30 s steps stays conservative).
MAX_PASS_SAMPLES: Final = 20_000_000
MAX_STATIONS: Final = 1_000  # stations in one passes or put_stations call, and in the registry
MAX_VISIBLE_SATS: Final = 100_000  # satellites BEAM may return for visible
MIN_TIME_MS: Final = -2_208_988_800_000  # 1900-01-01
MAX_TIME_MS: Final = 4_102_444_800_000  # 2100-01-01
MAX_ID_BYTES: Final = 256
BEAM_RPC_TIMEOUT_S: Final = 5.0
STATION_REFRESH_S: Final = 2.0  # an edit over HTTP reaches the shell's passes/visible this fast

OK = Atom("ok")
ERROR = Atom("error")
ALL = Atom("all")
STATIONS = Atom("stations")

FloatArray = NDArray[np.float64]
StationSource = Callable[[], Awaitable[Iterable[GroundStation]]]
Term = Any
Failure = tuple[Atom, bytes]  # {unknown_satellite | no_tle | bad_tle, Message}


class Refused(Exception):
    """The call is answered ``{error, reason}`` without doing any work."""

    def __init__(self, reason: Term) -> None:
        super().__init__(reason)
        self.reason = reason


def bad_request(field: str) -> Refused:
    return Refused((Atom("bad_request"), Atom(field)))


# -- request fields ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SatRef:
    """One satellite item of a request: ``key`` is its id (or the TLE tuple's name)."""

    key: bytes
    tle: tuple[bytes, bytes] | None  # None: look the id up on the BEAM node


def parse_sats(term: Term, field: str) -> list[SatRef]:
    if type(term) is not list:
        raise bad_request(field)
    if len(term) > MAX_SATS:
        raise Refused((Atom("too_large"), Atom(field), MAX_SATS))
    refs = []
    for item in term:
        if type(item) is bytes and 0 < len(item) <= MAX_ID_BYTES:
            refs.append(SatRef(item, None))
        elif type(item) is tuple and len(item) == 3 and all(type(x) is bytes for x in item):
            refs.append(SatRef(item[0], (item[1], item[2])))
        else:
            raise bad_request(field)
    return refs


def parse_time_ms(term: Term, field: str) -> int:
    if type(term) is not int or not MIN_TIME_MS <= term < MAX_TIME_MS:
        raise bad_request(field)
    return term


def _number(term: Term) -> float | None:
    """A finite int or float as a float (not a bool), else None."""
    if type(term) is not int and type(term) is not float:
        return None
    try:
        value = float(term)
    except OverflowError:  # an integer beyond float range
        return None
    return value if math.isfinite(value) else None


_STATION_KEYS = frozenset(map(Atom, ("id", "name", "lat_deg", "lon_deg", "alt_m", "min_el_deg")))
# (field, low, high, high included, default; None = required)
_STATION_NUMBERS: tuple[tuple[str, float, float, bool, float | None], ...] = (
    ("lat_deg", -90.0, 90.0, True, None),
    ("lon_deg", -180.0, 360.0, True, None),
    ("alt_m", -1.0e4, 1.0e5, True, 0.0),  # from the Dead Sea's shore to the edge of space
    ("min_el_deg", -90.0, 90.0, False, 0.0),
)


def parse_station_map(term: Term, index: int) -> GroundStation:
    """A station map ``#{id, lat_deg, lon_deg}`` plus optional ``name``, ``alt_m``, ``min_el_deg``
    (numbers may be integers); raises ``{bad_station, Index, Field}``."""

    def bad(field: str) -> Refused:
        return Refused((Atom("bad_station"), index, Atom(field)))

    if type(term) is not dict:
        raise bad("station")
    for key in term:
        if key not in _STATION_KEYS:
            raise bad(key if type(key) is Atom else "station")
    station_id = _text(term.get(Atom("id")), 64)
    if not station_id:
        raise bad("id")
    name = _text(term.get(Atom("name"), term[Atom("id")]), MAX_ID_BYTES)
    if name is None:
        raise bad("name")
    numbers: dict[str, float] = {}
    for field, low, high, high_ok, default in _STATION_NUMBERS:
        raw = term.get(Atom(field))
        value = default if raw is None else _number(raw)
        if value is None or not (low <= value <= high if high_ok else low <= value < high):
            raise bad(field)
        numbers[field] = value
    return GroundStation(station_id, name, **numbers)


def _text(term: Term, max_bytes: int) -> str | None:
    """A UTF-8 binary of at most ``max_bytes`` as text, else None."""
    if type(term) is not bytes or len(term) > max_bytes:
        return None
    try:
        return term.decode()
    except UnicodeDecodeError:
        return None


def station_term(station: GroundStation) -> dict[Atom, Term]:
    return {
        Atom("id"): station.station_id.encode(),
        Atom("name"): station.name.encode(),
        Atom("lat_deg"): float(station.lat_deg),
        Atom("lon_deg"): float(station.lon_deg),
        Atom("alt_m"): float(station.alt_m),
        Atom("min_el_deg"): float(station.min_el_deg),
    }


def elements_from_tle(name: bytes, line1: Term, line2: Term) -> Elements | Failure:
    """Validate TLE lines (binaries) into ``Elements``, or ``{bad_tle, Message}``."""
    if type(line1) is not bytes or type(line2) is not bytes:
        return (Atom("bad_tle"), b"the TLE lines must be binaries")
    try:
        return Elements.from_tle(
            line1.decode(errors="replace"),
            line2.decode(errors="replace"),
            name.decode(errors="replace"),
        )
    except ElementsError as exc:
        return (Atom("bad_tle"), str(exc).encode())


_MISSING = object()


def resolve_items(refs: Sequence[SatRef], table: dict[Term, Term]) -> list[Elements | Failure]:
    """Element sets for request items: TLE tuples as given, ids from BEAM's ``table``."""
    resolved: list[Elements | Failure] = []
    for ref in refs:
        tle = ref.tle if ref.tle is not None else table.get(ref.key, _MISSING)
        if tle is _MISSING:
            resolved.append((Atom("unknown_satellite"), b"no satellite with this id"))
        elif tle is None:
            resolved.append((Atom("no_tle"), b"the satellite has no TLE"))
        elif not _is_pair(tle):
            resolved.append(
                (Atom("bad_tle"), b"the BEAM node holds a TLE that is not {Line1, Line2}")
            )
        else:
            resolved.append(elements_from_tle(ref.key, *tle))
    return resolved


def _is_pair(term: Term) -> bool:
    return type(term) is tuple and len(term) == 2


# -- times -------------------------------------------------------------------------------------


# -- computations (pure; run in a worker thread) -----------------------------------------------

# The error code for a non-finite state that SGP4 did not flag (never seen; data, not a crash).
_NAN_ERROR = 255
_POSITION_NAMES = ("t", "lat_deg", "lon_deg", "alt_km", "r_teme_km", "v_teme_km_s", "in_sunlight")
_POSITION_KEYS = tuple(map(Atom, (*_POSITION_NAMES, "error")))


def propagate_results(
    keys: Sequence[bytes], resolved: Sequence[Elements | Failure], times_ms: Sequence[int]
) -> list[dict[Atom, Term]]:
    """One result map per item: positions for element sets (one vectorised SGP4 call for every
    satellite × time), ``#{id, error => {Kind, Message}}`` for the others."""
    good = [item for item in resolved if isinstance(item, Elements)]
    positions: list[list[dict[Atom, Term]]] = [[] for _ in good]
    if good and times_ms:
        jd, fr = jd_fr_from_ms(times_ms)
        states = propagate_jd(good, jd, fr)
        geo = subsatellite_point(states.r_teme_km, jd, fr)
        sunlit = in_sunlight_jd(states.r_teme_km, jd, fr).tolist()
        lat, lon, alt = geo.lat_deg.tolist(), geo.lon_deg.tolist(), geo.alt_km.tolist()
        r, v, errors = states.r_teme_km.tolist(), states.v_teme_km_s.tolist(), states.error.tolist()
        keys_ = _POSITION_KEYS
        for i in range(len(good)):
            rows = positions[i]
            for j, t in enumerate(times_ms):
                error = errors[i][j]
                if error == 0 and math.isfinite(alt[i][j]):
                    values = (t, lat[i][j], lon[i][j], alt[i][j], r[i][j], v[i][j], sunlit[i][j], 0)
                else:
                    values = (t, None, None, None, None, None, None, error or _NAN_ERROR)
                rows.append(dict(zip(keys_, values, strict=True)))
    results: list[dict[Atom, Term]] = []
    k = 0
    for key, item in zip(keys, resolved, strict=True):
        if isinstance(item, Elements):
            rows = positions[k]
            k += 1
            first_error = next((row[ERROR] for row in rows if row[ERROR] != 0), 0)
            results.append(
                {
                    Atom("id"): key,
                    Atom("norad_id"): item.norad_id,
                    ERROR: first_error,
                    Atom("positions"): rows,
                }
            )
        else:
            results.append({Atom("id"): key, ERROR: item})
    return results


def passes_results(
    keys: Sequence[bytes],
    elements: Sequence[Elements],
    stations: Sequence[GroundStation],
    from_ms: int,
    to_ms: int,
    min_el_deg: float | None,
) -> list[dict[Atom, Term]]:
    found = find_passes(
        elements,
        stations,
        utc_from_ms(from_ms),
        utc_from_ms(to_ms),
        min_el_deg,
        min_pass_s=PASS_STEP_S,
    )
    return [
        {
            Atom("sat"): keys[p.sat_index],
            Atom("station"): p.station_id.encode(),
            Atom("aos"): ms_from_utc(p.aos_utc),
            Atom("tca"): ms_from_utc(p.tca_utc),
            Atom("los"): ms_from_utc(p.los_utc),
            Atom("max_el_deg"): p.max_el_deg,
            Atom("aos_cut"): p.aos_cut,
            Atom("los_cut"): p.los_cut,
        }
        for p in found
    ]


def visible_results(
    table: dict[Term, Term], station: GroundStation, time_ms: int
) -> list[dict[Atom, Term]]:
    """Satellites of BEAM's ``table`` at or above the station's mask at ``time_ms``, highest
    first; satellites whose TLE does not parse are left out (and logged)."""
    keys: list[bytes] = []
    elements: list[Elements] = []
    for key, tle in table.items():
        item = elements_from_tle(key, *tle) if type(key) is bytes and _is_pair(tle) else None
        if isinstance(item, Elements):
            keys.append(key)
            elements.append(item)
    if len(elements) < len(table):
        skipped = len(table) - len(elements)
        log.warning("orbital: visible skipped %d satellites with unusable TLEs", skipped)
    if not elements:
        return []
    jd, fr = jd_fr_from_ms([time_ms])
    states = propagate_jd(elements, jd, fr)
    r_ecef, v_ecef = teme_to_ecef(states.r_teme_km, states.v_teme_km_s, jd, fr)
    look = look_angles(station, r_ecef[:, 0, :], v_ecef[:, 0, :])
    above = np.flatnonzero(look.el_deg >= station.min_el_deg)  # NaN (SGP4 failure) is False
    order = above[np.argsort(-look.el_deg[above], kind="stable")]
    return [
        {
            Atom("sat"): keys[i],
            Atom("az_deg"): float(look.az_deg[i]),
            Atom("el_deg"): float(look.el_deg[i]),
            Atom("range_km"): float(look.range_km[i]),
            Atom("range_rate_km_s"): float(look.range_rate_km_s[i]),
        }
        for i in order.tolist()
    ]


# -- the server --------------------------------------------------------------------------------


class OrbitalServer(GenServer):
    """The ``orbital`` server: validates, resolves TLEs through BEAM, computes in a thread."""

    def __init__(
        self,
        *,
        beam_node: str | None,
        stations: Iterable[GroundStation] = DEFAULT_STATIONS,
        rpc_timeout_s: float = BEAM_RPC_TIMEOUT_S,
        station_source: StationSource | None = None,
    ) -> None:
        self.beam_node = beam_node
        self.rpc_timeout_s = rpc_timeout_s
        self.stations = {s.station_id: s for s in stations}
        self._source = station_source  # None: ``stations`` as given (and put)
        self._put: dict[str, GroundStation] = {}
        self._read_at = -math.inf
        self._source_failing = False
        self._calls: dict[Atom, tuple[int, Callable[..., Awaitable[Term]]]] = {
            Atom("propagate"): (3, self._propagate),
            Atom("passes"): (6, self._passes),
            Atom("visible"): (3, self._visible),
            Atom("put_stations"): (2, self._put_stations),
        }

    async def handle_call(self, request: Term, caller: Caller) -> Term:
        try:
            return await self._dispatch(request)
        except Refused as exc:
            return (ERROR, exc.reason)
        except Exception as exc:  # a bug: answer and log it, never crash the server
            log.exception("orbital: request %.200r failed", request)
            return (ERROR, (Atom("internal"), f"{type(exc).__name__}: {exc}".encode()))

    async def _refresh_stations(self) -> None:
        """The source's stations (plus this node's put ones), if read more than STATION_REFRESH_S
        ago; on failure the last ones stay (logged once per outage)."""
        now = asyncio.get_running_loop().time()
        if self._source is None or now - self._read_at < STATION_REFRESH_S:
            return
        self._read_at = now
        try:
            found = {s.station_id: s for s in await self._source()}
        except (DbError, OSError) as exc:
            if not self._source_failing:
                log.warning("orbital: cannot read the ground stations (keeping the %d known): %s", len(self.stations), exc)
            self._source_failing = True
            return
        self._source_failing = False
        self.stations = found | self._put

    async def _dispatch(self, request: Term) -> Term:
        await self._refresh_stations()
        if type(request) is Atom and request == STATIONS:
            return (OK, [station_term(self.stations[k]) for k in sorted(self.stations)])
        is_call = type(request) is tuple and request and type(request[0]) is Atom
        call = self._calls.get(request[0]) if is_call else None
        if call is None:
            log.warning("orbital: unknown call %.200r", request)
            return (ERROR, Atom("unknown_call"))
        arity, handler = call
        if len(request) != arity:
            raise bad_request("request")
        return await handler(*request[1:])

    # -- calls -------------------------------------------------------------------------------

    async def _propagate(self, sats: Term, times: Term) -> Term:
        refs = parse_sats(sats, "sats")
        if type(times) is not list:
            raise bad_request("times")
        if len(times) > MAX_TIMES:
            raise Refused((Atom("too_large"), Atom("times"), MAX_TIMES))
        times_ms = [parse_time_ms(t, "times") for t in times]
        if len(refs) * len(times_ms) > MAX_POINTS:
            raise Refused((Atom("too_large"), Atom("points"), MAX_POINTS))
        resolved = await self._resolve(refs)
        results = await asyncio.to_thread(
            propagate_results, [r.key for r in refs], resolved, times_ms
        )
        return (OK, results)

    async def _passes(
        self, sats: Term, stations: Term, from_: Term, to: Term, min_el: Term
    ) -> Term:
        refs = parse_sats(sats, "sats")
        if type(stations) is not list:
            raise bad_request("stations")
        if len(stations) > MAX_STATIONS:
            raise Refused((Atom("too_large"), Atom("stations"), MAX_STATIONS))
        from_ms, to_ms = parse_time_ms(from_, "from"), parse_time_ms(to, "to")
        min_el_deg = None if min_el is None else _number(min_el)
        if min_el is not None and (min_el_deg is None or not -90.0 <= min_el_deg < 90.0):
            raise bad_request("min_el_deg")
        if from_ms >= to_ms:
            raise Refused(Atom("bad_window"))
        if to_ms - from_ms > MAX_WINDOW_MS:
            raise Refused((Atom("window_too_long"), MAX_WINDOW_MS))
        samples = len(refs) * len(stations) * math.ceil((to_ms - from_ms) / 1000.0 / PASS_STEP_S)
        if samples > MAX_PASS_SAMPLES:
            raise Refused((Atom("too_large"), Atom("samples"), MAX_PASS_SAMPLES))
        sites = [self._station(item, index) for index, item in enumerate(stations, start=1)]
        elements: list[Elements] = []
        for ref, item in zip(refs, await self._resolve(refs), strict=True):
            if not isinstance(item, Elements):
                raise Refused((item[0], ref.key, item[1]))
            elements.append(item)
        keys = [r.key for r in refs]
        results = await asyncio.to_thread(
            passes_results, keys, elements, sites, from_ms, to_ms, min_el_deg
        )
        return (OK, results)

    async def _visible(self, station: Term, time: Term) -> Term:
        if type(station) is not bytes and type(station) is not dict:
            raise bad_request("station")
        site = self._station(station, 1)
        time_ms = parse_time_ms(time, "time")
        table = {k: v for k, v in (await self._beam_tles(ALL)).items() if v is not None}
        if len(table) > MAX_VISIBLE_SATS:
            raise Refused((Atom("too_large"), Atom("sats"), MAX_VISIBLE_SATS))
        results = await asyncio.to_thread(visible_results, table, site, time_ms)
        return (OK, results)

    async def _put_stations(self, items: Term) -> Term:
        if type(items) is not list:
            raise bad_request("stations")
        if len(items) > MAX_STATIONS:
            raise Refused((Atom("too_large"), Atom("stations"), MAX_STATIONS))
        parsed = [parse_station_map(item, index) for index, item in enumerate(items, start=1)]
        merged = self.stations | {s.station_id: s for s in parsed}
        if len(merged) > MAX_STATIONS:
            raise Refused((Atom("too_large"), Atom("stations"), MAX_STATIONS))
        self.stations = merged
        self._put |= {s.station_id: s for s in parsed}
        log.info("orbital: %d stations put, %d known", len(parsed), len(merged))
        return OK

    # -- helpers -------------------------------------------------------------------------------

    def _station(self, item: Term, index: int) -> GroundStation:
        if type(item) is dict:
            return parse_station_map(item, index)
        if type(item) is not bytes:
            raise Refused((Atom("bad_station"), index, Atom("station")))
        station = self.stations.get(item.decode(errors="replace"))
        if station is None:
            raise Refused((Atom("unknown_station"), item))
        return station

    async def _resolve(self, refs: Sequence[SatRef]) -> list[Elements | Failure]:
        """Element sets for request items: ids through one BEAM rpc, then (in the worker thread,
        ~20 µs each) every TLE validated."""
        ids = list(dict.fromkeys(r.key for r in refs if r.tle is None))
        table = await self._beam_tles(ids) if ids else {}
        return await asyncio.to_thread(resolve_items, refs, table)

    async def _beam_tles(self, which: list[bytes] | Atom) -> dict[Term, Term]:
        """``stellar:tles(Which)`` on the BEAM node: ``#{Id => {Line1, Line2} | undefined}``."""
        if self.beam_node is None:
            raise Refused(
                (Atom("beam_unavailable"), b"STELLAROPS_BEAM_NODE is not set on this node")
            )
        try:
            table = await self.process.node.rpc(
                self.beam_node, "stellar", "tles", [which], timeout=self.rpc_timeout_s
            )
        except (ErldistError, ValueError) as exc:  # ValueError: the BEAM node is this node
            log.warning("orbital: stellar:tles/1 on %s failed: %s", self.beam_node, exc)
            raise Refused((Atom("beam_unavailable"), str(exc).encode())) from None
        if type(table) is not dict:
            raise Refused(
                (Atom("beam_unavailable"), f"stellar:tles/1 returned {table!r:.200}".encode())
            )
        return table


def serve_orbital(
    node: Node,
    *,
    beam_node: str | None,
    stations: Iterable[GroundStation] = DEFAULT_STATIONS,
    station_source: StationSource | None = None,
) -> OrbitalServer:
    """Start the ``orbital`` server on ``node``."""
    server = OrbitalServer(beam_node=beam_node, stations=stations, station_source=station_source)
    node.start_server(server, name="orbital")
    return server


def database_stations(db: Database) -> StationSource:
    """Every station of the database (taken down or not: look angles still mean something),
    connecting on first use."""

    async def read() -> list[GroundStation]:
        await db.connect()
        return [s.to_orbital() for s in await Stations(db).list_all()]

    return read


def start(node: Node, settings: Settings) -> Callable[[], Awaitable[None]]:
    """The role's entry point for ``stellarops node --role orbital``; returns what to await on a
    clean stop. With ``DATABASE_URL`` (``up`` sets it) station ids are the database's."""
    url = settings.database.url
    db = Database(url, min_size=0, max_size=1, timeout_s=BEAM_RPC_TIMEOUT_S, name="orbital") if url else None
    serve_orbital(node, beam_node=settings.node.beam_node, station_source=database_stations(db) if db else None)

    async def close() -> None:
        if db is not None:
            await db.close()

    return close
