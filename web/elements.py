"""Element sets an operator gives (a TLE pasted or uploaded, or an OMM), as the two TLE lines a
satellite flies. Every problem is a 422 naming the field and saying where: a TLE's line and
column (``line 2, column 69: checksum is '7' but columns 1-68 sum to 6 (mod 10)``), an OMM's key.

OMM: CCSDS Orbit Mean-Elements Messages with SGP4 mean elements, as CelesTrak and Space-Track
publish them, in JSON (one record, or a list of one) or KVN (``KEY = value`` lines, units in
brackets ignored). They are converted by ``orbital.parse_omm`` into TLE lines, rounded to the
TLE's printed precision (angles 1e-4°, eccentricity 1e-7): the satellite state, the database and
the orbital node all carry a TLE.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from orbital import Elements, ElementsError, parse_omm, parse_tle

from .errors import ValidationFailed

__all__ = ["MAX_TEXT_CHARS", "OMM_REQUIRED", "ParsedElements", "from_omm", "from_text", "from_tle_pair"]

MAX_TEXT_CHARS: Final = 20_000
OMM_REQUIRED: Final = (
    "NORAD_CAT_ID", "EPOCH", "MEAN_MOTION", "ECCENTRICITY", "INCLINATION", "RA_OF_ASC_NODE",
    "ARG_OF_PERICENTER", "MEAN_ANOMALY", "BSTAR",
)  # fmt: skip
_OMM_NUMBERS: Final = (*OMM_REQUIRED[2:], "MEAN_MOTION_DOT", "MEAN_MOTION_DDOT")
_OMM_DEFAULTS: Final = {
    "CLASSIFICATION_TYPE": "U", "OBJECT_ID": "", "EPHEMERIS_TYPE": 0, "ELEMENT_SET_NO": 999,
    "REV_AT_EPOCH": 0, "MEAN_MOTION_DOT": 0.0, "MEAN_MOTION_DDOT": 0.0,
}  # fmt: skip
_KVN_LINE: Final = re.compile(r"\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.*?)\s*(?:\[[^\]]*\])?\s*")
_EPOCH: Final = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,6})?\d*Z?")


@dataclass(frozen=True, slots=True)
class ParsedElements:
    name: str  # from a TLE's name line or the OMM's OBJECT_NAME ("" when none)
    line1: str
    line2: str
    norad_id: int


def _parsed(elements: Elements) -> ParsedElements:
    return ParsedElements(elements.name, elements.line1, elements.line2, elements.norad_id)


def from_tle_pair(line1: str, line2: str, field: str = "tle") -> ParsedElements:
    """``{line1, line2}``: 422 on ``tle.line1``/``tle.line2`` saying the column."""
    try:
        return _parsed(Elements.from_tle(line1, line2))
    except ElementsError as exc:
        raise ValidationFailed(f"{field}.line{exc.line}", str(exc), details=_where(exc)) from None


def from_text(text: str, field: str = "elements") -> ParsedElements:
    """Pasted or uploaded text: a TLE (2 lines, or 3 with a name line first) or an OMM in JSON or
    KVN. Lines are numbered within ``text`` as the operator sees them."""
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationFailed(field, f"at most {MAX_TEXT_CHARS} characters, got {len(text)}")
    stripped = text.strip()
    if not stripped:
        raise ValidationFailed(field, "empty: paste a TLE (two lines, or three with a name) or an OMM")
    if stripped[0] in "{[":
        return _from_json(stripped, field)
    if _is_kvn(stripped):
        return from_omm(_kvn(stripped, field), field)
    try:
        found = parse_tle(text)
    except ElementsError as exc:
        raise ValidationFailed(field, str(exc), details=_where(exc)) from None
    if len(found) != 1:
        raise ValidationFailed(field, f"expected one element set, found {len(found)}")
    return _parsed(found[0])


def from_omm(record: Any, field: str = "omm") -> ParsedElements:
    """One OMM record (CelesTrak's JSON keys); 422 on ``omm.KEY`` for a missing or bad value."""
    if not isinstance(record, dict):
        raise ValidationFailed(field, f"expected an OMM object, got {type(record).__name__}")
    fields: dict[str, Any] = {**_OMM_DEFAULTS, **{k: v for k, v in record.items() if v is not None}}
    for key in OMM_REQUIRED:
        if key not in record or record[key] is None or record[key] == "":
            raise ValidationFailed(f"{field}.{key}", "is missing (an OMM needs " + ", ".join(OMM_REQUIRED) + ")")
    for key in _OMM_NUMBERS:
        fields[key] = _number(fields[key], f"{field}.{key}")
    for key in ("NORAD_CAT_ID", "EPHEMERIS_TYPE", "ELEMENT_SET_NO", "REV_AT_EPOCH"):
        fields[key] = _integer(fields[key], f"{field}.{key}")
    epoch = fields["EPOCH"]
    match = _EPOCH.fullmatch(epoch.strip()) if isinstance(epoch, str) else None
    if match is None:
        raise ValidationFailed(f"{field}.EPOCH", f"expected UTC as YYYY-MM-DDThh:mm:ss[.ffffff], got {epoch!r:.40}")
    fields["EPOCH"] = match[1] + (match[2] or ".0")
    for key in ("CLASSIFICATION_TYPE", "OBJECT_ID", "OBJECT_NAME"):
        if key in fields and not isinstance(fields[key], str):
            raise ValidationFailed(f"{field}.{key}", "expected a string")
    try:
        (elements,) = parse_omm([fields])
    except ElementsError as exc:
        raise ValidationFailed(field, exc.problem) from None
    return _parsed(elements)


def _from_json(text: str, field: str) -> ParsedElements:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(field, f"line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})",
                               details={"line": exc.lineno, "column": exc.colno}) from None  # fmt: skip
    if isinstance(value, list):
        if len(value) != 1:
            raise ValidationFailed(field, f"expected one OMM record, found {len(value)}")
        value = value[0]
    return from_omm(value, field)


def _is_kvn(text: str) -> bool:
    first = next(line for line in text.splitlines() if line.strip())
    return "=" in first and not first.lstrip().startswith(("1 ", "2 "))


def _kvn(text: str, field: str) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("COMMENT") or ("=" not in line and line.strip().endswith(("_START", "_STOP"))):
            continue
        match = _KVN_LINE.fullmatch(line)
        if match is None:
            raise ValidationFailed(field, f"line {number}: expected KEY = value, found {line.strip()[:40]!r}",
                                   details={"line": number})  # fmt: skip
        record[match[1]] = match[2]
    return record


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationFailed(field, f"expected a number, got {value!r:.40}")
    try:
        number = float(value)
    except ValueError:
        raise ValidationFailed(field, f"expected a number, got {value!r:.40}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValidationFailed(field, "must be finite")
    return number


def _integer(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise ValidationFailed(field, f"expected a non-negative integer, got {value!r:.40}")
    return int(value)


def _where(exc: ElementsError) -> dict[str, Any]:
    return {"line": exc.line, "column": exc.column}
