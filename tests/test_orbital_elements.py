"""TLE parsing/validation/export and OMM records (orbital.elements); no Erlang needed."""

from __future__ import annotations

import importlib.resources
import io
from datetime import UTC, datetime, timedelta

import pytest
from sgp4 import omm  # type: ignore[import-untyped]

from orbital import Elements, ElementsError, make_elements, parse_omm, parse_tle, tle_checksum

# CelesTrak, as quoted in the sgp4 package's tests (the TLE and OMM forms of one element set).
MARIO_TLE = """\
MARIO
1 55123U 98067UQ  23115.44827133  .00787702  29408-3  15680-2 0  9999
2 55123  51.6242 216.2930 0014649 331.8976  28.1241 15.99081912 18396
"""
MARIO_CSV = """\
OBJECT_NAME,OBJECT_ID,EPOCH,MEAN_MOTION,ECCENTRICITY,INCLINATION,RA_OF_ASC_NODE,ARG_OF_PERICENTER,MEAN_ANOMALY,EPHEMERIS_TYPE,CLASSIFICATION_TYPE,NORAD_CAT_ID,ELEMENT_SET_NO,REV_AT_EPOCH,BSTAR,MEAN_MOTION_DOT,MEAN_MOTION_DDOT
MARIO,1998-067UQ,2023-04-25T10:45:30.642912,15.99081912,.0014649,51.6242,216.2930,331.8976,28.1241,0,U,55123,999,1839,.1568E-2,.787702E-2,.29408E-3
"""
ISS_TLE = """\
ISS (ZARYA)
1 25544U 98067A   13330.58127943  .00000814  00000-0  21834-4 0  1064
2 25544  51.6484  23.7537 0001246  74.1647  18.7420 15.50540527859894
"""
VANGUARD_LINES = (
    "1 00005U 58002B   00179.78495062  .00000023  00000-0  28098-4 0  4753",
    "2 00005  34.2682 348.7242 1859667 331.7664  19.3264 10.82419157413667",
)


def with_checksum(line: str) -> str:
    """Recompute column 69, so a test isolates the one defect it is about."""
    return line[:68] + str(tle_checksum(line))


def vallado_tle_pairs() -> list[tuple[str, str]]:
    text = (importlib.resources.files("sgp4") / "SGP4-VER.TLE").read_text()
    lines = [line[:69] for line in text.splitlines() if line.startswith(("1 ", "2 "))]
    return list(zip(lines[0::2], lines[1::2], strict=True))


def test_parses_named_and_unnamed_sets_with_blank_lines() -> None:
    text = (
        "\n"
        + ISS_TLE
        + "\n\n"
        + "\n".join(VANGUARD_LINES)
        + "\n\n0 MARIO\n"
        + MARIO_TLE.split("\n", 1)[1]
    )
    iss, vanguard, mario = parse_tle(text)
    assert (iss.name, iss.norad_id) == ("ISS (ZARYA)", 25544)
    assert (vanguard.name, vanguard.norad_id) == ("", 5)
    assert (mario.name, mario.norad_id) == ("MARIO", 55123)  # "0 " prefix of 3LE files dropped
    # 2013 day 330.58127943 = 26 November 13:57:02.542752
    assert abs(iss.epoch_utc - datetime(2013, 11, 26, 13, 57, 2, 542752, tzinfo=UTC)) < timedelta(
        microseconds=1
    )
    assert iss.inclination_deg == 51.6484
    assert iss.eccentricity == pytest.approx(0.0001246, abs=1e-12)
    assert iss.mean_motion_rev_day == 15.50540527
    assert iss.bstar_per_earth_radius == pytest.approx(0.21834e-4, rel=1e-12)
    assert vanguard.epoch_utc.year == 2000  # two-digit years below 57 are 20xx
    satrec = iss.satrec()
    assert satrec.satnum == 25544 and satrec.inclo == pytest.approx(0.9014, abs=1e-4)


def test_export_round_trips_byte_identical() -> None:
    for text in (ISS_TLE, MARIO_TLE, "\n".join(VANGUARD_LINES) + "\n"):
        (elements,) = parse_tle(text)
        assert elements.to_tle() == text
        assert parse_tle(elements.to_tle()) == [elements]


