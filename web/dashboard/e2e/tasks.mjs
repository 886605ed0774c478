// The Tasks view in real Chromium against the real stack (tests/test_dashboard_tasks_e2e.py runs it).
// Env: DASHBOARD_URL, STELLAROPS_TOKEN (admin), TARGET_LAT / TARGET_LON (a point under demo-01 soon),
// E2E_OUT (screenshot and results.json), CHROMIUM. Every wait has a long bound.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { openSignedIn, runScenario } from "./harness.mjs";

const BASE = (process.env.DASHBOARD_URL ?? "").replace(/\/$/, "");
const TOKEN = process.env.STELLAROPS_TOKEN ?? "";
const OUT = process.env.E2E_OUT ?? "test-output/dashboard-tasks";
const WAIT_MS = 60_000;
fs.mkdirSync(OUT, { recursive: true });

const { browser, page, pageErrors } = await openSignedIn({ token: TOKEN, waitMs: WAIT_MS, expectedConsole: /status of 422/ });

await runScenario({
  browser,
  pageErrors,
  out: OUT,
  result: { ok: false },
  scenario: async (result) => {
    await page.goto(`${BASE}/#/tasks`);
    await page.locator("[data-testid=tasks-timeline]").waitFor();
    await page.locator("[data-testid=task-form]").waitFor();
    const status = page.getByRole("status");

    // Checked in the page first: no target.
    await page.getByLabel("satellite").fill("demo-01");
    await page.getByRole("button", { name: "Submit" }).click();
    await status.filter({ hasText: "targetLat" }).waitFor();

    // Refused by the server, the field named: an unknown satellite.
    await page.getByLabel("target lat °").fill(process.env.TARGET_LAT ?? "0");
    await page.getByLabel("target lon °").fill(process.env.TARGET_LON ?? "0");
    await page.getByLabel("satellite").fill("no-such-sat");
    await page.getByRole("button", { name: "Submit" }).click();
    await status.filter({ hasText: "satellite_id" }).waitFor();
    assert.equal(await page.locator("label.invalid input[aria-label=satellite]").count(), 1);

    // Accepted, planned (a bar on the timeline), then cancelled from the list.
    await page.getByLabel("satellite").fill("demo-01");
    await page.getByRole("button", { name: "Submit" }).click();
    await status.filter({ hasText: "submitted" }).waitFor();
    const id = Number(/#(\d+)/.exec(await status.textContent())[1]);
    result.task_id = id;
    await page.locator(`[data-testid=tasks-timeline] rect[data-task="${id}"]`).first().waitFor();
    result.bar_status = await page.locator(`[data-testid=tasks-timeline] rect[data-task="${id}"]`).first().getAttribute("data-status");
    await page.locator("[data-testid=plan-run]", { hasText: "plan #" }).waitFor();
    await page.screenshot({ path: path.join(OUT, "tasks.png") });
    const row = page.locator("[data-testid=task-list] tr").filter({ hasText: `#${id}` });
    await row.getByRole("button", { name: "Cancel" }).click();
    await page.locator(`[data-testid=task-list] tr[data-status=cancelled]`).filter({ hasText: `#${id}` }).waitFor();
  },
});
