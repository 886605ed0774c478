import { describe, expect, it } from "vitest";
import { chunked, entryBody, parseCatalog } from "./catalog";
import { tleChecksum } from "./elements";

const L1 = "1 25544U 98067A   24001.50000000  .00016717  00000-0  10270-3 0  9009";
const L2 = "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.50377579 12348";
/** The same elements under another catalog number, with their checksums. */
function renumber(line: string, number: string): string {
  const body = line.slice(0, 2) + number + line.slice(7, 68);
  return body + String(tleChecksum(body));
}
const M1 = renumber(L1, "40001");
const M2 = renumber(L2, "40001");

describe("parseCatalog", () => {
  it("takes named and unnamed sets, as CelesTrak's text and as pasted (CRs, blanks)", () => {
    const parsed = parseCatalog(`ISS (ZARYA)\r\n${L1}  \r\n${L2}\r\n\r\n${M1}\n${M2}\n`);
    expect(parsed.problems).toEqual([]);
    expect(parsed.entries).toEqual([
      { id: "norad-25544", name: "ISS (ZARYA)", line1: L1, line2: L2 },
      { id: "norad-40001", name: "NORAD 40001", line1: M1, line2: M2 },
    ]);
    expect(parseCatalog(`0 ISS\n${L1}\n${L2}`).entries[0]?.name).toBe("ISS");
  });

  it("names the line and column of each bad set and keeps none of them", () => {
    const wrong = L2.slice(0, 68) + String((tleChecksum(L2) + 1) % 10);
    const parsed = parseCatalog(`A\n${L1}\n${wrong}\nB\n${M1}\n${M2}\nC\n${L1}\n${M2}\nD\n${L1}\n${L2}\n`);
    expect(parsed.entries.map((e) => e.id)).toEqual(["norad-40001", "norad-25544"]);
    expect(parsed.problems).toEqual([
      expect.stringMatching(/^line 3, column 69: checksum/),
      expect.stringMatching(/^line 9, column 3: satellite number '40001' differs from '25544'/),
    ]);
    expect(parseCatalog(`A\n${L1}\n${L2}\nB\n${L1}\n${L2}`).problems).toEqual(["line 5: satellite 25544 is already on line 2"]);
    expect(parseCatalog(`A\n${L1}`).problems).toEqual(["line 1: a satellite needs two TLE lines after its name line"]);
    expect(parseCatalog("").entries).toEqual([]);
  });
});

describe("an import's requests", () => {
  it("sends each entry as a creation body, at most a chunk a request", () => {
    const [entry] = parseCatalog(`${L1}\n${L2}`).entries;
    expect(entry && entryBody(entry)).toEqual({ id: "norad-25544", name: "NORAD 25544", tle: { line1: L1, line2: L2 } });
    expect(chunked([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunked([], 2)).toEqual([]);
  });
});
