// Managing the constellation in real Chromium against the real stack (tests/test_dashboard_manage_e2e.py
// runs it): a new satellite from a pasted TLE (a bad checksum refused first, naming line and column),
// seen on the map; its page (the mode dropdown shows the current mode; a satellite without a TLE says
// "no orbit"); new elements uploaded as a file; a catalog of three imported, then again (they exist); a
// ground station edited, taken down and brought back; the satellite deleted after a
// confirmation. Env: DASHBOARD_URL, STELLAROPS_TOKEN (admin), E2E_TLE and E2E_TLE2 (fresh two-line
// element sets of one satellite), DEMO_COUNT, E2E_OUT, CHROMIUM. Every wait has a long bound.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { openSignedIn, runScenario } from "./harness.mjs";

const BASE = (process.env.DASHBOARD_URL ?? "").replace(/\/$/, "");
const TOKEN = process.env.STELLAROPS_TOKEN ?? "";
const TLE = (process.env.E2E_TLE ?? "").trim();
const TLE2 = (process.env.E2E_TLE2 ?? "").trim(); // the elements uploaded as an update
const DEMO_COUNT = Number(process.env.DEMO_COUNT ?? "0");
const OUT = process.env.E2E_OUT ?? "test-output/dashboard-manage";
const WAIT_MS = 60_000;
const SAT = "e2e-new";
fs.mkdirSync(OUT, { recursive: true });

const { browser, page, pageErrors } = await openSignedIn({ token: TOKEN, waitMs: WAIT_MS, expectedConsole: /status of 409/ });
const api = (method, url, data) =>
  page.request.fetch(`${BASE}${url}`, { method, data, headers: { Authorization: `Bearer ${TOKEN}` }, failOnStatusCode: true });
const drawn = () => page.locator("canvas[data-testid=map]").evaluate((c) => Number(c.dataset.drawnSats));

/** A TLE line under another catalog number, with its checksum (digits summed, '-' as 1). */
function renumber(line, number) {
  const body = line.slice(0, 2) + String(number).padStart(5, "0") + line.slice(7, 68);
  const sum = [...body].reduce((acc, c) => acc + (c === "-" ? 1 : c >= "0" && c <= "9" ? Number(c) : 0), 0);
  return body + String(sum % 10);
}

