// A catalog of element sets pasted or uploaded for an import: CelesTrak's text form (a name line
// then the two TLE lines of each satellite, the name line optional). Each set is checked as the
// new-satellite form checks one; a satellite is named by its name line, else by its catalog
// number, and its id is "norad-" and the catalog number. Pure functions (catalog.test.ts).

import { checkTleLine } from "./elements";

export interface CatalogEntry {
  id: string;
  name: string;
  line1: string;
  line2: string;
}

export interface CatalogParse {
  entries: CatalogEntry[];
  /** where and what, as the gateway says it: "line 7, column 69: checksum ..." */
  problems: string[];
}

/** Satellites per import request: well within the gateway's default 64 KiB body. */
export const IMPORT_CHUNK = 100;
const MAX_NAME = 128;

/** The entries of a catalog text, or the problems that keep it from being imported. */
export function parseCatalog(text: string): CatalogParse {
  const rows = text
    .split(/\r?\n/)
    .map((raw, i) => ({ number: i + 1, line: raw.replace(/\s+$/, "") }))
    .filter((r) => r.line);
  const entries: CatalogEntry[] = [];
  const problems: string[] = [];
  const seen = new Map<string, number>();
  let i = 0;
  for (let head = rows[i]; head !== undefined; head = rows[i]) {
    const named = !/^1 /.test(head.line);
    const one = named ? rows[i + 1] : head;
    const two = named ? rows[i + 2] : rows[i + 1];
    i += named ? 3 : 2;
    if (!one || !two) {
      problems.push(`line ${head.number}: a satellite needs two TLE lines after its name line`);
      break;
    }
    const problem = checkTleLine(one.line, "1", one.number) ?? checkTleLine(two.line, "2", two.number);
    if (problem && !problem.ok) {
      problems.push(problem.message);
      continue;
    }
    const number = one.line.slice(2, 7).trim();
    if (two.line.slice(2, 7).trim() !== number) {
      problems.push(`line ${two.number}, column 3: satellite number '${two.line.slice(2, 7).trim()}' differs from '${number}' on line ${one.number}`);
      continue;
    }
    const id = `norad-${number}`;
    const earlier = seen.get(id);
    if (earlier !== undefined) {
      problems.push(`line ${one.number}: satellite ${number} is already on line ${earlier}`);
      continue;
    }
    seen.set(id, one.number);
    const name = named ? head.line.replace(/^0 /, "").trim().slice(0, MAX_NAME) : "";
    entries.push({ id, name: name || `NORAD ${number}`, line1: one.line, line2: two.line });
  }
  return { entries, problems };
}

/** An entry as POST /api/satellites(/import) takes it. */
export function entryBody(entry: CatalogEntry): Record<string, unknown> {
  return { id: entry.id, name: entry.name, tle: { line1: entry.line1, line2: entry.line2 } };
}

/** ``items`` in requests of at most ``size``. */
export function chunked<T>(items: readonly T[], size = IMPORT_CHUNK): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += size) out.push(items.slice(start, start + size));
  return out;
}
