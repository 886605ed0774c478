// Display formatting with units. Missing values show as an em dash, never as NaN or "null".

const DASH = "—";

function finite(value: number | null | undefined): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

export function pct(value: number | null | undefined, digits = 1): string {
  return finite(value) ? `${value.toFixed(digits)} %` : DASH;
}

/** Megabytes, switching to GB from 1024 MB (binary, as the satellites count memory). */
export function megabytes(mb: number | null | undefined): string {
  if (!finite(mb)) return DASH;
  return Math.abs(mb) >= 1024 ? `${(mb / 1024).toFixed(2)} GB` : `${mb.toFixed(1)} MB`;
}

export function km(value: number | null | undefined, digits = 1): string {
  return finite(value) ? `${value.toFixed(digits)} km` : DASH;
}

/** Latitude or longitude in degrees with hemisphere: 51.12° S, 68.32° E. */
export function latitude(deg: number | null | undefined): string {
  return finite(deg) ? `${Math.abs(deg).toFixed(2)}° ${deg >= 0 ? "N" : "S"}` : DASH;
}

export function longitude(deg: number | null | undefined): string {
  return finite(deg) ? `${Math.abs(deg).toFixed(2)}° ${deg >= 0 ? "E" : "W"}` : DASH;
}

export function degrees(deg: number | null | undefined, digits = 1): string {
  return finite(deg) ? `${deg.toFixed(digits)}°` : DASH;
}

/** A duration in seconds as "1 h 05 min", "4 min 07 s", "12 s". */
export function duration(seconds: number | null | undefined): string {
  if (!finite(seconds)) return DASH;
  const sign = seconds < 0 ? "-" : "";
  const s = Math.round(Math.abs(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h > 0) return `${sign}${h} h ${String(m).padStart(2, "0")} min`;
  if (m > 0) return `${sign}${m} min ${String(rest).padStart(2, "0")} s`;
  return `${sign}${rest} s`;
}

/** Time of day in UTC, HH:MM:SS (operators work in UTC). */
export function utcTime(ms: number | null | undefined): string {
  if (!finite(ms)) return DASH;
  return new Date(ms).toISOString().slice(11, 19);
}

export function utcDateTime(ms: number | null | undefined): string {
  if (!finite(ms)) return DASH;
  return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** "in 4 min 07 s" / "12 s ago" relative to now_ms. */
export function relative(ms: number | null | undefined, nowMs: number): string {
  if (!finite(ms)) return DASH;
  const delta = (ms - nowMs) / 1000;
  return delta >= 0 ? `in ${duration(delta)}` : `${duration(-delta)} ago`;
}

/** A command outcome from an event or the ledger: "done", or the failure reason as text. */
export function outcome(value: unknown): string {
  if (value === undefined || value === null) return DASH;
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}
