// Browser benchmark of the dashboard with a live constellation: first render of the map, main-thread
// long tasks and CPU on the map and the satellites list, JS heap over time; beside it, in the same
// run, a bare reference page doing the minimum of the same job (read /api/events, draw the dots).
// Started by bench/dashboard_bench.py, which runs the stack. Env: DASHBOARD_URL, STELLAROPS_TOKEN,
// BENCH_LONGTASK_S (60), BENCH_MEMORY_S (300), BENCH_OUT (the results as JSON).

import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { referenceHtml } from "./reference.mjs";

const BASE = (process.env.DASHBOARD_URL ?? "").replace(/\/$/, "");
const TOKEN = process.env.STELLAROPS_TOKEN ?? "";
const LONGTASK_S = Number(process.env.BENCH_LONGTASK_S ?? 60);
const MEMORY_S = Number(process.env.BENCH_MEMORY_S ?? 300);
const OUT = process.env.BENCH_OUT;
const FIRST_RENDER_RUNS = 3;
const WARMUP_S = 5; // after the map is drawn: the first snapshot and queries settle
const MEMORY_EVERY_S = 10;
const MEMORY_WARMUP_S = 30;
const FLAT_TOLERANCE = 0.1;
const MAP = "canvas[data-testid=map]";
const REFERENCE_PATH = "/__bench_reference.html";

if (!BASE || !TOKEN) throw new Error("DASHBOARD_URL and STELLAROPS_TOKEN are required");
// "Flat" compares the first minute after the warm-up with the last minute: a shorter run would
// compare samples with themselves, and could not fail.
const MEMORY_MIN_S = MEMORY_WARMUP_S + 120;
if (!(MEMORY_S >= MEMORY_MIN_S)) {
  console.error(`BENCH_MEMORY_S=${MEMORY_S}: at least ${MEMORY_MIN_S} s are needed (a ${MEMORY_WARMUP_S} s warm-up, then two disjoint minutes)`);
  process.exit(2);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const round = (x, digits = 1) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);

// Every page records its long tasks from the start (buffered: those before the observer too).
function recordLongTasks() {
  window.__longtasks = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longtasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: "longtask", buffered: true });
  } catch {
    // not supported: stays empty, reported as such
  }
}

async function satelliteCount() {
  const response = await fetch(`${BASE}/api/satellites?limit=1`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  if (!response.ok) throw new Error(`GET /api/satellites: HTTP ${response.status}`);
  return (await response.json()).total;
}

// CPU seconds of one Chromium (its browser process, tagged --bench-tag=TAG on its command line,
// and every process under it), from /proc.
function chromiumCpuS(tag) {
  const parent = new Map();
  const ticks = new Map();
  let rootPid = -1;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const fields = readFileSync(`/proc/${name}/stat`, "utf8").split(") ")[1].split(" ");
      parent.set(Number(name), Number(fields[1]));
      ticks.set(Number(name), Number(fields[11]) + Number(fields[12]));
      if (Number(fields[1]) === process.pid && readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").includes(`--bench-tag=${tag}`)) rootPid = Number(name);
    } catch {
      // gone meanwhile
    }
  }
  const inTree = (pid) => {
    for (let p = parent.get(pid) ?? 0; p > 1; p = parent.get(p) ?? 0) if (p === rootPid) return true;
    return false;
  };
  let total = ticks.get(rootPid) ?? 0;
  for (const [pid, t] of ticks) if (inTree(pid)) total += t;
  return total / 100; // USER_HZ: 100 on Linux
}

async function openPage(browser) {
  browser.benchTag ??= "ours";
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.addInitScript(recordLongTasks);
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  return { context, page, cdp, tag: browser.benchTag };
}

async function metrics(cdp) {
  const { metrics: list } = await cdp.send("Performance.getMetrics");
  return Object.fromEntries(list.map((m) => [m.name, m.value]));
}

/** Resolves with performance.now() (ms since navigation start) at the first frame where the map
 * shows at least `count` satellites. */
async function mapDrawn(page, count, timeoutMs = 120_000) {
  const handle = await page.waitForFunction(
    ({ selector, n }) => {
      const canvas = document.querySelector(selector);
      return canvas && Number(canvas.dataset.drawnSats ?? 0) >= n ? performance.now() : false;
    },
    { selector: MAP, n: count },
    { polling: "raf", timeout: timeoutMs },
  );
  return handle.jsonValue();
}

