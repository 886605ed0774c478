"""Orbital element sets: strict TLE parsing and export, OMM records, and the ``Elements`` type.

An ``Elements`` keeps the two TLE lines as its canonical form: they are what SGP4 was fitted to,
so they are what we propagate and what we export (byte-identical to the validated input). Element
sets built from numbers (OMM records, generated constellations) are formatted into TLE lines and
parsed back through the same validator, so every ``Elements`` holds lines that pass it.

Accuracy: formatting to TLE fields rounds to their printed precision (angles 1e-4°, eccentricity
1e-7, mean motion 1e-8 rev/day, B* and n̈ to 5 significant digits, epoch 1e-8 day ≈ 0.9 ms).

Errors (all data errors; a programmer's mistake raises TypeError/ValueError instead)::

    ValueError
     └── ElementsError   .line (1-based line, or record number for OMM), .column (1-based or
                         None), .problem
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sgp4.api import Satrec  # type: ignore[import-untyped]
from sgp4.omm import initialize as _omm_initialize  # type: ignore[import-untyped]

from .timescale import as_utc, utc_from_jd_fr

__all__ = [
    "Elements",
    "ElementsError",
    "make_elements",
    "parse_omm",
    "parse_tle",
    "tle_checksum",
]

TLE_LINE_LENGTH = 69
_ALPHA5_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # Alpha-5 skips I and O (they read as 1 and 0)
_MAX_NORAD_ID = 10000 * (10 + len(_ALPHA5_LETTERS)) - 1  # Z9999 = 339999

_DECIMAL = re.compile(r" *[+-]?(?:\d+\.?\d*|\.\d+)")
_INTEGER = re.compile(r" *\d+")
_IMPLIED = re.compile(r"[ +-]\d{5}[+-]\d")  # "-30915-6" means -0.30915e-6
_SATNUM = re.compile(r" *\d+|[A-HJ-NP-Z]\d{4}")

# sgp4 keeps the TLE's printed ṅ/2 (rev/day²) and n̈/6 (rev/day³) in rad/min² and rad/min³;
# these undo sgp4.omm's unit conversions.
_NDOT_TLE_PER_SGP4 = 1440.0**2 / (2.0 * math.pi)
_NDDOT_TLE_PER_SGP4 = 1440.0**3 / (2.0 * math.pi)


class ElementsError(ValueError):
    """An element set is malformed; says where (line, column) and what is wrong."""

    def __init__(self, problem: str, line: int, column: int | None = None, *, unit: str = "line"):
        self.problem = problem
        self.line = line
        self.column = column
        where = f"{unit} {line}" if column is None else f"{unit} {line}, column {column}"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class Elements:
    """One satellite's element set. Build it with ``parse_tle``, ``parse_omm`` or ``make_elements``
    (they validate); the lines are kept verbatim and the numbers are read from them on demand."""

    name: str
    norad_id: int
    line1: str
    line2: str
    epoch_utc: datetime

    @classmethod
    def from_tle(cls, line1: str, line2: str, name: str = "") -> Elements:
        """Validate one pair of TLE lines (errors number them 1 and 2)."""
        return _parse_pair(line1.rstrip(), line2.rstrip(), name.strip(), 1, 2)

    def satrec(self) -> Any:
        """A fresh ``sgp4.api.Satrec`` (WGS72, as SGP4's element sets are fitted to it).

        Fresh because a Satrec is mutable (it records the last error) and cheap to build.
        """
        return Satrec.twoline2rv(self.line1, self.line2)

    def to_tle(self) -> str:
        """The element set as TLE text: a name line (if named) and the two lines, newline-ended."""
        head = f"{self.name}\n" if self.name else ""
        return f"{head}{self.line1}\n{self.line2}\n"

    @property
    def inclination_deg(self) -> float:
        return float(self.line2[8:16])

    @property
    def raan_deg(self) -> float:
        return float(self.line2[17:25])

    @property
    def eccentricity(self) -> float:
        return float("0." + self.line2[26:33].strip())

    @property
    def arg_perigee_deg(self) -> float:
        return float(self.line2[34:42])

    @property
    def mean_anomaly_deg(self) -> float:
        return float(self.line2[43:51])

    @property
    def mean_motion_rev_day(self) -> float:
        """Kozai mean motion as printed in the TLE (SGP4 converts it to Brouwer's itself)."""
        return float(self.line2[52:63])

    @property
    def bstar_per_earth_radius(self) -> float:
        return _implied_decimal(self.line1[53:61])

    def fields(self) -> dict[str, Any]:
        """The numbers and labels in the lines, as keyword arguments for ``make_elements``."""
        return {
            "norad_id": self.norad_id,
            "epoch_utc": self.epoch_utc,
            "inclination_deg": self.inclination_deg,
            "raan_deg": self.raan_deg,
            "eccentricity": self.eccentricity,
            "arg_perigee_deg": self.arg_perigee_deg,
            "mean_anomaly_deg": self.mean_anomaly_deg,
            "mean_motion_rev_day": self.mean_motion_rev_day,
            "bstar_per_earth_radius": self.bstar_per_earth_radius,
            "mean_motion_dot": float(self.line1[33:43]),
            "mean_motion_ddot": _implied_decimal(self.line1[44:52]),
            "name": self.name,
            "classification": self.line1[7].strip() or "U",
            "intl_designator": self.line1[9:17].strip(),
            "element_set_no": int(self.line1[64:68].strip() or 0),
            "rev_number": int(self.line2[63:68].strip() or 0),
        }


def tle_checksum(line: str) -> int:
    """Checksum of TLE columns 1-68: the sum of the digits, each '-' counting 1, modulo 10."""
    total = 0
    for char in line[:68]:
        if char.isdigit():
            total += ord(char) - ord("0")
        elif char == "-":
            total += 1
    return total % 10


def parse_tle(text: str) -> list[Elements]:
    """Parse every element set in ``text``: 2-line sets, or 3-line sets with a name line first
    (a leading "0 " on the name, as in Space-Track 3LE files, is dropped). Blank lines may appear
    anywhere. Raises ``ElementsError`` naming the first bad line (numbered within ``text``)."""
    rows = [(number, raw.rstrip()) for number, raw in enumerate(text.splitlines(), start=1)]
    rows = [(number, row) for number, row in rows if row]
    found: list[Elements] = []
    i = 0
    while i < len(rows):
        number, row = rows[i]
        name = ""
        if not _starts_tle_line(row, "1"):
            if _starts_tle_line(row, "2"):
                raise ElementsError("TLE line 2 without a line 1 before it", number, 1)
            name = row[2:].strip() if row.startswith("0 ") else row.strip()
            i += 1
            if i == len(rows):
                raise ElementsError(
                    f"missing TLE line 1: the text ends after the name line {row!r}", number + 1
                )
            number, row = rows[i]
            if not _starts_tle_line(row, "1"):
                raise ElementsError(
                    f"expected TLE line 1 (starting '1 ') after the name line, found {row[:24]!r}",
                    number,
                    1,
                )
        number1, line1 = number, row
        i += 1
        if i == len(rows):
            raise ElementsError("missing TLE line 2: the text ends after line 1", number1 + 1)
        number2, line2 = rows[i]
        if not _starts_tle_line(line2, "2"):
            raise ElementsError(
                f"missing TLE line 2: expected a line starting '2 ' after line 1, found {line2[:24]!r}",
                number2,
                1,
            )
        i += 1
        found.append(_parse_pair(line1, line2, name, number1, number2))
    return found


def _starts_tle_line(row: str, digit: str) -> bool:
    return row[:1] == digit and row[1:2] in ("", " ")


# Field layouts: (name, first column, last column, pattern), columns 1-based inclusive.
_Field = tuple[str, int, int, re.Pattern[str]]
_LINE1_FIELDS: tuple[_Field, ...] = (
    ("satellite number", 3, 7, _SATNUM),
    ("classification", 8, 8, re.compile(r"[UCS ]")),
    ("international designator", 10, 17, re.compile(r"[0-9A-Z ]{8}")),
    ("epoch year", 19, 20, re.compile(r"\d\d")),
    ("epoch day", 21, 32, _DECIMAL),
    ("mean motion first derivative", 34, 43, _DECIMAL),
    ("mean motion second derivative", 45, 52, _IMPLIED),
    ("B* drag term", 54, 61, _IMPLIED),
    ("ephemeris type", 63, 63, re.compile(r"[0-9 ]")),
    ("element set number", 65, 68, re.compile(r" *\d*")),
)
_LINE2_FIELDS: tuple[_Field, ...] = (
    ("satellite number", 3, 7, _SATNUM),
    ("inclination", 9, 16, _DECIMAL),
    ("right ascension of the ascending node", 18, 25, _DECIMAL),
    ("eccentricity", 27, 33, _INTEGER),
    ("argument of perigee", 35, 42, _DECIMAL),
    ("mean anomaly", 44, 51, _DECIMAL),
    ("mean motion", 53, 63, _DECIMAL),
    ("revolution number", 64, 68, re.compile(r" *\d*")),
)
_LINE1_BLANKS = (2, 9, 18, 33, 44, 53, 62, 64)
_LINE2_BLANKS = (2, 8, 17, 26, 34, 43, 52)


def _check_line(line: str, digit: str, number: int) -> None:
    """Structure of one line: characters, length, line number, blanks, field syntax, checksum."""
    for column, char in enumerate(line, start=1):
        if not (" " <= char <= "~"):
            raise ElementsError(f"character {char!r} is not printable ASCII", number, column)
    if len(line) != TLE_LINE_LENGTH:
        if len(line) > TLE_LINE_LENGTH:
            problem = f"line is {len(line)} characters long; a TLE line has {TLE_LINE_LENGTH}"
            raise ElementsError(problem, number, TLE_LINE_LENGTH + 1)
        problem = f"line is only {len(line)} characters long; a TLE line has {TLE_LINE_LENGTH}"
        raise ElementsError(problem, number, len(line) + 1)
    if line[0] != digit:
        raise ElementsError(f"expected line number {digit!r}, found {line[0]!r}", number, 1)
    fields, blanks = (
        (_LINE1_FIELDS, _LINE1_BLANKS) if digit == "1" else (_LINE2_FIELDS, _LINE2_BLANKS)
    )
    for column in blanks:
        if line[column - 1] != " ":
            raise ElementsError(f"expected a blank, found {line[column - 1]!r}", number, column)
    for name, first, last, pattern in fields:
        text = line[first - 1 : last]
        if not pattern.fullmatch(text):
            raise ElementsError(f"{name} {text!r} is not valid", number, first)
    expected = tle_checksum(line)
    if line[68] != str(expected):
        raise ElementsError(
            f"checksum is {line[68]!r} but columns 1-68 sum to {expected} (mod 10)", number, 69
        )


def _parse_pair(line1: str, line2: str, name: str, number1: int, number2: int) -> Elements:
    _check_line(line1, "1", number1)
    _check_line(line2, "2", number2)
    norad_id = _decode_satnum(line1[2:7])
    if _decode_satnum(line2[2:7]) != norad_id:
        raise ElementsError(
            f"satellite number {line2[2:7].strip()!r} differs from {line1[2:7].strip()!r} on line 1",
            number2,
            3,
        )
    year = int(line1[18:20])
    year += 2000 if year < 57 else 1900
    day = float(line1[20:32])
    days_in_year = 366 if _is_leap(year) else 365
    if not 1.0 <= day < days_in_year + 1:
        raise ElementsError(
            f"epoch day {day} is outside 1 to {days_in_year + 1} (exclusive)", number1, 21
        )
    epoch_utc = datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=day - 1.0)
    ranges = (
        ("inclination", 9, 0.0, 180.0),
        ("right ascension of the ascending node", 18, 0.0, 360.0),
        ("argument of perigee", 35, 0.0, 360.0),
        ("mean anomaly", 44, 0.0, 360.0),
    )
    for what, column, low, high in ranges:
        value = float(line2[column - 1 : column + 7])
        if not low <= value <= high:
            raise ElementsError(
                f"{what} {value} is outside [{low}, {high}] degrees", number2, column
            )
    if float("0." + line2[26:33].strip()) >= 1.0:  # cannot happen for 7 digits; kept for clarity
        raise ElementsError("eccentricity must be below 1", number2, 27)
    if float(line2[52:63]) <= 0.0:
        raise ElementsError(f"mean motion {line2[52:63].strip()} must be positive", number2, 53)
    return Elements(name, norad_id, line1, line2, epoch_utc)


def _decode_satnum(text: str) -> int:
    text = text.strip()
    if text[0].isalpha():
        return (10 + _ALPHA5_LETTERS.index(text[0])) * 10000 + int(text[1:])
    return int(text)


def _encode_satnum(norad_id: int) -> str:
    if not 0 <= norad_id <= _MAX_NORAD_ID:
        raise ValueError(f"norad_id {norad_id} cannot be written in a TLE (0 to {_MAX_NORAD_ID})")
    if norad_id < 100000:
        return f"{norad_id:05d}"
    high, low = divmod(norad_id, 10000)
    return f"{_ALPHA5_LETTERS[high - 10]}{low:04d}"


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _implied_decimal(text: str) -> float:
    """' 12345-4' -> 0.12345e-4 (the TLE's implied leading decimal point)."""
    sign = -1.0 if text[0] == "-" else 1.0
    return sign * float("0." + text[1:6]) * 10.0 ** int(text[6:8])


def _format_implied(value: float, zero: str) -> str:
    if not math.isfinite(value):
        raise ValueError(f"{value} cannot be written in a TLE")
    if value == 0.0:
        return f" 00000{zero}"
    exponent = math.floor(math.log10(abs(value))) + 1
    mantissa = round(abs(value) / 10.0**exponent * 1e5)
    if mantissa >= 100000:  # rounding carried into a new digit
        mantissa //= 10
        exponent += 1
    if not -9 <= exponent <= 9:
        raise ValueError(f"{value} is outside the range a TLE field can hold")
    sign = "-" if value < 0 else " "
    return f"{sign}{mantissa:05d}{exponent:+d}"


def _format_angle(value_deg: float, what: str, *, wrap: bool) -> str:
    if not math.isfinite(value_deg):
        raise ValueError(f"{what} must be finite, got {value_deg}")
    if wrap:
        value_deg = value_deg % 360.0
        if round(value_deg, 4) >= 360.0:
            value_deg = 0.0
    return f"{value_deg:8.4f}"


def make_elements(
    *,
    norad_id: int,
    epoch_utc: datetime,
    inclination_deg: float,
    raan_deg: float,
    eccentricity: float,
    arg_perigee_deg: float,
    mean_anomaly_deg: float,
    mean_motion_rev_day: float,
    bstar_per_earth_radius: float = 0.0,
    mean_motion_dot: float = 0.0,
    mean_motion_ddot: float = 0.0,
    name: str = "",
    classification: str = "U",
    intl_designator: str = "",
    element_set_no: int = 999,
    rev_number: int = 0,
) -> Elements:
    """Format an element set as checksummed TLE lines and validate them.

    ``mean_motion_dot`` and ``mean_motion_ddot`` are the TLE's printed quantities (ṅ/2 in
    rev/day², n̈/6 in rev/day³). Angles RAAN, argument of perigee and mean anomaly are wrapped to
    [0, 360). Raises ValueError for values a TLE cannot hold.
    """
    epoch = as_utc(epoch_utc, "epoch_utc")
    if not 1957 <= epoch.year <= 2056:
        raise ValueError(f"epoch year {epoch.year} is outside the TLE's two-digit range 1957-2056")
    if not 0.0 <= inclination_deg <= 180.0:
        raise ValueError(f"inclination_deg {inclination_deg} is outside [0, 180]")
    if not 0.0 <= eccentricity < 1.0:
        raise ValueError(f"eccentricity {eccentricity} is outside [0, 1)")
    if not 0.0 < mean_motion_rev_day < 100.0:
        raise ValueError(f"mean_motion_rev_day {mean_motion_rev_day} is outside (0, 100)")
    if not abs(mean_motion_dot) < 1.0:
        raise ValueError(f"mean_motion_dot {mean_motion_dot} must be below 1 in magnitude")
    if classification not in ("U", "C", "S"):
        raise ValueError(f"classification {classification!r} is not 'U', 'C' or 'S'")
    if not re.fullmatch(r"[0-9A-Z ]{0,8}", intl_designator):
        raise ValueError(f"intl_designator {intl_designator!r} is not up to 8 of 0-9, A-Z")
    satnum = _encode_satnum(norad_id)
    day = (epoch - datetime(epoch.year, 1, 1, tzinfo=UTC)) / timedelta(days=1) + 1.0
    ecc_digits = round(eccentricity * 1e7)
    if ecc_digits >= 10**7:
        raise ValueError(f"eccentricity {eccentricity} rounds to 1")
    ndot = f"{mean_motion_dot:.8f}".replace("0.", ".", 1)
    line1 = (
        f"1 {satnum}{classification} {intl_designator:<8} {epoch.year % 100:02d}{day:012.8f} "
        f"{ndot:>10} {_format_implied(mean_motion_ddot, '-0')} "
        f"{_format_implied(bstar_per_earth_radius, '+0')} 0 {element_set_no % 10000:4d}"
    )
    line2 = (
        f"2 {satnum} {_format_angle(inclination_deg, 'inclination_deg', wrap=False)} "
        f"{_format_angle(raan_deg, 'raan_deg', wrap=True)} {ecc_digits:07d} "
        f"{_format_angle(arg_perigee_deg, 'arg_perigee_deg', wrap=True)} "
        f"{_format_angle(mean_anomaly_deg, 'mean_anomaly_deg', wrap=True)} "
        f"{mean_motion_rev_day:11.8f}{rev_number % 100000:5d}"
    )
    line1 += str(tle_checksum(line1))
    line2 += str(tle_checksum(line2))
    try:
        return Elements.from_tle(line1, line2, name)
    except ElementsError as exc:  # a value slipped past the checks above
        raise ValueError(f"these values do not make a valid TLE: {exc}") from exc


def parse_omm(records: Iterable[Mapping[str, Any]]) -> list[Elements]:
    """Element sets from OMM records: dicts from CelesTrak/Space-Track JSON or rows from
    ``sgp4.omm.parse_csv`` / ``parse_xml``, read by ``sgp4.omm`` itself. Values are rounded to TLE
    precision (see module docstring); ``ElementsError.line`` is the 1-based record number."""
    return [_elements_from_omm(record, index) for index, record in enumerate(records, start=1)]


def _elements_from_omm(record: Mapping[str, Any], index: int) -> Elements:
    def fail(problem: str) -> ElementsError:
        return ElementsError(problem, index, unit="OMM record")

    satrec = Satrec()
    try:
        _omm_initialize(satrec, record)
    except KeyError as exc:
        raise fail(f"missing field {exc.args[0]}") from None
    except (TypeError, ValueError, IndexError) as exc:
        raise fail(f"bad value: {exc}") from None
    ecc = float(satrec.ecco)
    if not 0.0 <= ecc < 1.0:
        raise fail(f"ECCENTRICITY {ecc} is outside [0, 1)")
    inc_deg = math.degrees(satrec.inclo)
    if not 0.0 <= inc_deg <= 180.0:
        raise fail(f"INCLINATION {inc_deg} is outside [0, 180] degrees")
    name = str(record.get("OBJECT_NAME") or "").strip()
    try:
        return make_elements(
            norad_id=int(satrec.satnum),
            epoch_utc=utc_from_jd_fr(satrec.jdsatepoch, satrec.jdsatepochF),
            inclination_deg=inc_deg,
            raan_deg=math.degrees(satrec.nodeo),
            eccentricity=ecc,
            arg_perigee_deg=math.degrees(satrec.argpo),
            mean_anomaly_deg=math.degrees(satrec.mo),
            mean_motion_rev_day=satrec.no_kozai * 1440.0 / (2.0 * math.pi),
            bstar_per_earth_radius=float(satrec.bstar),
            mean_motion_dot=satrec.ndot * _NDOT_TLE_PER_SGP4,
            mean_motion_ddot=satrec.nddot * _NDDOT_TLE_PER_SGP4,
            name=name,
            classification=str(satrec.classification).strip() or "U",
            intl_designator=str(satrec.intldesg).strip()[:8],
            element_set_no=int(satrec.elnum),
            rev_number=int(satrec.revnum),
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
