// What the scenario scripts (alarms, manage, tasks, telemetry) share: real Chromium signed in with
// a token, the page's errors collected (console errors other than the expected ones too), and the
// end of a run: results.json in the output folder, one JSON line on stdout, exit 0 only when ok.

import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/**
 * A signed-in page. `expectedConsole`: a console error matching it is part of the scenario (e.g. the
 * 422 of an input the server refuses), not a page error.
 */
export async function openSignedIn({ token, waitMs, expectedConsole = null, contextOptions = {} }) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"] });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, ...contextOptions });
  await context.addInitScript((t) => sessionStorage.setItem("stellarops.token", t), token);
  const page = await context.newPage();
  page.setDefaultTimeout(waitMs);
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error" && !(expectedConsole && expectedConsole.test(message.text()))) {
      pageErrors.push(`console: ${message.text()}`);
    }
  });
  // A server error names its request and says why (the console line alone does neither).
  page.on("response", async (response) => {
    if (response.status() >= 500) {
      const body = await response.text().catch(() => "");
      pageErrors.push(`${response.status()} ${response.request().method()} ${response.url()}: ${body.slice(0, 300)}`);
    }
  });
  return { browser, page, pageErrors };
}

/** Runs `scenario(result)`; records its failure and the page's errors; writes, prints and exits. */
export async function runScenario({ browser, pageErrors, out, result, scenario }) {
  try {
    await scenario(result);
    if (pageErrors.length) throw new Error(`errors in the page: ${JSON.stringify(pageErrors)}`);
    result.ok = true;
  } catch (error) {
    result.ok = false;
    result.error = String(error?.stack ?? error);
    result.page_errors = pageErrors;
  } finally {
    fs.writeFileSync(path.join(out, "results.json"), JSON.stringify(result, null, 2));
    await browser.close();
  }
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}