def test_reformatting_from_numbers_reproduces_the_lines() -> None:
    """make_elements(**e.fields()) rewrites Vallado's verification TLEs byte for byte, except
    where the TLE spells a value two ways: a blank ephemeris type (we print 0) and a zero exponent
    written "-0" (we print "+0"); the numbers still match."""
    differ = set()
    refused: dict[int, str] = {}
    for line1, line2 in vallado_tle_pairs():
        try:
            elements = Elements.from_tle(line1, line2)
        except ElementsError as exc:
            refused[int(line1[2:7])] = str(exc)
            continue
        again = make_elements(**elements.fields())
        assert again.line2 == line2
        assert again.fields() == elements.fields()
        if again.line1 != line1:
            differ.add(elements.norad_id)
    # 11801: blank ephemeris type; 25954: B* "00000-0"; 29141: B* "13519-0"
    assert differ == {11801, 25954, 29141}
    # Only the file's three deliberate errors are refused, each for its checksum.
    assert sorted(refused) == [33333, 33334, 33335], refused
    assert all("checksum" in why for why in refused.values()), refused


def test_make_elements_writes_checksummed_lines_sgp4_agrees_with() -> None:
    elements = make_elements(
        norad_id=99001,
        epoch_utc=datetime(2024, 2, 29, 12, 0, tzinfo=UTC),
        inclination_deg=97.6,
        raan_deg=-10.0,  # wrapped to 350
        eccentricity=0.00123,
        arg_perigee_deg=720.5,  # wrapped to 0.5
        mean_anomaly_deg=359.99999,  # rounds to 360.0000, written as 0
        mean_motion_rev_day=14.8,
        bstar_per_earth_radius=-1.2345e-4,
        mean_motion_dot=-2.5e-6,
        name="TEST",
    )
    for line in (elements.line1, elements.line2):
        assert len(line) == 69 and line[68] == str(tle_checksum(line))
    assert elements.line1 == "1 99001U          24060.50000000 -.00000250  00000-0 -12345-3 0  9993"
    assert elements.line2 == "2 99001  97.6000 350.0000 0012300   0.5000   0.0000 14.80000000    05"
    satrec = elements.satrec()
    assert satrec.bstar == pytest.approx(-1.2345e-4)
    assert satrec.ecco == pytest.approx(0.00123)


def test_alpha5_numbers() -> None:
    elements = make_elements(
        norad_id=339999,
        epoch_utc=datetime(2024, 1, 1, tzinfo=UTC),
        inclination_deg=10.0,
        raan_deg=0.0,
        eccentricity=0.0,
        arg_perigee_deg=0.0,
        mean_anomaly_deg=0.0,
        mean_motion_rev_day=15.0,
    )
    assert elements.line1[2:7] == "Z9999" and elements.norad_id == 339999
    line1 = with_checksum(VANGUARD_LINES[0].replace("00005U", "A0005U"))
    line2 = with_checksum(VANGUARD_LINES[1].replace("2 00005", "2 A0005"))
    assert Elements.from_tle(line1, line2).norad_id == 100005
    with pytest.raises(ValueError, match="norad_id 340000"):
        make_elements(**{**elements.fields(), "norad_id": 340000})


def error_for(text: str) -> ElementsError:
    with pytest.raises(ElementsError) as info:
        parse_tle(text)
    return info.value


def test_bad_checksum_names_line_and_column_69() -> None:
    name, line1, line2 = ISS_TLE.splitlines()
    bad = line1[:68] + "5"
    err = error_for(f"{name}\n{bad}\n{line2}\n")
    assert (err.line, err.column) == (2, 69)
    assert "line 2, column 69" in str(err) and "checksum" in err.problem
    assert isinstance(err, ValueError)


def test_wrong_length() -> None:
    name, line1, line2 = ISS_TLE.splitlines()
    err = error_for(f"{name}\n{line1}\n{line2[:68]}\n")
    assert (err.line, err.column) == (3, 69)
    assert "68 characters" in err.problem and "69" in err.problem
    err = error_for(f"{line1}\n{line2} 0.0 1440.0 360.0\n")
    assert (err.line, err.column) == (2, 70)


def test_mismatched_satellite_numbers() -> None:
    name, line1, line2 = ISS_TLE.splitlines()
    other = with_checksum(line2.replace("2 25544", "2 25545"))
    err = error_for(f"{name}\n{line1}\n{other}\n")
    assert (err.line, err.column) == (3, 3)
    assert "25545" in err.problem and "25544" in err.problem


