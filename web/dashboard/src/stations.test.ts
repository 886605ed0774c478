import { describe, expect, it } from "vitest";
import type { GroundStation } from "./api/types";
import { EMPTY_STATION, checkStationForm, formOf, stationFields } from "./stations";

const stored: GroundStation = {
  id: "turin", name: "Turin", lat_deg: 45.07, lon_deg: 7.69, alt_m: 240, min_el_deg: 10, downlink_mbps: 200, active: false,
  antennas: 2, unavailable: [{ from: "2030-01-01T00:00:00Z", to: "2030-01-02T00:00:00Z" }],
};

describe("the station form", () => {
  it("round-trips a stored station, keeping its availability on an edit", () => {
    const form = formOf(stored);
    expect(checkStationForm(form, false)).toEqual({});
    expect(stationFields(form, stored)).toEqual({
      name: "Turin", lat_deg: 45.07, lon_deg: 7.69, alt_m: 240, min_el_deg: 10, downlink_mbps: 200, antennas: 2,
      active: false, unavailable: stored.unavailable,
    });
    expect(stationFields(form)).not.toHaveProperty("active");
  });

  it("names every bad field, the id only when creating", () => {
    const bad = { ...EMPTY_STATION, id: "Upper Case", name: "", lat: "91", lon: "x", altM: "9001", minElDeg: "90", downlinkMbps: "0", antennas: "1.5" };
    expect(Object.keys(checkStationForm(bad, true)).sort()).toEqual(["altM", "antennas", "downlinkMbps", "id", "lat", "lon", "minElDeg", "name"]);
    expect(checkStationForm({ ...bad, id: "" }, false)).not.toHaveProperty("id");
    expect(checkStationForm({ ...EMPTY_STATION, id: "gs-1", name: "GS", lat: "-90", lon: "180" }, true)).toEqual({});
  });
});
