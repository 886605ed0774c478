"""Managing the constellation over HTTP (issue 18), over a fake cluster and a real database:
satellites created from a TLE pair, pasted text (TLE or OMM) or an OMM object, each refused with
a 422 that names the field, line and column; a TLE change audited and kept in the history
(migration 0011's trigger, through the real checkpoint path); ground stations edited (PUT) and
removed (DELETE), an edit that matters to plans asking for a re-plan. The real cluster's side is
tests/test_manage_stack.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from web_support import Harness, expect_error, expect_invalid_field, gateway

from orbital import Elements, tle_checksum
from py_nodes.db import Database, Satellites
from py_nodes.satellite.model import SatState
from py_nodes.satellite.modes import Mode

# ISS-like elements (epoch 2024-01-01 12:00 UTC), with valid checksums.
L1 = "1 25544U 98067A   24001.50000000  .00016717  00000-0  10270-3 0  9009"
L2 = "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.50377579 12348"
OMM = {
    "OBJECT_NAME": "ISS (ZARYA)", "OBJECT_ID": "1998-067A", "EPOCH": "2024-01-01T12:00:00.000000",
    "MEAN_MOTION": 15.50377579, "ECCENTRICITY": 0.0006703, "INCLINATION": 51.6416, "RA_OF_ASC_NODE": 247.4627,
    "ARG_OF_PERICENTER": 130.536, "MEAN_ANOMALY": 325.0288, "EPHEMERIS_TYPE": 0, "CLASSIFICATION_TYPE": "U",
    "NORAD_CAT_ID": 25544, "ELEMENT_SET_NO": 999, "REV_AT_EPOCH": 1234, "BSTAR": 0.0001027,
    "MEAN_MOTION_DOT": 0.00016717, "MEAN_MOTION_DDOT": 0,
}  # fmt: skip


def bad_checksum(line: str) -> str:
    return line[:68] + str((tle_checksum(line) + 1) % 10)


@pytest.fixture
async def gw(db_conninfo: str) -> AsyncIterator[Harness]:
    async with gateway(db_conninfo) as harness:
        yield harness


def test_the_sample_lines_are_valid() -> None:
    assert Elements.from_tle(L1, L2).norad_id == 25544


async def test_create_from_a_pair_pasted_text_or_an_omm(gw: Harness) -> None:
    op = gw.auth("operator")
    made = await gw.client.post("/api/satellites", json={"id": "pair", "name": "P", "tle": {"line1": L1, "line2": L2}}, headers=op)
    assert made.status == 201 and (await made.json())["tle"] == {"line1": L1, "line2": L2}
    pasted = f"ISS (ZARYA)\r\n{L1}  \r\n{L2}\r\n"  # a name line, CRs and trailing blanks, as pasted
    made = await gw.client.post("/api/satellites", json={"id": "pasted", "name": "T", "elements": pasted}, headers=op)
    assert made.status == 201 and (await made.json())["tle"] == {"line1": L1, "line2": L2}
    made = await gw.client.post("/api/satellites", json={"id": "omm", "name": "O", "omm": OMM}, headers=op)
    assert made.status == 201, await made.text()
    tle = (await made.json())["tle"]
    flown = Elements.from_tle(tle["line1"], tle["line2"])
    assert (flown.norad_id, flown.inclination_deg, flown.raan_deg, flown.eccentricity) == (25544, 51.6416, 247.4627, 0.0006703)
    assert flown.mean_motion_rev_day == 15.50377579 and flown.epoch_utc.isoformat() == "2024-01-01T12:00:00+00:00"
    for text in (json.dumps(OMM), json.dumps([OMM]), "\n".join(f"{k} = {v}" for k, v in OMM.items())):  # JSON, a list, KVN
        made = await gw.client.post("/api/satellites", json={"id": "omm-text", "name": "O", "elements": text}, headers=op)
        assert made.status == 201 and (await made.json())["tle"] == tle, text
        await gw.cluster.stop("omm-text")


async def test_a_bad_element_set_names_its_line_and_column(gw: Harness) -> None:
    op = gw.auth("operator")
    base = {"id": "bad", "name": "B"}
    error = await expect_error(await gw.client.post("/api/satellites", json={**base, "tle": {"line1": L1, "line2": bad_checksum(L2)}}, headers=op), 422, "validation_failed")
    assert error["details"] == {"field": "tle.line2", "line": 2, "column": 69}
    assert "line 2, column 69: checksum" in error["message"]
    error = await expect_error(await gw.client.post("/api/satellites", json={**base, "elements": f"NAME\n{bad_checksum(L1)}\n{L2}"}, headers=op), 422, "validation_failed")
    assert error["details"] == {"field": "elements", "line": 2, "column": 69}  # numbered as pasted
    shifted = L2[:9] + "X" + L2[10:]
    error = await expect_error(await gw.client.post("/api/satellites", json={**base, "elements": f"{L1}\n{shifted}"}, headers=op), 422, "validation_failed")
    assert error["details"]["line"] == 2 and error["details"]["column"] == 9 and "inclination" in error["message"]
    await expect_invalid_field(await gw.client.post("/api/satellites", json={**base, "elements": L1}, headers=op), "elements")
    await expect_invalid_field(await gw.client.post("/api/satellites", json={**base, "elements": f"{L1}\n{L2}\n{L1}\n{L2}"}, headers=op), "elements")
    no_incl = {k: v for k, v in OMM.items() if k != "INCLINATION"}
    await expect_invalid_field(await gw.client.post("/api/satellites", json={**base, "omm": no_incl}, headers=op), "omm.INCLINATION")
    await expect_invalid_field(await gw.client.post("/api/satellites", json={**base, "omm": {**OMM, "ECCENTRICITY": 1.5}}, headers=op), "omm")
    await expect_invalid_field(await gw.client.post("/api/satellites", json={**base, "omm": {**OMM, "EPOCH": "yesterday"}}, headers=op), "omm.EPOCH")
    await expect_invalid_field(await gw.client.post("/api/satellites", json={**base, "elements": "{not json"}, headers=op), "elements")
    both = {**base, "tle": {"line1": L1, "line2": L2}, "omm": OMM}
    await expect_invalid_field(await gw.client.post("/api/satellites", json=both, headers=op), "omm")
    assert "bad" not in gw.cluster.sats_by_id  # nothing was created
    await expect_error(await gw.client.post("/api/satellites", json={**base, "tle": {"line1": L1, "line2": L2}}, headers=gw.auth("viewer")), 403, "forbidden")


async def test_a_new_tle_is_audited(gw: Harness) -> None:
    gw.cluster.add("sat-9", tle=(L1, L2))
    op = gw.auth("operator")
    new = {"line1": L1, "line2": L2[:52] + "15.40000000" + L2[63:68]}
    new["line2"] += str(tle_checksum(new["line2"]))
    changed = await gw.client.put("/api/satellites/sat-9/tle", json={"tle": new}, headers=op)
    assert changed.status == 200, await changed.text()
    body = await changed.json()
    assert body["satellite"]["tle"] == new and body["command_id"]
    async with gw.db.connection() as conn:
        rows = await (await conn.execute("SELECT actor, details FROM audit_log WHERE action = 'satellite.tle'")).fetchall()
    assert len(rows) == 1 and "operator" in rows[0][0] and rows[0][1] == {"from": [L1, L2], "to": [new["line1"], new["line2"]]}
    await expect_invalid_field(await gw.client.put("/api/satellites/sat-9/tle", json={"tle": {"line1": L1, "line2": bad_checksum(L2)}}, headers=op), "tle.line2")
    await expect_invalid_field(await gw.client.put("/api/satellites/sat-9/tle", json={"tle": new, "omm": OMM}, headers=op), "omm")
    await expect_error(await gw.client.put("/api/satellites/none/tle", json={"omm": OMM}, headers=op), 404, "not_found")
    await expect_error(await gw.client.put("/api/satellites/sat-9/tle", json={"omm": OMM}, headers=gw.auth("viewer")), 403, "forbidden")
    command = await gw.client.post("/api/satellites/sat-9/commands", json={"kind": "set_tle", "args": {"line1": bad_checksum(L1), "line2": L2}}, headers=op)
    error = await expect_error(command, 422, "validation_failed")
    assert error["details"] == {"field": "args.line1", "line": 1, "column": 69}


async def test_the_history_keeps_every_tle(db: Database, gw: Harness) -> None:
    """Through the path the cluster uses: a create, then checkpoints (a new TLE, the same one, a
    deletion, a revival), as the store node writes them."""
    sats = Satellites(db)
    state = SatState(b"h1", b"H", Mode.NOMINAL, 90.0, 0.0, 1024.0, (L1.encode(), L2.encode()), (), 1000)
    await sats.create(state, actor="test")
    line2 = L2[:43] + "100.0000" + L2[51:68]
    line2 += str(tle_checksum(line2))
    await sats.checkpoint(replace(state, tle=(L1.encode(), line2.encode()), updated_at=2000))
    await sats.checkpoint(replace(state, tle=(L1.encode(), line2.encode()), updated_at=3000))  # unchanged: no row
    history = await sats.tle_history("h1")
    assert history is not None and [(t.line2, t.valid_to is None) for t in history] == [(line2, True), (L2, False)]
    assert history[1].valid_to == history[0].valid_from
    viewer = gw.auth("viewer")
    body = await (await gw.client.get("/api/satellites/h1/tle-history", headers=viewer)).json()
    first = body["items"][0]
    assert (first["line2"], first["valid_to"]) == (line2, None) and len(body["items"]) == 2
    assert len((await (await gw.client.get("/api/satellites/h1/tle-history?limit=1", headers=viewer)).json())["items"]) == 1
    await expect_error(await gw.client.get("/api/satellites/none/tle-history", headers=viewer), 404, "not_found")
    await sats.delete(["h1"], actor="test")
    history = await sats.tle_history("h1")
    assert history is not None and all(t.valid_to is not None for t in history)  # deleted: none current
    await sats.create(replace(state, updated_at=4000), actor="test")  # revived with the first TLE
    history = await sats.tle_history("h1")
    assert history is not None and (history[0].line2, history[0].valid_to) == (L2, None) and len(history) == 3


async def _requests(db: Database) -> list[tuple[str, str]]:
    async with db.connection() as conn:
        return [tuple(r) for r in await (await conn.execute("SELECT cause, detail FROM plan_requests ORDER BY id")).fetchall()]  # type: ignore[misc]


async def test_edit_and_delete_a_station(db: Database, gw: Harness) -> None:
    op = gw.auth("operator")
    spec: dict[str, Any] = {"id": "turin", "name": "Turin", "lat_deg": 45.07, "lon_deg": 7.69, "alt_m": 240, "min_el_deg": 10,
                            "downlink_mbps": 200, "antennas": 2}  # fmt: skip
    assert (await gw.client.post("/api/ground-stations", json=spec, headers=op)).status == 201
    edit = {k: v for k, v in spec.items() if k != "id"}
    renamed = await gw.client.put("/api/ground-stations/turin", json={**edit, "name": "Torino"}, headers=op)
    assert renamed.status == 200
    body = await renamed.json()
    assert body["station"]["name"] == "Torino" and body["changed"] is True and body["request_id"] is None  # plans unaffected
    moved = await (await gw.client.put("/api/ground-stations/turin", json={**edit, "lat_deg": 46.0, "min_el_deg": 5}, headers=op)).json()
    assert moved["station"]["lat_deg"] == 46.0 and moved["station"]["name"] == "Turin" and moved["request_id"] is not None
    assert (await _requests(db))[-1] == ("station_down", "turin down: lat_deg, min_el_deg changed")
    faster = await (await gw.client.put("/api/ground-stations/turin", json={**edit, "lat_deg": 46.0, "min_el_deg": 5, "downlink_mbps": 400}, headers=op)).json()
    assert faster["request_id"] is not None and (await _requests(db))[-1][0] == "station_up"
    same = await (await gw.client.put("/api/ground-stations/turin", json={**edit, "lat_deg": 46.0, "min_el_deg": 5, "downlink_mbps": 400}, headers=op)).json()
    assert same["changed"] is False and same["request_id"] is None
    defaults = await (await gw.client.put("/api/ground-stations/turin", json={"name": "T", "lat_deg": 46.0, "lon_deg": 7.69}, headers=op)).json()
    assert (defaults["station"]["alt_m"], defaults["station"]["antennas"], defaults["station"]["min_el_deg"]) == (0, 1, 5)  # PUT replaces
    await expect_invalid_field(await gw.client.put("/api/ground-stations/turin", json={**edit, "lat_deg": 91}, headers=op), "lat_deg")
    await expect_invalid_field(await gw.client.put("/api/ground-stations/turin", json={**edit, "id": "x"}, headers=op), "id")
    window = {"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"}
    await expect_invalid_field(await gw.client.put("/api/ground-stations/turin", json={**edit, "unavailable": [window]}, headers=op), "unavailable[0].to")
    await expect_error(await gw.client.put("/api/ground-stations/nowhere", json=edit, headers=op), 404, "not_found")
    await expect_error(await gw.client.put("/api/ground-stations/turin", json=edit, headers=gw.auth("viewer")), 403, "forbidden")
    await expect_error(await gw.client.delete("/api/ground-stations/turin", headers=gw.auth("viewer")), 403, "forbidden")
    assert (await gw.client.delete("/api/ground-stations/turin", headers=op)).status == 204
    await expect_error(await gw.client.delete("/api/ground-stations/turin", headers=op), 404, "not_found")
    listed = await (await gw.client.get("/api/ground-stations", headers=gw.auth("viewer"))).json()
    assert listed["items"] == []
    async with db.connection() as conn:
        actions = [r[0] for r in await (await conn.execute("SELECT action FROM audit_log WHERE entity = 'ground_station' ORDER BY id")).fetchall()]
    assert actions[0] == "ground_station.create" and actions[-1] == "ground_station.delete" and "ground_station.update" in actions