async function openDashboard(browser, count) {
  const session = await openPage(browser);
  await session.page.goto(`${BASE}/#token=${encodeURIComponent(TOKEN)}`);
  session.firstRenderMs = await mapDrawn(session.page, count);
  return session;
}

/** Durations of the long tasks that started between two performance.now() readings. */
function longTasks(page, from, to) {
  return page.evaluate(([a, b]) => window.__longtasks.filter((e) => e.start >= a && e.start < b).map((e) => e.duration), [from, to]);
}

async function firstRender(browser, count) {
  const { context, page, firstRenderMs } = await openDashboard(browser, count);
  // Where the time went: the page itself, and the satellites snapshot over REST.
  const detail = await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const sats = performance.getEntriesByType("resource").filter((e) => e.name.includes("/api/satellites"));
    return {
      dom_content_loaded_ms: nav?.domContentLoadedEventEnd ?? null,
      load_ms: nav?.loadEventEnd ?? null,
      satellites_request_start_ms: sats[0]?.startTime ?? null,
      satellites_response_end_ms: sats[0]?.responseEnd ?? null,
    };
  });
  const tasks = await longTasks(page, 0, firstRenderMs);
  await context.close();
  return { ms: round(firstRenderMs), ...Object.fromEntries(Object.entries(detail).map(([k, v]) => [k, round(v)])), long_tasks_ms: tasks.map((d) => round(d)) };
}

async function heapAfterGc({ page, cdp }) {
  await cdp.send("HeapProfiler.collectGarbage");
  const m = await metrics(cdp);
  return {
    used_js_heap: await page.evaluate(() => performance.memory?.usedJSHeapSize ?? null),
    cdp_js_heap_used: m.JSHeapUsedSize,
    dom_nodes: m.Nodes,
    js_event_listeners: m.JSEventListeners,
  };
}

/** Long tasks, main-thread time (CDP TaskDuration etc.: renderer main thread, seconds) and
 * redraws over `seconds`; then the heap after a GC (outside the window: a forced GC is a long task). */
async function observe(session, seconds) {
  const { page, cdp, tag } = session;
  const draws = () => page.evaluate(() => ({ draws: Number(document.querySelector("canvas")?.dataset.draws ?? 0), events: window.__events ?? null }));
  const [m0, t0, c0, d0, cpu0] = [await metrics(cdp), await page.evaluate(() => performance.now()), Date.now(), await draws(), chromiumCpuS(tag)];
  await sleep(seconds * 1000);
  const [m1, t1, c1, d1, cpu1] = [await metrics(cdp), await page.evaluate(() => performance.now()), Date.now(), await draws(), chromiumCpuS(tag)];
  await sleep(200); // let the observer deliver tasks that ended at the edge
  const tasks = await longTasks(page, t0, t1);
  const wall = (c1 - c0) / 1000;
  const perS = (name) => round(((m1[name] - m0[name]) * 1000) / wall, 2);
  return {
    seconds: round(wall),
    long_tasks: tasks.length,
    long_tasks_per_min: round((tasks.length * 60) / wall, 2),
    long_task_max_ms: tasks.length ? round(Math.max(...tasks)) : 0,
    long_task_total_ms: round(tasks.reduce((a, b) => a + b, 0)),
    long_task_durations_ms: tasks.map((d) => round(d)),
    main_thread_busy_ms_per_s: perS("TaskDuration"),
    script_ms_per_s: perS("ScriptDuration"),
    layout_style_ms_per_s: round(perS("LayoutDuration") + perS("RecalcStyleDuration"), 2),
    draws: d1.draws - d0.draws,
    draws_per_s: round((d1.draws - d0.draws) / wall, 2),
    events_per_s: d0.events === null ? null : round((d1.events - d0.events) / wall),
    chromium_cpu_pct: round((100 * (cpu1 - cpu0)) / wall),
    heap_after: await heapAfterGc(session),
  };
}

/** JS heap after a forced GC every MEMORY_EVERY_S on a fresh map page; flat = the last minute's
 * average within FLAT_TOLERANCE of the first minute after the warm-up. */
