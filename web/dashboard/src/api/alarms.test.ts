import { describe, expect, it } from "vitest";
import { worstBySatellite } from "./alarms";
import type { AlarmRecord } from "./alarms";
import { bodyOf } from "../components/LimitEditor";

function alarm(id: number, sat: string, severity: AlarmRecord["severity"], state: AlarmRecord["state"]): AlarmRecord {
  return { id, satellite_id: sat, kind: "low_energy", severity, message: "", raised_at: "", state, active: true };
}

describe("worstBySatellite", () => {
  it("keeps each satellite's worst open alarm, leaving shelved and cleared ones aside", () => {
    const worst = worstBySatellite([
      alarm(1, "a", "warning", "unacknowledged"),
      alarm(2, "a", "critical", "acknowledged"),
      alarm(3, "b", "critical", "shelved"),
      alarm(4, "c", "critical", "cleared"),
      alarm(5, "d", "info", "unacknowledged"),
    ]);
    expect([...worst]).toEqual([
      ["a", "critical"],
      ["d", "info"],
    ]);
  });
});

describe("bodyOf", () => {
  const draft = {
    parameter: "energy_pct",
    satId: "",
    bounds: { warning_low: "20", warning_high: "", critical_low: "10.5", critical_high: " " },
    hysteresis: "1",
    persistence: "3",
    latched: true,
  };
  it("turns blank bounds into null and numbers into numbers", () => {
    expect(bodyOf(draft)).toEqual({ warning_low: 20, warning_high: null, critical_low: 10.5, critical_high: null, hysteresis: 1, persistence: 3, latched: true });
  });
  it("names the field that is not a number", () => {
    expect(bodyOf({ ...draft, bounds: { ...draft.bounds, warning_high: "ten" } })).toBe("warning_high");
    expect(bodyOf({ ...draft, persistence: "1.5" })).toBe("persistence");
  });
});
