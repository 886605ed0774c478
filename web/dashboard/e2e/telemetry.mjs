// Telemetry over a range and the exports, in real Chromium against the real stack
// (tests/test_dashboard_telemetry_e2e.py runs it). Env: DASHBOARD_URL, STELLAROPS_TOKEN (admin),
// E2E_OUT (screenshot, downloads and results.json), CHROMIUM. Every wait has a long bound.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { openSignedIn, runScenario } from "./harness.mjs";

const BASE = (process.env.DASHBOARD_URL ?? "").replace(/\/$/, "");
const TOKEN = process.env.STELLAROPS_TOKEN ?? "";
const OUT = process.env.E2E_OUT ?? "test-output/dashboard-telemetry";
const WAIT_MS = 60_000;
const SAT = "demo-01";
fs.mkdirSync(OUT, { recursive: true });

async function api(method, route, body) {
  const response = await fetch(`${BASE}${route}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${route}: HTTP ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const { browser, page, pageErrors } = await openSignedIn({ token: TOKEN, waitMs: WAIT_MS, contextOptions: { acceptDownloads: true } });

/** Click ``button`` and return the text of the file the page saves. */
async function download(button, name) {
  const [file] = await Promise.all([page.waitForEvent("download"), page.locator(button).click()]);
  const target = path.join(OUT, name);
  await file.saveAs(target);
  return { suggested: file.suggestedFilename(), text: fs.readFileSync(target, "utf8") };
}

/** Poll ``probe`` until it returns a value other than null, for at most WAIT_MS. */
async function waitFor(probe, what) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const windowLocator = page.locator("[data-testid=telemetry-window]");
const points = () => page.locator("[data-testid=chart-energy]").getAttribute("data-points").then(Number);
await runScenario({
  browser,
  pageErrors,
  out: OUT,
  result: { ok: false },
  scenario: async (result) => {
    await page.goto(`${BASE}/#/sat/${SAT}`);
    await page.locator("[data-testid=sat-detail]").waitFor();
    // The default: the last hour in 10 s buckets, live.
    await page.locator("[data-testid=telemetry-window][data-step='10'][data-live=true]").waitFor();
    await page.waitForFunction(() => Number(document.querySelector("[data-testid=chart-energy]")?.dataset.points) >= 3);

    // Another range: the last 6 h in 60 s buckets; then 15 min in 2 s buckets, still live.
    await page.locator("[data-range='21600']").click();
    await page.locator("[data-testid=telemetry-window][data-step='60'][data-live=true]").waitFor();
    await page.locator("[data-range='900']").click();
    await page.locator("[data-testid=telemetry-window][data-step='2'][data-live=true]").waitFor();
    await page.waitForFunction(() => Number(document.querySelector("[data-testid=chart-energy]")?.dataset.points) >= 3);
    // Live: the tail grows while the range ends now.
    const before = await points();
    await page.waitForFunction((n) => Number(document.querySelector("[data-testid=chart-energy]")?.dataset.points) > n, before);
    result.live_points = [before, await points()];

    // A custom range in UTC: from 10 minutes ago to now; not live. The live chart's tail comes
    // from the event stream, a custom range only from stored rows, and the page asks once: wait
    // until the store holds three of its 2 s buckets (writes trail the stream by a batch).
    const now = Date.now();
    const utc = (ms) => new Date(ms).toISOString().slice(0, 16);
    const fromIso = new Date(utc(now - 10 * 60_000) + "Z").toISOString();
    const toIso = new Date(utc(now + 60_000) + "Z").toISOString();
    result.stored_buckets = await waitFor(async () => {
      const query = new URLSearchParams({ from: fromIso, to: toIso, step: "2" });
      const stored = await api("GET", `/api/satellites/${SAT}/telemetry?${query}`);
      return stored.items.length >= 3 ? stored.items.length : null;
    }, "three stored 2 s buckets of telemetry");
    await page.locator("[data-range=custom]").click();
    await page.getByLabel("from (UTC)").fill(utc(now - 10 * 60_000));
    await page.getByLabel("to (UTC)").fill(utc(now + 60_000));
    await page.getByRole("button", { name: "Show" }).click();
    await page.locator("[data-testid=telemetry-window][data-live=false]").waitFor();
    result.custom_window = await windowLocator.textContent();
    await page.waitForFunction(() => Number(document.querySelector("[data-testid=chart-energy]")?.dataset.points) >= 3);
    // A range the server would refuse is refused in the page.
    await page.getByLabel("to (UTC)").fill(utc(now - 20 * 60_000));
    assert.ok(await page.getByRole("button", { name: "Show" }).isDisabled());
    await page.locator("text=from must be before to").waitFor();
    await page.getByLabel("to (UTC)").fill(utc(now + 60_000));

    // Export the range's raw samples as CSV.
    const telemetry = await download("[data-testid=export-telemetry]", "telemetry.csv");
    const lines = telemetry.text.trim().split("\n");
    assert.equal(lines[0], "time,satellite_id,energy_pct,memory_used_mb,mode,lat_deg,lon_deg,alt_km,in_sunlight");
    assert.ok(lines.length >= 4, `only ${lines.length} lines`);
    assert.ok(lines.slice(1).every((l) => l.split(",")[1] === SAT));
    assert.match(telemetry.suggested, new RegExp(`^${SAT}_telemetry_\\d{8}T\\d{6}Z_\\d{8}T\\d{6}Z\\.csv$`));
    await page.locator("[data-testid=export-message]", { hasText: "saved" }).waitFor();
    result.telemetry_rows = lines.length - 1;
    await page.screenshot({ path: path.join(OUT, "telemetry.png") });

    // The command history: a command sent over HTTP, found by its filters, exported.
    const sent = await api("POST", "/api/satellites/demo-02/commands", { kind: "noop" });
    await page.goto(`${BASE}/#/commands`);
    await page.locator("[data-testid=command-history]").waitFor();
    await page.getByLabel("satellite").fill("demo-02");
    await page.getByLabel("kind").selectOption("noop");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.locator(`[data-testid=command-history] tr[data-command="${sent.id}"]`).waitFor();
    const rows = await page.locator("[data-testid=command-history] tbody tr").allTextContents();
    assert.ok(rows.every((r) => r.includes("demo-02") && r.includes("noop")), rows.join("\n"));
    const commands = await download("[data-testid=export-commands]", "commands.csv");
    assert.ok(commands.text.startsWith("id,satellite_id,kind,"), commands.text.slice(0, 80));
    assert.ok(commands.text.includes(sent.id));
    assert.match(commands.suggested, /^commands_demo-02_\d{8}T\d{6}Z\.csv$/);
    result.command_rows = commands.text.trim().split("\n").length - 1;
    await page.screenshot({ path: path.join(OUT, "commands.png") });
  },
});
