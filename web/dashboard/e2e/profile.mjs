// Where the dashboard's main-thread time goes: a V8 CPU profile (CDP Profiler) of the map view, or
// of the satellites list, with a live constellation; prints the functions with the most self time
// and the share of GC, rendering ("(program)": layout, paint, style) and idle. Used by
// bench/dashboard_bench.py --profile-s, and by hand: DASHBOARD_URL, STELLAROPS_TOKEN,
// PROFILE_S (15), PROFILE_VIEW (map | satellites | reference), PROFILE_TOP (25), PROFILE_OUT (JSON).

import { writeFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { referenceHtml } from "./reference.mjs";

const BASE = (process.env.DASHBOARD_URL ?? "").replace(/\/$/, "");
const TOKEN = process.env.STELLAROPS_TOKEN ?? "";
const SECONDS = Number(process.env.PROFILE_S ?? 15);
const VIEW = process.env.PROFILE_VIEW ?? "map";
const TOP = Number(process.env.PROFILE_TOP ?? 25);
const OUT = process.env.PROFILE_OUT;
if (!BASE || !TOKEN) throw new Error("DASHBOARD_URL and STELLAROPS_TOKEN are required");

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Self time per function (ms) from a CDP profile: samples × their intervals. */
export function selfTimes(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i += 1) {
    const node = byId.get(profile.samples[i]);
    const dtMs = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const f = node.callFrame;
    const file = f.url ? f.url.split("/").pop() : "";
    const key = `${f.functionName || "(anonymous)"} ${file}${f.url ? `:${f.lineNumber + 1}:${f.columnNumber + 1}` : ""}`.trim();
    self.set(key, (self.get(key) ?? 0) + dtMs);
  }
  return self;
}

export async function profilePage(cdp, seconds) {
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 500 });
  await cdp.send("Profiler.start");
  await sleep(seconds * 1000);
  const { profile } = await cdp.send("Profiler.stop");
  const self = selfTimes(profile);
  const wallMs = (profile.endTime - profile.startTime) / 1000;
  const rows = [...self].sort((a, b) => b[1] - a[1]);
  const idle = self.get("(idle)") ?? 0;
  return {
    wall_ms: Math.round(wallMs),
    busy_ms_per_s: Math.round(((wallMs - idle) / wallMs) * 1000 * 10) / 10,
    top: rows.filter(([k]) => k !== "(idle)").slice(0, TOP).map(([k, ms]) => ({ fn: k, ms_per_s: Math.round((ms / wallMs) * 1000 * 100) / 100 })),
  };
}

async function main() {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"] });
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    if (VIEW === "reference") {
      await page.route(`${BASE}/__reference.html`, (route) => route.fulfill({ contentType: "text/html", body: referenceHtml(TOKEN) }));
      await page.goto(`${BASE}/__reference.html`);
      await page.unrouteAll();
    } else await page.goto(`${BASE}/#token=${encodeURIComponent(TOKEN)}`);
    if (VIEW === "satellites") await page.evaluate(() => (window.location.hash = "#/satellites"));
    if (VIEW === "satellites") await page.waitForSelector("tr[data-sat]", { timeout: 120_000 });
    else await page.waitForFunction(() => Number(document.querySelector("canvas")?.dataset.drawnSats ?? 0) > 0, null, { timeout: 120_000 });
    await sleep(5000);
    const result = await profilePage(cdp, SECONDS);
    console.log(`${VIEW}: busy ${result.busy_ms_per_s} ms/s over ${result.wall_ms} ms (CPU profile)`);
    for (const row of result.top) console.log(`  ${String(row.ms_per_s).padStart(8)} ms/s  ${row.fn}`);
    if (OUT) writeFileSync(OUT, JSON.stringify(result, null, 2) + "\n");
  } finally {
    await browser.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main().catch((error) => {
  console.error(error);
  process.exit(1);
});