await runScenario({
  browser,
  pageErrors,
  out: OUT,
  result: { ok: false },
  scenario: async (result) => {
    const [line1, line2] = TLE.split("\n").map((l) => l.trim());
    assert.equal(line2?.length, 69, "E2E_TLE must hold two TLE lines");

    // The form, from the satellite list: a bad checksum is refused in the page, naming line and column.
    await page.goto(`${BASE}/#/satellites`);
    await page.locator("[data-testid=new-satellite]").click();
    await page.locator("[data-testid=satellite-form]").waitFor();
    await page.getByLabel("satellite id").fill(SAT);
    const broken = line2.slice(0, 68) + String((Number(line2[68]) + 1) % 10);
    await page.getByLabel("elements", { exact: true }).fill(`E2E NEW\n${line1}\n${broken}`);
    await page.locator("[data-testid=elements-check]", { hasText: "line 3, column 69: checksum" }).waitFor();
    await page.getByRole("button", { name: "Create" }).click();
    await page.locator("[data-testid=form-message]", { hasText: "elements" }).waitFor();
    result.refused = await page.locator("[data-testid=elements-check]").textContent();

    // The good TLE pasted (the name comes from its name line): created, then on the map.
    await page.getByLabel("elements", { exact: true }).fill(`E2E NEW\n${line1}\n${line2}\n`);
    await page.locator("[data-testid=elements-check]", { hasText: "TLE: E2E NEW" }).waitFor();
    assert.equal(await page.getByLabel("satellite name").inputValue(), "E2E NEW");
    await page.getByRole("button", { name: "Create" }).click();
    await page.waitForURL(new RegExp(`#/map/${SAT}$`));
    await page.waitForFunction((n) => Number(document.querySelector("canvas[data-testid=map]")?.dataset.drawnSats) === n, DEMO_COUNT + 1);
    await page.locator("[data-testid=map-selected]", { hasText: SAT }).waitFor();
    await page.locator("[data-testid=map-selected]", { hasText: "period" }).waitFor();
    result.drawn = await drawn();
    await page.screenshot({ path: path.join(OUT, "new-satellite-on-map.png") });

    // Its page: the orbit it flies. A demo satellite in science shows science in the mode dropdown;
    // a satellite without a TLE says it has no orbit (not "no pass").
    await api("PATCH", "/api/satellites/demo-01", { mode: "science" });
    await page.goto(`${BASE}/#/sat/demo-01`);
    await page.locator("[data-testid=detail-mode]", { hasText: "science" }).waitFor();
    assert.equal(await page.getByLabel("new mode").inputValue(), "science");
    await api("POST", "/api/satellites", { id: "e2e-no-tle", name: "No TLE" });
    await page.goto(`${BASE}/#/sat/e2e-no-tle`);
    await page.locator("[data-testid=passes-note]", { hasText: "no orbit (no TLE)" }).waitFor();
    await page.goto(`${BASE}/#/sat/${SAT}`);
    await page.locator("[data-testid=current-tle]", { hasText: line2 }).waitFor();

    // New elements uploaded as a file: flown, the old ones in the history.
    const newLine2 = TLE2.split("\n")[1].trim();
    await page.getByLabel("new elements file").setInputFiles({ name: "update.tle", mimeType: "text/plain", buffer: Buffer.from(`E2E NEW\n${TLE2}\n`) });
    await page.getByRole("button", { name: "Update TLE" }).click();
    await page.locator("[data-testid=manage-message]", { hasText: "flown from the next tick" }).waitFor();
    await page.locator("[data-testid=current-tle]", { hasText: newLine2 }).waitFor();
    await page.locator("[data-testid=tle-history] summary", { hasText: "2 element set(s)" }).waitFor();
    result.history = await (await api("GET", `/api/satellites/${SAT}/tle-history`)).json();
    await page.screenshot({ path: path.join(OUT, "satellite-orbit.png") });

    // A catalog imported: three satellites as CelesTrak's text, then the same file uploaded
    // again (they exist: counted, not failed).
    const catalog = [1, 2, 3].map((k) => `E2E CAT ${k}\n${renumber(line1, 90200 + k)}\n${renumber(line2, 90200 + k)}`).join("\n");
    await page.goto(`${BASE}/#/new-satellite`);
    await page.getByLabel("catalog", { exact: true }).fill(catalog);
    await page.locator("[data-testid=catalog-check]", { hasText: "3 satellite(s)" }).waitFor();
    await page.getByRole("button", { name: "Import 3 satellite(s)" }).click();
    await page.locator("[data-testid=import-result]", { hasText: "created 3, already there 0, failed 0" }).waitFor();
    await page.getByLabel("catalog file").setInputFiles({ name: "catalog.tle", mimeType: "text/plain", buffer: Buffer.from(catalog) });
    await page.getByRole("button", { name: "Import 3 satellite(s)" }).click();
    await page.locator("[data-testid=import-result]", { hasText: "created 0, already there 3, failed 0" }).waitFor();
    result.imported = await (await api("GET", "/api/satellites/norad-90202")).json();
    await page.screenshot({ path: path.join(OUT, "catalog-import.png") });

    // A station edited (its mask), taken down, brought back.
    await page.goto(`${BASE}/#/stations`);
    const row = page.locator("[data-testid=station-list] tr[data-station=svalbard]");
    await row.getByRole("button", { name: "Edit" }).click();
    await page.getByLabel("station mask °").fill("12.5");
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator("[data-testid=station-message]", { hasText: "saved svalbard" }).waitFor();
    await row.locator("[data-testid=station-mask]", { hasText: "12.5°" }).waitFor();
    result.station_message = await page.locator("[data-testid=station-message]").textContent();
    await row.getByRole("button", { name: "Take down" }).click();
    await page.locator("[data-testid=station-list] tr[data-station=svalbard][data-active=false]").waitFor();
    await page.screenshot({ path: path.join(OUT, "stations.png") });
    await row.getByRole("button", { name: "Bring back" }).click();
    await page.locator("[data-testid=station-list] tr[data-station=svalbard][data-active=true]").waitFor();
    const stored = await (await api("GET", "/api/ground-stations")).json();
    result.svalbard = stored.items.find((s) => s.id === "svalbard");

    // The satellite deleted, after a confirmation.
    await page.goto(`${BASE}/#/sat/${SAT}`);
    await page.getByRole("button", { name: "Delete satellite" }).click();
    await page.getByRole("button", { name: `Yes, delete ${SAT}` }).click();
    await page.waitForURL(/#\/satellites$/);
    const gone = await page.request.fetch(`${BASE}/api/satellites/${SAT}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    result.deleted_status = gone.status();
  },
});