async function memory(browser, count, seconds) {
  const session = await openDashboard(browser, count);
  const samples = [];
  const start = Date.now();
  for (let k = 0; k * MEMORY_EVERY_S <= seconds; k += 1) {
    await sleep(Math.max(0, start + k * MEMORY_EVERY_S * 1000 - Date.now()));
    samples.push({ t_s: round((Date.now() - start) / 1000), ...(await heapAfterGc(session)) });
    process.stdout.write(`  memory t=${samples.at(-1).t_s}s heap ${(samples.at(-1).used_js_heap / 1e6).toFixed(2)} MB${process.stdout.isTTY ? "\r" : "\n"}`);
  }
  if (process.stdout.isTTY) process.stdout.write("\n");
  await session.context.close();
  const warm = samples.filter((s) => s.t_s >= MEMORY_WARMUP_S);
  const firstSamples = warm.filter((s) => s.t_s < MEMORY_WARMUP_S + 60);
  const lastSamples = warm.filter((s) => s.t_s >= seconds - 60 && !firstSamples.includes(s));
  const [first, last] = [firstSamples, lastSamples].map((xs) => xs.map((s) => s.used_js_heap));
  // Least squares slope of heap against time, bytes per minute.
  const xs = warm.map((s) => s.t_s / 60);
  const ys = warm.map((s) => s.used_js_heap);
  const [mx, my] = [mean(xs), mean(ys)];
  const slope = xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0) / xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  const change = mean(last) / mean(first) - 1;
  return {
    seconds,
    samples,
    first_minute_avg: round(mean(first), 0),
    last_minute_avg: round(mean(last), 0),
    change_pct: round(100 * change, 2),
    slope_bytes_per_min: round(slope, 0),
    first_minute_samples: first.length,
    last_minute_samples: last.length,
    // Two disjoint windows of samples (a late sample cannot be in both), none of them empty.
    flat: first.length > 0 && last.length > 0 && Math.abs(change) <= FLAT_TOLERANCE,
  };
}

/** The reference page, open and drawing every satellite (warm-up included). */
async function openReference(browser, count) {
  const session = await openPage(browser);
  const { page } = session;
  // Served on the gateway's origin (same-origin fetch, no CORS), then the route is removed so
  // no request of the page goes through Playwright.
  await page.route(`${BASE}${REFERENCE_PATH}`, (route) => route.fulfill({ contentType: "text/html", body: referenceHtml(TOKEN) }));
  await page.goto(`${BASE}${REFERENCE_PATH}`);
  await page.unrouteAll();
  await page.waitForFunction((n) => Number(document.querySelector("canvas").dataset.drawnSats ?? 0) >= n, count, { polling: "raf", timeout: 120_000 });
  return session;
}

function table(rows, columns) {
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => String(r[i] ?? "—").length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c ?? "—").padEnd(widths[i]) : String(c ?? "—").padStart(widths[i]))).join("  ");
  console.log(line(columns));
  for (const r of rows) console.log(line(r));
}

