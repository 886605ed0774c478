import { describe, expect, it } from "vitest";
import { degrees, duration, km, latitude, longitude, megabytes, outcome, pct, relative, utcDateTime, utcTime } from "./format";

describe("format", () => {
  it("formats values with their units", () => {
    expect(pct(97.7499)).toBe("97.7 %");
    expect(pct(100, 0)).toBe("100 %");
    expect(megabytes(512.26)).toBe("512.3 MB");
    expect(megabytes(1536)).toBe("1.50 GB");
    expect(km(567.402)).toBe("567.4 km");
    expect(degrees(56.56)).toBe("56.6°");
  });

  it("shows missing values as a dash, never NaN or null", () => {
    for (const f of [pct, megabytes, km, latitude, longitude, degrees, duration, utcTime]) {
      expect(f(null)).toBe("—");
      expect(f(undefined)).toBe("—");
      expect(f(Number.NaN)).toBe("—");
    }
    expect(outcome(undefined)).toBe("—");
  });

  it("gives hemispheres", () => {
    expect(latitude(-51.12124)).toBe("51.12° S");
    expect(latitude(0)).toBe("0.00° N");
    expect(longitude(-147.8576)).toBe("147.86° W");
    expect(longitude(68.318)).toBe("68.32° E");
  });

  it("formats durations and relative times", () => {
    expect(duration(12.4)).toBe("12 s");
    expect(duration(247)).toBe("4 min 07 s");
    expect(duration(3900)).toBe("1 h 05 min");
    expect(duration(-65)).toBe("-1 min 05 s");
    expect(relative(10_000 + 90_000, 10_000)).toBe("in 1 min 30 s");
    expect(relative(0, 12_000)).toBe("12 s ago");
  });

  it("formats UTC times", () => {
    const ms = Date.UTC(2026, 10, 28, 7, 13, 44, 306);
    expect(utcTime(ms)).toBe("07:13:44");
    expect(utcDateTime(ms)).toBe("2026-11-28 07:13:44 UTC");
  });

  it("formats command outcomes", () => {
    expect(outcome("done")).toBe("done");
    expect(outcome(["invalid_transition", "safe", "science"])).toBe('["invalid_transition","safe","science"]');
  });
});
