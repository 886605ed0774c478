import { describe, expect, it } from "vitest";
import { checkElements, checkSatelliteForm, satelliteBody, tleChecksum } from "./elements";
import type { SatelliteFields } from "./elements";

const L1 = "1 25544U 98067A   24001.50000000  .00016717  00000-0  10270-3 0  9009";
const L2 = "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.50377579 12348";
const wrongSum = (line: string) => line.slice(0, 68) + String((tleChecksum(line) + 1) % 10);
const OMM = {
  OBJECT_NAME: "ISS (ZARYA)", EPOCH: "2024-01-01T12:00:00.000000", MEAN_MOTION: 15.50377579, ECCENTRICITY: 0.0006703,
  INCLINATION: 51.6416, RA_OF_ASC_NODE: 247.4627, ARG_OF_PERICENTER: 130.536, MEAN_ANOMALY: 325.0288, NORAD_CAT_ID: 25544,
  BSTAR: 0.0001027,
};

describe("checkElements", () => {
  it("takes a TLE of two lines, or three with a name, as pasted (CRs, trailing blanks)", () => {
    expect(tleChecksum(L1)).toBe(9);
    expect(checkElements(`${L1}\n${L2}`)).toEqual({ ok: true, format: "tle", name: "", line1: L1, line2: L2 });
    expect(checkElements(`ISS (ZARYA)\r\n${L1}  \r\n${L2}\r\n`)).toMatchObject({ ok: true, name: "ISS (ZARYA)", line1: L1 });
  });

  it("says which line and column are wrong", () => {
    expect(checkElements(`NAME\n${L1}\n${wrongSum(L2)}`)).toMatchObject({ ok: false, line: 3, column: 69 });
    expect(checkElements(`${wrongSum(L1)}\n${L2}`)).toMatchObject({ ok: false, line: 1, column: 69, message: expect.stringMatching(/^line 1, column 69: checksum/) });
    expect(checkElements(`${L1.slice(0, 60)}\n${L2}`)).toMatchObject({ ok: false, line: 1, column: 61 });
    expect(checkElements(`${L2}\n${L1}`)).toMatchObject({ ok: false, line: 1, column: 1 });
    const other = "2 25553" + L2.slice(7); // same checksum, another satellite number
    expect(checkElements(`${L1}\n${other}`)).toMatchObject({ ok: false, line: 2, column: 3 });
    expect(checkElements(L1)).toMatchObject({ ok: false });
    expect(checkElements("  \n")).toMatchObject({ ok: false });
  });

  it("takes an OMM in JSON (an object or a list of one) or KVN", () => {
    expect(checkElements(JSON.stringify(OMM))).toEqual({ ok: true, format: "omm-json", name: "ISS (ZARYA)" });
    expect(checkElements(JSON.stringify([OMM]))).toMatchObject({ ok: true, format: "omm-json" });
    const kvn = ["CCSDS_OMM_VERS = 2.0", "COMMENT made by hand", ...Object.entries(OMM).map(([k, v]) => `${k} = ${v}`), "MEAN_MOTION_DOT = 0.0001 [rev/day**2]"];
    expect(checkElements(kvn.join("\n"))).toMatchObject({ ok: true, format: "omm-kvn", name: "ISS (ZARYA)" });
  });

  it("names what an OMM lacks or gets wrong", () => {
    const noInclination: Record<string, unknown> = { ...OMM };
    delete noInclination.INCLINATION;
    expect(checkElements(JSON.stringify(noInclination))).toMatchObject({ ok: false, message: expect.stringContaining("INCLINATION") });
    expect(checkElements(JSON.stringify({ ...OMM, MEAN_MOTION: "fast" }))).toMatchObject({ ok: false, message: expect.stringContaining("MEAN_MOTION") });
    expect(checkElements(JSON.stringify({ ...OMM, EPOCH: "yesterday" }))).toMatchObject({ ok: false, message: expect.stringContaining("EPOCH") });
    expect(checkElements(JSON.stringify([OMM, OMM]))).toMatchObject({ ok: false });
    expect(checkElements("{ nope")).toMatchObject({ ok: false, message: expect.stringContaining("JSON") });
    expect(checkElements("OBJECT_NAME = X\nthis is not kvn")).toMatchObject({ ok: false, line: 2 });
  });
});

describe("checkSatelliteForm", () => {
  const good: SatelliteFields = { id: "new-1", name: "New", elements: `${L1}\n${L2}`, memoryCapacityMb: "", energyPct: "" };

  it("passes a good form and builds its body with defaults left out", () => {
    expect(checkSatelliteForm(good)).toEqual({});
    expect(satelliteBody(good)).toEqual({ id: "new-1", name: "New", elements: `${L1}\n${L2}` });
    expect(satelliteBody({ ...good, elements: "", memoryCapacityMb: "512", energyPct: "80" })).toEqual({
      id: "new-1", name: "New", memory_capacity_mb: 512, energy_pct: 80,
    });
    expect(checkSatelliteForm({ ...good, elements: "" })).toEqual({}); // no orbit is allowed
  });

  it("names every bad field", () => {
    const problems = checkSatelliteForm({ id: "no spaces", name: " ", elements: `${L1}\n${wrongSum(L2)}`, memoryCapacityMb: "0", energyPct: "101" });
    expect(Object.keys(problems).sort()).toEqual(["elements", "energyPct", "id", "memoryCapacityMb", "name"]);
    expect(problems.elements).toMatch(/^line 2, column 69: checksum/);
  });
});
