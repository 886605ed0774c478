// Checks an operator's input before it goes to the gateway (which checks again and has the last
// word): the new-satellite form's fields and the element set pasted or uploaded, a TLE (two lines,
// or three with a name line) or an OMM (JSON as CelesTrak's, or KVN "KEY = value" lines). A
// problem says where, as the gateway does: "line 3, column 69: checksum ...".

export const TLE_LINE_LENGTH = 69;
export const OMM_REQUIRED = [
  "NORAD_CAT_ID",
  "EPOCH",
  "MEAN_MOTION",
  "ECCENTRICITY",
  "INCLINATION",
  "RA_OF_ASC_NODE",
  "ARG_OF_PERICENTER",
  "MEAN_ANOMALY",
  "BSTAR",
] as const;
const SAT_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_TEXT_CHARS = 20_000;

export type ElementsFormat = "tle" | "omm-json" | "omm-kvn";

export type ElementsCheck =
  | { ok: true; format: ElementsFormat; name: string; line1?: string; line2?: string }
  | { ok: false; message: string; line?: number; column?: number };

/** The TLE checksum of columns 1-68: digits summed, each '-' counting 1, modulo 10. */
export function tleChecksum(line: string): number {
  let sum = 0;
  for (const char of line.slice(0, 68)) {
    if (char >= "0" && char <= "9") sum += char.charCodeAt(0) - 48;
    else if (char === "-") sum += 1;
  }
  return sum % 10;
}

function fail(message: string, line?: number, column?: number): ElementsCheck {
  const where = line === undefined ? "" : column === undefined ? `line ${line}: ` : `line ${line}, column ${column}: `;
  return { ok: false, message: where + message, line, column };
}

/** One TLE line's length, line number and checksum (``number``: its line in the pasted text). */
export function checkTleLine(line: string, digit: "1" | "2", number: number): ElementsCheck | null {
  if (line.length !== TLE_LINE_LENGTH) {
    return fail(`line is ${line.length} characters long; a TLE line has ${TLE_LINE_LENGTH}`, number, Math.min(line.length, TLE_LINE_LENGTH) + 1);
  }
  if (line[0] !== digit) return fail(`expected line number '${digit}', found '${line[0]}'`, number, 1);
  const expected = tleChecksum(line);
  if (line[68] !== String(expected)) return fail(`checksum is '${line[68]}' but columns 1-68 sum to ${expected} (mod 10)`, number, 69);
  return null;
}

function detect(text: string): ElementsFormat {
  const first = text.split(/\r?\n/).find((l) => l.trim()) ?? "";
  if (/^\s*[[{]/.test(first)) return "omm-json";
  if (first.includes("=") && !/^\s*[12] /.test(first)) return "omm-kvn";
  return "tle";
}

function checkTle(text: string): ElementsCheck {
  const rows = text
    .split(/\r?\n/)
    .map((raw, i) => ({ number: i + 1, line: raw.replace(/\s+$/, "") }))
    .filter((r) => r.line);
  let name = "";
  const head = rows.length === 3 ? rows.shift() : undefined;
  if (head) name = head.line.replace(/^0 /, "").trim();
  if (rows.length !== 2) return fail(`expected one TLE: two lines, or three with a name line first (found ${rows.length + (name ? 1 : 0)} lines)`);
  const [one, two] = rows as [{ number: number; line: string }, { number: number; line: string }];
  const problem = checkTleLine(one.line, "1", one.number) ?? checkTleLine(two.line, "2", two.number);
  if (problem) return problem;
  if (one.line.slice(2, 7) !== two.line.slice(2, 7)) {
    return fail(`satellite number '${two.line.slice(2, 7).trim()}' differs from '${one.line.slice(2, 7).trim()}' on line 1`, two.number, 3);
  }
  return { ok: true, format: "tle", name, line1: one.line, line2: two.line };
}

function checkOmm(record: Record<string, unknown>, format: ElementsFormat): ElementsCheck {
  const missing = OMM_REQUIRED.filter((key) => record[key] === undefined || record[key] === null || record[key] === "");
  if (missing.length) return fail(`the OMM lacks ${missing.join(", ")}`);
  for (const key of OMM_REQUIRED.slice(2)) {
    if (!Number.isFinite(Number(record[key]))) return fail(`${key} is not a number: ${String(record[key]).slice(0, 30)}`);
  }
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(String(record.EPOCH))) return fail(`EPOCH is not a UTC date-time: ${String(record.EPOCH).slice(0, 30)}`);
  const name = typeof record.OBJECT_NAME === "string" ? record.OBJECT_NAME.trim() : "";
  return { ok: true, format, name };
}

/** What the pasted or uploaded text is, or where it is wrong. */
export function checkElements(text: string): ElementsCheck {
  if (text.length > MAX_TEXT_CHARS) return fail(`at most ${MAX_TEXT_CHARS} characters, got ${text.length}`);
  if (!text.trim()) return fail("paste a TLE (two lines, or three with a name) or an OMM");
  const format = detect(text);
  if (format === "tle") return checkTle(text);
  if (format === "omm-json") {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (cause) {
      return fail(`not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`);
    }
    if (Array.isArray(value)) {
      if (value.length !== 1) return fail(`expected one OMM record, found ${value.length}`);
      value = value[0];
    }
    if (typeof value !== "object" || value === null) return fail("expected an OMM object");
    return checkOmm(value as Record<string, unknown>, format);
  }
  const record: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (!line || line.startsWith("COMMENT") || (!line.includes("=") && /_(START|STOP)$/.test(line))) continue;
    const match = /^([A-Z_][A-Z0-9_]*)\s*=\s*(.*?)\s*(\[[^\]]*\])?$/.exec(line);
    const [, key, value] = match ?? [];
    if (key === undefined || value === undefined) return fail(`expected KEY = value, found '${line.slice(0, 40)}'`, i + 1);
    record[key] = value;
  }
  return checkOmm(record, format);
}

export interface SatelliteFields {
  id: string;
  name: string;
  elements: string;
  memoryCapacityMb: string;
  energyPct: string;
}

/** Problems by field ("id", "name", "elements", ...); empty when the form may be sent. */
export function checkSatelliteForm(fields: SatelliteFields): Record<string, string> {
  const problems: Record<string, string> = {};
  if (!SAT_ID.test(fields.id)) problems.id = "1 to 64 of A-Z a-z 0-9 _ . -";
  if (!fields.name.trim() || fields.name.length > 128) problems.name = "1 to 128 characters";
  if (fields.elements.trim()) {
    const check = checkElements(fields.elements);
    if (!check.ok) problems.elements = check.message;
  }
  if (fields.memoryCapacityMb.trim()) {
    const capacity = Number(fields.memoryCapacityMb);
    if (!Number.isFinite(capacity) || capacity <= 0 || capacity > 1e12) problems.memoryCapacityMb = "a number of MB above 0";
  }
  if (fields.energyPct.trim()) {
    const energy = Number(fields.energyPct);
    if (!Number.isFinite(energy) || energy < 0 || energy > 100) problems.energyPct = "0 to 100 %";
  }
  return problems;
}

/** The POST /api/satellites body of a checked form (empty fields left to the defaults). */
export function satelliteBody(fields: SatelliteFields): Record<string, unknown> {
  const body: Record<string, unknown> = { id: fields.id, name: fields.name.trim() };
  if (fields.elements.trim()) body.elements = fields.elements;
  if (fields.memoryCapacityMb.trim()) body.memory_capacity_mb = Number(fields.memoryCapacityMb);
  if (fields.energyPct.trim()) body.energy_pct = Number(fields.energyPct);
  return body;
}
