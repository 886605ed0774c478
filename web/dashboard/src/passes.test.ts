import { describe, expect, it } from "vitest";
import type { Pass } from "./api/types";
import { indexPasses, nextPass } from "./passes";

const pass = (sat: string, station: string, aos: string, los: string): Pass => ({
  satellite_id: sat,
  station_id: station,
  aos,
  tca: aos,
  los,
  max_el_deg: 30,
  aos_cut: false,
  los_cut: false,
});

describe("next pass", () => {
  const index = indexPasses([
    pass("a", "kiruna", "2026-11-28T10:00:00Z", "2026-11-28T10:08:00Z"),
    pass("a", "wallops", "2026-11-28T09:00:00Z", "2026-11-28T09:05:00Z"),
    pass("b", "wallops", "2026-11-28T11:00:00Z", "2026-11-28T11:05:00Z"),
  ]);
  const at = (iso: string) => Date.parse(iso);

  it("is the earliest pass not over yet, in progress included", () => {
    expect(nextPass(index, "a", at("2026-11-28T08:00:00Z"))?.pass.station_id).toBe("wallops");
    expect(nextPass(index, "a", at("2026-11-28T09:04:00Z"))?.pass.station_id).toBe("wallops");
    expect(nextPass(index, "a", at("2026-11-28T09:06:00Z"))?.pass.station_id).toBe("kiruna");
    expect(nextPass(index, "a", at("2026-11-28T10:09:00Z"))).toBeUndefined();
  });

  it("parses times once and knows nothing of unknown satellites", () => {
    expect(nextPass(index, "b", 0)).toMatchObject({ aosMs: at("2026-11-28T11:00:00Z"), losMs: at("2026-11-28T11:05:00Z") });
    expect(nextPass(index, "zz", 0)).toBeUndefined();
  });
});
