// Alarms and limits in real Chromium against the real stack (tests/test_dashboard_alarms_e2e.py runs it):
// a limit set in the limit editor raises an alarm on a real satellite (badge, map ring, list mark),
// acknowledged with a comment, shelved for a short while, back unacknowledged when the shelf expires.
// Env: DASHBOARD_URL, STELLAROPS_TOKEN (admin), E2E_OUT (screenshots and results.json), CHROMIUM.
// Every wait has a long bound (the machine is shared).

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { openSignedIn, runScenario } from "./harness.mjs";

const BASE = (process.env.DASHBOARD_URL ?? "").replace(/\/$/, "");
const TOKEN = process.env.STELLAROPS_TOKEN ?? "";
const OUT = process.env.E2E_OUT ?? "test-output/dashboard-alarms";
const WAIT_MS = 60_000;
const SAT = `e2e-lim-${Date.now()}`;
fs.mkdirSync(OUT, { recursive: true });

async function api(method, route, body) {
  const response = await fetch(`${BASE}${route}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const { browser, page, pageErrors } = await openSignedIn({ token: TOKEN, waitMs: WAIT_MS, expectedConsole: /status of 422/ });
page.on("dialog", (dialog) => void dialog.accept());

await runScenario({
  browser,
  pageErrors,
  out: OUT,
  result: { ok: false, sat: SAT },
  scenario: async (result) => {
    // Energy 50 % in safe mode: it stays near 50 % for minutes.
    await api("POST", "/api/satellites", { id: SAT, name: "E2E limits", mode: "safe", energy_pct: 50 });
    await page.goto(`${BASE}/#/alarms`);
    await page.locator("[data-testid=limit-editor] [data-limit='fleet/energy_pct']").waitFor();

    // Refused by the server, nothing stored: warning low above warning high.
    await page.getByTestId("limit-new").click();
    const form = page.getByTestId("limit-form");
    await form.getByLabel("satellite").fill(SAT);
    await form.getByLabel("warning_low").fill("80");
    await form.getByLabel("warning_high").fill("70");
    await form.getByRole("button", { name: "Save" }).click();
    await page.getByTestId("limit-error").filter({ hasText: "warning_low" }).waitFor();

    // A limit this satellite breaks: warning below 90 %.
    await form.getByLabel("warning_high").fill("");
    await form.getByLabel("warning_low").fill("90");
    await form.getByLabel("persistence").fill("2");
    await form.getByRole("button", { name: "Save" }).click();
    await page.locator(`[data-testid=limits] [data-limit='${SAT}/energy_pct']`).waitFor();

    const row = page.locator("tr[data-alarm]", { hasText: SAT });
    await row.filter({ hasText: "low_energy" }).waitFor({ timeout: WAIT_MS });
    result.alarm_id = Number(await row.first().getAttribute("data-alarm"));
    await page.locator("[data-testid=alarm-badge][data-worst=warning]").waitFor();
    await page.screenshot({ path: path.join(OUT, "alarm-raised.png") });

    // Acknowledge with a comment.
    await page.getByLabel("comment").fill("e2e: looking into it");
    await row.getByRole("button", { name: "Acknowledge" }).click();
    await page.locator(`tr[data-alarm="${result.alarm_id}"][data-state=acknowledged]`).waitFor();
    assert.match(await row.first().textContent(), /looking into it/);

    // Marked on the satellite list and on the map.
    await page.goto(`${BASE}/#/satellites`);
    await page.locator(`tr[data-sat="${SAT}"][data-alarm-severity=warning]`).waitFor();
    await page.goto(`${BASE}/#/map`);
    await page.locator("[data-testid=map-alarms]", { hasText: SAT }).waitFor();
    await page.screenshot({ path: path.join(OUT, "map.png") });

    // Shelved from the page for its shortest choice (1 min): back, unacknowledged, at expiry.
    await page.goto(`${BASE}/#/alarms`);
    await page.getByLabel("shelve duration").selectOption("60");
    await row.getByRole("button", { name: "Shelve" }).click();
    await page.locator(`tr[data-alarm="${result.alarm_id}"][data-state=shelved]`).waitFor();
    await page.screenshot({ path: path.join(OUT, "alarm-shelved.png") });
    await page.locator(`tr[data-alarm="${result.alarm_id}"][data-state=unacknowledged]`).waitFor({ timeout: 120_000 });
    await row.getByRole("button", { name: "History" }).click();
    const transitions = await page.locator("[data-testid=alarm-history] li").evaluateAll((items) => items.map((li) => li.dataset.transition));
    assert.deepEqual(transitions, ["raised", "acknowledged", "shelved", "unshelved"]);
    result.transitions = transitions;
    await page.screenshot({ path: path.join(OUT, "alarm-back.png") });

    await api("DELETE", `/api/satellites/${SAT}`);
  },
});
