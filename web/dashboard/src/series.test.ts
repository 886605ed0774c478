import { describe, expect, it } from "vitest";
import type { TelemetrySample } from "./api/types";
import {
  AXIS_CHAR_PX,
  LAST_RANGES,
  LONGEST_TIME_LABEL,
  NICE_STEPS_S,
  TIME_TICK_SPACE_PX,
  bandOf,
  fromInputUtc,
  pickStep,
  rangeProblem,
  timeLabels,
  toInputUtc,
  windowOf,
  withTail,
} from "./series";

const T = Date.parse("2026-12-03T07:18:00Z");

describe("ranges and buckets", () => {
  it("picks the smallest nice step that keeps a range under the point budget", () => {
    expect(pickStep(300)).toBe(1);
    expect(pickStep(900)).toBe(2);
    expect(pickStep(3600)).toBe(10);
    expect(pickStep(6 * 3600)).toBe(60);
    expect(pickStep(86_400)).toBe(300);
    expect(pickStep(366 * 86_400)).toBe(86_400);
    for (const { seconds } of LAST_RANGES) expect(seconds / pickStep(seconds)).toBeLessThanOrEqual(600);
  });

  it("starts a live window on a multiple of its step, so buckets hold still as now moves", () => {
    const a = windowOf({ kind: "last", seconds: 3600 }, T + 3_000);
    const b = windowOf({ kind: "last", seconds: 3600 }, T + 7_000);
    expect(a.stepS).toBe(10);
    expect(a.fromMs % 10_000).toBe(0);
    expect(a.fromMs).toBe(b.fromMs);
    expect(a.live && a.toMs === T + 3_000).toBe(true);
    expect(T + 3_000 - a.fromMs).toBeGreaterThanOrEqual(3_600_000);
    const custom = windowOf({ kind: "custom", fromMs: T, toMs: T + 120_000 }, T);
    expect(custom).toEqual({ fromMs: T, toMs: T + 120_000, stepS: null, live: false }); // short: raw samples
  });

  it("says what is wrong with a custom range", () => {
    expect(rangeProblem(T, T + 1)).toBeNull();
    expect(rangeProblem(T, T)).toBe("from must be before to");
    expect(rangeProblem(T, T + 367 * 86_400_000)).toBe("at most 366 days");
    expect(rangeProblem(Number.NaN, T)).toBe("give both times");
    expect(fromInputUtc(toInputUtc(T))).toBe(T);
    expect(fromInputUtc("yesterday")).toBeNaN();
  });
});

describe("bands", () => {
  const bucket = (iso: string, min: number, avg: number, max: number): TelemetrySample => ({
    time: iso,
    energy_pct: avg,
    memory_used_mb: 1,
    alt_km: 551,
    samples: 60,
    min: { energy_pct: min, memory_used_mb: 1, alt_km: 549 },
    avg: { energy_pct: avg, memory_used_mb: 1, alt_km: 550 },
    max: { energy_pct: max, memory_used_mb: 1, alt_km: 552 },
  });

  it("keeps each bucket's min and max around its mean, at the bucket's middle", () => {
    const band = bandOf([bucket("2026-12-03T07:18:00Z", 1, 50, 99), bucket("2026-12-03T07:19:00Z", 40, 45, 50)], "energy_pct", 60);
    expect(band.t_s).toEqual([T / 1000 + 30, T / 1000 + 90]);
    expect([band.min, band.avg, band.max]).toEqual([[1, 40], [50, 45], [99, 50]]);
    expect(bandOf([bucket("2026-12-03T07:18:00Z", 1, 50, 99)], "alt_km", 60).avg).toEqual([550]); // the mean, not the last
  });

  it("draws a raw sample as its own min, mean and max; missing values as gaps", () => {
    const band = bandOf([{ time: "2026-12-03T07:18:00Z", energy_pct: 42, memory_used_mb: 3, alt_km: null }], "alt_km", null);
    expect(band).toEqual({ t_s: [T / 1000], avg: [null], min: [null], max: [null] });
    expect(bandOf([{ time: "2026-12-03T07:18:00Z", energy_pct: 42, memory_used_mb: 3 }], "energy_pct", null).max).toEqual([42]);
  });

  it("continues with the live tail after the fetched rows and slides the window", () => {
    const band = bandOf([bucket("2026-12-03T07:18:00Z", 1, 50, 99), bucket("2026-12-03T07:19:00Z", 40, 45, 50)], "energy_pct", 60);
    const tail = [59, 60, 61, 62].map((s) => ({ t_ms: T + 60_000 + s * 1000, energy_pct: s, memory_used_mb: 0, alt_km: null }));
    const out = withTail(band, tail, "energy_pct", T + 120_000, T + 45_000);
    expect(out.t_s).toEqual([T / 1000 + 90, T / 1000 + 121, T / 1000 + 122]); // the first bucket slid out; 119, 120 were fetched
    expect(out.max).toEqual([50, 61, 62]);
  });
});

describe("time axis labels", () => {
  const minute = (i: number) => T / 1000 + 60 * i;

  it("gives one short label per tick: no date glued to a time (was '12/3/26 7:18am7:19am')", () => {
    expect(timeLabels([minute(0), minute(1)], 60)).toEqual(["07:18", "07:19"]);
    expect(timeLabels([T / 1000, T / 1000 + 15, T / 1000 + 30], 15)).toEqual(["07:18:00", "07:18:15", "07:18:30"]);
    expect(timeLabels([T / 1000, T / 1000 + 86_400], 86_400)).toEqual(["12-03", "12-04"]);
    expect(timeLabels([], 60)).toEqual([]);
  });

  it("dates the first tick and the change of day when the ticks span days", () => {
    const hours = [20, 22, 24, 26].map((h) => Date.parse("2026-12-03T00:00:00Z") / 1000 + h * 3600);
    expect(timeLabels(hours, 7200)).toEqual(["12-03 20:00", "22:00", "12-04 00:00", "02:00"]);
  });

  it("never overlaps: adjacent labels fit between ticks at the spacing uPlot keeps", () => {
    // uPlot picks the smallest increment whose ticks are at least TIME_TICK_SPACE_PX apart.
    const increments = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800, 1_209_600, 2_592_000];
    for (const widthPx of [200, 320, 480, 800, 1400]) {
      for (const spanS of [...LAST_RANGES.map((r) => r.seconds), 3 * 86_400, 30 * 86_400]) {
        const pxPerS = widthPx / spanS;
        const incr = increments.find((i) => i * pxPerS >= TIME_TICK_SPACE_PX) ?? 2_592_000;
        const start = Math.ceil((T / 1000 - spanS) / incr) * incr;
        const splits: number[] = [];
        for (let s = start; s <= T / 1000; s += incr) splits.push(s);
        const labels = timeLabels(splits, incr);
        for (const label of labels) expect(label.length).toBeLessThanOrEqual(LONGEST_TIME_LABEL);
        labels.forEach((label, i) => {
          if (i === 0) return;
          const previous = labels[i - 1] ?? "";
          const gapPx = ((splits[i] ?? 0) - (splits[i - 1] ?? 0)) * pxPerS;
          const halfWidths = ((label.length + previous.length) * AXIS_CHAR_PX) / 2;
          expect(gapPx, `${widthPx} px, ${spanS} s: "${previous}" / "${label}"`).toBeGreaterThan(halfWidths + 4);
        });
      }
    }
    expect(NICE_STEPS_S).toContain(60);
  });
});