def test_garbage_numeric_field_names_its_column() -> None:
    name, line1, line2 = ISS_TLE.splitlines()
    garbage = with_checksum(line2.replace(" 51.6484", " 51.6X84"))
    err = error_for(f"{name}\n{line1}\n{garbage}\n")
    assert (err.line, err.column) == (3, 9)
    assert "inclination" in err.problem and "51.6X84" in err.problem
    garbage = with_checksum(line1.replace("21834-4", "21834x4"))
    err = error_for(f"{garbage}\n{line2}\n")
    assert (err.line, err.column) == (1, 54) and "B*" in err.problem


def test_missing_line_2() -> None:
    name, line1, _ = ISS_TLE.splitlines()
    err = error_for(f"\n{name}\n{line1}\n\n")
    assert err.line == 4 and "missing TLE line 2" in err.problem
    err = error_for(f"{line1}\n{line1}\n")
    assert (err.line, err.column) == (2, 1) and "missing TLE line 2" in err.problem


def test_other_structure_errors() -> None:
    name, line1, line2 = ISS_TLE.splitlines()
    err = error_for(f"{line2}\n{line1}\n")
    assert (err.line, err.column) == (1, 1) and "without a line 1" in err.problem
    err = error_for(f"{name}\n{name}\n{line1}\n{line2}\n")
    assert (err.line, err.column) == (2, 1) and "expected TLE line 1" in err.problem
    err = error_for(f"{name}\n")
    assert err.line == 2 and "missing TLE line 1" in err.problem
    no_blank = with_checksum(line1[:8] + "X" + line1[9:])
    err = error_for(f"{no_blank}\n{line2}\n")
    assert (err.line, err.column) == (1, 9) and "blank" in err.problem


def test_ranges() -> None:
    _, line1, line2 = ISS_TLE.splitlines()
    steep = with_checksum(line2.replace(" 51.6484", "181.0000"))
    err = error_for(f"{line1}\n{steep}\n")
    assert (err.line, err.column) == (2, 9) and "inclination" in err.problem
    bad_day = with_checksum(line1.replace("13330.58127943", "13366.58127943"))
    err = error_for(f"{bad_day}\n{line2}\n")
    assert (err.line, err.column) == (1, 21) and "epoch day" in err.problem
    still_moving = with_checksum(line2.replace("15.50540527", " 0.00000000"))
    err = error_for(f"{line1}\n{still_moving}\n")
    assert (err.line, err.column) == (2, 53) and "mean motion" in err.problem


def test_strict_length_is_not_weakened_for_vallados_file() -> None:
    """SGP4-VER.TLE carries run times after column 69; the parser refuses them (we trim in tests)."""
    text = (importlib.resources.files("sgp4") / "SGP4-VER.TLE").read_text()
    line1, line2 = (line for line in text.splitlines() if line.startswith(("1 00005", "2 00005")))
    with pytest.raises(ElementsError, match="column 70"):
        Elements.from_tle(line1, line2)


def test_omm_csv_and_json_give_the_same_elements_as_the_tle() -> None:
    (tle,) = parse_tle(MARIO_TLE)
    (from_csv,) = parse_omm(omm.parse_csv(io.StringIO(MARIO_CSV)))
    assert from_csv == tle  # byte-identical lines, same name, number and epoch
    row = next(omm.parse_csv(io.StringIO(MARIO_CSV)))
    numeric = {key: value for key, value in row.items()}
    for key in ("MEAN_MOTION", "ECCENTRICITY", "INCLINATION", "RA_OF_ASC_NODE", "BSTAR"):
        numeric[key] = float(row[key])  # JSON (CelesTrak FORMAT=JSON) carries numbers
    for key in ("NORAD_CAT_ID", "ELEMENT_SET_NO", "REV_AT_EPOCH", "EPHEMERIS_TYPE"):
        numeric[key] = int(row[key])
    assert parse_omm([numeric]) == [tle]


def test_omm_errors_name_the_record() -> None:
    row = next(omm.parse_csv(io.StringIO(MARIO_CSV)))
    missing = {k: v for k, v in row.items() if k != "EPOCH"}
    with pytest.raises(ElementsError, match=r"OMM record 2: missing field EPOCH") as info:
        parse_omm([row, missing])
    assert info.value.line == 2 and info.value.column is None
    with pytest.raises(ElementsError, match=r"ECCENTRICITY 1\.5"):
        parse_omm([{**row, "ECCENTRICITY": "1.5"}])
    with pytest.raises(ElementsError, match="bad value"):
        parse_omm([{**row, "MEAN_MOTION": "fast"}])
