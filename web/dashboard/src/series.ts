// Series math for the telemetry charts: the time range an operator picks, the bucket size asked
// of the server for it, min/avg/max bands from its answer, the live tail appended after it, and
// time-axis labels that fit between their ticks. Pure functions (series.test.ts).

import type { TailPoint } from "./api/reducer";
import type { TelemetrySample } from "./api/types";

export type RangeChoice = { kind: "last"; seconds: number } | { kind: "custom"; fromMs: number; toMs: number };

export const LAST_RANGES: readonly { label: string; seconds: number }[] = [
  { label: "15 min", seconds: 900 },
  { label: "1 h", seconds: 3600 },
  { label: "6 h", seconds: 6 * 3600 },
  { label: "24 h", seconds: 24 * 3600 },
];

/** Points per chart at most: about one per pixel column of a chart's width. */
export const MAX_POINTS = 600;
/** The server's limit on a request's span (GET /api/satellites/{id}/telemetry). */
export const MAX_RANGE_S = 366 * 86_400;
/** Bucket sizes that read well on an axis; the smallest that keeps a range under MAX_POINTS wins. */
export const NICE_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400];

export function pickStep(spanS: number, maxPoints = MAX_POINTS): number {
  const wanted = spanS / maxPoints;
  return NICE_STEPS_S.find((s) => s >= wanted) ?? Math.ceil(wanted / 86_400) * 86_400;
}

export interface Window {
  fromMs: number;
  toMs: number;
  /** seconds per bucket; null: raw samples (a bucket of 1 s holds one 1 Hz sample anyway) */
  stepS: number | null;
  /** the range ends now: the live tail continues it */
  live: boolean;
}

/** The window to fetch for a choice at ``nowMs``. A live window starts on a multiple of its
 * step, so the buckets stay the same from one refresh to the next as "now" moves. */
export function windowOf(choice: RangeChoice, nowMs: number, maxPoints = MAX_POINTS): Window {
  if (choice.kind === "custom") {
    const step = pickStep((choice.toMs - choice.fromMs) / 1000, maxPoints);
    return { fromMs: choice.fromMs, toMs: choice.toMs, stepS: step > 1 ? step : null, live: false };
  }
  const step = pickStep(choice.seconds, maxPoints);
  const stepMs = step * 1000;
  const fromMs = Math.floor((nowMs - choice.seconds * 1000) / stepMs) * stepMs;
  return { fromMs, toMs: nowMs, stepS: step > 1 ? step : null, live: true };
}

/** Why a custom range cannot be asked for, or null when it can. */
export function rangeProblem(fromMs: number, toMs: number): string | null {
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs)) return "give both times";
  if (fromMs >= toMs) return "from must be before to";
  if (toMs - fromMs > MAX_RANGE_S * 1000) return "at most 366 days";
  return null;
}

export type Param = "energy_pct" | "memory_used_mb" | "alt_km";

export interface Band {
  /** seconds since the epoch (uPlot's time scale): a bucket's middle, or a sample's time */
  t_s: number[];
  avg: (number | null)[];
  min: (number | null)[];
  max: (number | null)[];
}

function value(v: number | null | undefined): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Bands of one parameter from the server's rows: a bucket's min/avg/max, a raw sample's value
 * as all three. */
export function bandOf(items: TelemetrySample[], param: Param, stepS: number | null): Band {
  const band: Band = { t_s: [], avg: [], min: [], max: [] };
  const half = stepS ? stepS / 2 : 0;
  for (const item of items) {
    const own = value(item[param]);
    band.t_s.push(Date.parse(item.time) / 1000 + half);
    band.avg.push(item.avg ? value(item.avg[param]) : own);
    band.min.push(item.min ? value(item.min[param]) : own);
    band.max.push(item.max ? value(item.max[param]) : own);
  }
  return band;
}

/** ``band`` continued by the live samples after ``afterMs`` (where the fetched rows end), and
 * cut at ``fromMs`` (the window slides with now). */
export function withTail(band: Band, tail: TailPoint[], param: Param, afterMs: number, fromMs: number): Band {
  const out: Band = { t_s: [], avg: [], min: [], max: [] };
  const push = (t: number, avg: number | null, min: number | null, max: number | null) => {
    if (t * 1000 < fromMs) return;
    out.t_s.push(t);
    out.avg.push(avg);
    out.min.push(min);
    out.max.push(max);
  };
  band.t_s.forEach((t, i) => push(t, band.avg[i] ?? null, band.min[i] ?? null, band.max[i] ?? null));
  for (const point of tail) {
    if (point.t_ms <= afterMs) continue;
    const v = value(point[param]);
    push(point.t_ms / 1000, v, v, v);
  }
  return out;
}

// -- time axis -----------------------------------------------------------------------------------

/** Width of one character of the axis font (12 px system-ui digits are ~7 px), and the space
 * uPlot keeps between time ticks: the longest label ("12-03 07:18") plus a gap. */
export const AXIS_CHAR_PX = 7;
export const LONGEST_TIME_LABEL = 11;
export const TIME_TICK_SPACE_PX = LONGEST_TIME_LABEL * AXIS_CHAR_PX + 16;

function two(n: number): string {
  return String(n).padStart(2, "0");
}

/** One line per tick, UTC: "07:18" (":SS" when ticks are under a minute apart), with the date
 * "12-03 " on the first tick and where the day changes when the ticks span more than one day;
 * just "12-03" when ticks are a day or more apart. Never more than LONGEST_TIME_LABEL characters. */
export function timeLabels(splitsS: number[], incrS: number): string[] {
  if (!splitsS.length) return [];
  const days = new Set(splitsS.map((s) => Math.floor(s / 86_400)));
  let previousDay: number | null = null;
  return splitsS.map((s) => {
    const d = new Date(s * 1000);
    const date = `${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())}`;
    if (incrS >= 86_400) return date;
    const time = incrS < 60 ? `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}` : `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
    const day = Math.floor(s / 86_400);
    const showDate = days.size > 1 && day !== previousDay && incrS >= 60;
    previousDay = day;
    return showDate ? `${date} ${time}` : time;
  });
}

/** The range a window covers, for a caption: "12-03 06:00 – 12-03 07:00 UTC". */
export function rangeCaption(fromMs: number, toMs: number): string {
  const f = (ms: number) => new Date(ms).toISOString().slice(5, 16).replace("T", " ");
  return `${f(fromMs)} – ${f(toMs)} UTC`;
}

/** "2026-12-03T07:18" for a datetime-local input showing UTC, and back. */
export function toInputUtc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16);
}

export function fromInputUtc(text: string): number {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(text) ? Date.parse(`${text}Z`) : Number.NaN;
}
