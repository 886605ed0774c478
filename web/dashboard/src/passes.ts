// Passes indexed by satellite, for "next pass" lookups every second.

import type { Pass } from "./api/types";

export interface TimedPass {
  pass: Pass;
  aosMs: number;
  losMs: number;
}

/** satellite id -> its passes by AOS, times parsed once (1,000 satellites have ~10,000 passes
 * in 12 h: the list asks for the next one of each every second). */
export function indexPasses(passes: Pass[] | undefined): Map<string, TimedPass[]> {
  const index = new Map<string, TimedPass[]>();
  for (const pass of passes ?? []) {
    const list = index.get(pass.satellite_id) ?? [];
    list.push({ pass, aosMs: Date.parse(pass.aos), losMs: Date.parse(pass.los) });
    index.set(pass.satellite_id, list);
  }
  for (const list of index.values()) list.sort((a, b) => a.aosMs - b.aosMs);
  return index;
}

/** The pass in progress, or the first one after now. */
export function nextPass(index: Map<string, TimedPass[]>, satId: string, nowMs: number): TimedPass | undefined {
  return index.get(satId)?.find((p) => p.losMs >= nowMs);
}