async function main() {
  const count = await satelliteCount();
  // Two browsers: ours and the reference's, each with its own processes (tagged, for their CPU).
  const launch = (tag) =>
    chromium.launch({
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-precise-memory-info", `--bench-tag=${tag}`],
    });
  const browser = await launch("ours");
  const refBrowser = await launch("reference");
  browser.benchTag = "ours";
  refBrowser.benchTag = "reference";
  const results = { url: BASE, satellites: count, chromium: browser.version(), longtask_s: LONGTASK_S, memory_s: MEMORY_S };
  try {
    console.log(`${count} satellites, Chromium ${browser.version()}, ${BASE}`);
    const runs = [];
    for (let i = 0; i < FIRST_RENDER_RUNS; i += 1) runs.push(await firstRender(browser, count));
    results.first_render = { runs, median_ms: median(runs.map((r) => r.ms)) };
    console.log(`first render of the map (ms since navigation start): ${runs.map((r) => r.ms).join(", ")}; median ${results.first_render.median_ms}`);
    console.log(`  long tasks until then (ms): ${runs.map((r) => `[${r.long_tasks_ms.join(", ")}]`).join(" ")}`);

    // The map and the reference side by side over the same seconds: a machine shared with other
    // work slows both alike (measured one after the other, the load of the moment decided).
    console.log(`map view and reference page side by side for ${LONGTASK_S} s, then the satellites list for ${round(LONGTASK_S / 3)} s...`);
    const [dashboard, ref] = [await openDashboard(browser, count), await openReference(refBrowser, count)];
    await sleep(WARMUP_S * 1000);
    [results.map, results.reference] = await Promise.all([observe(dashboard, LONGTASK_S), observe(ref, LONGTASK_S)]);
    await ref.context.close();
    // The switch (the list fetches the passes of every satellite) is outside the steady-state
    // window; its long tasks are reported apart.
    const switchAt = await dashboard.page.evaluate(() => ((window.location.hash = "#/satellites"), performance.now()));
    await dashboard.page.waitForSelector("tr[data-sat]", { timeout: 120_000 });
    await sleep(WARMUP_S * 1000);
    const switchEnd = await dashboard.page.evaluate(() => performance.now());
    results.list = await observe(dashboard, LONGTASK_S / 3);
    results.list.switch_long_tasks_ms = (await longTasks(dashboard.page, switchAt, switchEnd)).map((d) => round(d));
    await dashboard.context.close();

    console.log(`memory on the map view for ${MEMORY_S} s (GC forced before each sample)...`);
    results.memory = await memory(browser, count, MEMORY_S);
  } finally {
    await browser.close();
    await refBrowser.close();
  }

  const { map, list, reference: ref, memory: mem } = results;
  const ratio = (a, b) => (b ? round(a / b, 2) : null);
  results.ratios = {
    main_thread_busy: ratio(map.main_thread_busy_ms_per_s, ref.main_thread_busy_ms_per_s),
    script: ratio(map.script_ms_per_s, ref.script_ms_per_s),
    chromium_cpu: ratio(map.chromium_cpu_pct, ref.chromium_cpu_pct),
    heap_after_gc: ratio(map.heap_after.used_js_heap, ref.heap_after.used_js_heap),
  };
  console.log("");
  const mb = (b) => round(b / 1e6, 2);
  table(
    [
      ["main-thread busy ms/s (CDP TaskDuration)", map.main_thread_busy_ms_per_s, list.main_thread_busy_ms_per_s, ref.main_thread_busy_ms_per_s, results.ratios.main_thread_busy],
      ["script ms/s (CDP ScriptDuration)", map.script_ms_per_s, list.script_ms_per_s, ref.script_ms_per_s, results.ratios.script],
      ["layout + style ms/s", map.layout_style_ms_per_s, list.layout_style_ms_per_s, ref.layout_style_ms_per_s, null],
      ["long tasks (> 50 ms)", map.long_tasks, list.long_tasks, ref.long_tasks, null],
      ["longest task ms", map.long_task_max_ms, list.long_task_max_ms, ref.long_task_max_ms, null],
      ["long tasks total ms", map.long_task_total_ms, list.long_task_total_ms, ref.long_task_total_ms, null],
      ["redraws /s", map.draws_per_s, null, ref.draws_per_s, null],
      ["Chromium CPU % (all processes)", map.chromium_cpu_pct, list.chromium_cpu_pct, ref.chromium_cpu_pct, results.ratios.chromium_cpu],
      ["JS heap after GC MB", mb(map.heap_after.used_js_heap), mb(list.heap_after.used_js_heap), mb(ref.heap_after.used_js_heap), results.ratios.heap_after_gc],
      ["window s", map.seconds, list.seconds, ref.seconds, null],
    ],
    ["", "ours: map", "ours: list", "reference", "map/ref"],
  );
  console.log(`long tasks while switching to the list (before its window, ms): [${list.switch_long_tasks_ms.join(", ")}]`);
  console.log(`reference received ${ref.events_per_s} telemetry events/s`);
  console.log(
    `memory: first minute after warm-up ${mb(mem.first_minute_avg)} MB, last minute ${mb(mem.last_minute_avg)} MB ` +
      `(${mem.change_pct >= 0 ? "+" : ""}${mem.change_pct}%), slope ${round(mem.slope_bytes_per_min / 1e3)} kB/min: ` +
      `${mem.flat ? "PASS" : "FAIL"} (flat = within ${FLAT_TOLERANCE * 100}%; ${mem.first_minute_samples} and ${mem.last_minute_samples} samples)`,
  );
  if (OUT) writeFileSync(OUT, JSON.stringify(results, null, 2) + "\n");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
