// What every browser script of the dashboard shares (crates/neo-backfill/tests/dashboard_e2e.rs
// runs them): reading its environment, timed steps and checks, headless Chromium with the console,
// dialogs and (optionally) the responses and CSP violations recorded, screenshots, signing in, and
// the ending — `RESULT {json}` and exit 0 when every check passed, a screenshot and exit 1 when one
// failed. One copy, so a change of how the scripts run (a flag, a timeout) is made once.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

/** An environment variable the script needs (exit 2 without it). */
export function must(name) {
  const v = process.env[name];
  if (!v) { console.error(`missing ${name}`); process.exit(2); }
  return v;
}

const started = Date.now();
export const step = (m) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${m}`);
export function check(cond, msg) { if (!cond) throw new Error(`check failed: ${msg}`); }

/**
 * Opens a page in headless Chromium. `shots`: where screenshots go; `timezoneId`: the browser's
 * zone (its default without); `bodies`: record the text of every HTML, script, CSS and JSON
 * response; `csp`: report Content-Security-Policy violations as console errors.
 */
export async function open({ shots, timezoneId, bodies: keepBodies = false, csp = false }) {
  mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.NEO_E2E_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
  const context = await browser.newContext({
    viewport: { width: 1440, height: 900 },
    locale: "en-GB",
    ...(timezoneId ? { timezoneId } : {}),
  });
  const page = await context.newPage();
  if (csp) {
    await page.addInitScript(() =>
      document.addEventListener("securitypolicyviolation", (e) =>
        console.error(`CSP violation: ${e.violatedDirective} by ${e.sourceFile}:${e.lineNumber}`)));
  }
  page.setDefaultTimeout(15000);
  const dialogs = [];
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.accept(); });
  const bodies = [];
  if (keepBodies) {
    page.on("response", async (r) => {
      if (/html|javascript|css|json/.test(r.headers()["content-type"] || "")) {
        try { bodies.push({ url: r.url(), text: await r.text() }); } catch { /* a redirect */ }
      }
    });
  }
  const consoleErrors = [];
  page.on("console", (m) => {
    const t = m.text();
    if (m.type() === "error" && !/Failed to load resource|Response Status Error Code|htmx:responseError/.test(t)) consoleErrors.push(t);
  });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  let shotNo = 0;
  async function shot(name) {
    shotNo += 1;
    await page.screenshot({ path: join(shots, `${String(shotNo).padStart(2, "0")}-${name}.png`), fullPage: true });
  }
  /** Every visible form control has a label. */
  async function checkLabels(where) {
    const bad = await page.evaluate(() =>
      Array.from(document.querySelectorAll("input, select, textarea"))
        .filter((e) => e.type !== "hidden" && e.offsetParent !== null)
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label"))
        .map((e) => e.outerHTML.slice(0, 120)));
    check(bad.length === 0, `${where}: controls without a label: ${bad.join(" | ")}`);
  }
  /** The backfill page's live part: its state and counters. */
  async function live() {
    return page.evaluate(() => {
      const n = (id) => Number(document.getElementById(id).textContent.trim());
      const l = document.querySelector("#live");
      return { state: l.dataset.state, succeeded: n("c-succeeded"), failed: n("c-failed"), skipped: n("c-skipped"), pending: n("c-pending") };
    });
  }
  /** Waits for the live part to say `state`. */
  async function waitState(state, what, timeout = 60000) {
    const until = Date.now() + timeout;
    let last;
    while (Date.now() < until) {
      last = await live();
      if (last.state === state) return last;
      await page.waitForTimeout(200);
    }
    throw new Error(`timed out waiting for ${what} to be ${state}; last ${JSON.stringify(last)}`);
  }
  async function signIn(base, key) {
    await page.goto(base + "/login");
    await page.getByLabel("API key").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/backfills$/);
    step("signed in");
  }
  /** Runs the script's checks; prints `RESULT` with what they return, or fails with a screenshot. */
  async function run(checks) {
    try {
      const result = await checks();
      check(consoleErrors.length === 0, `console errors: ${consoleErrors.join(" | ")}`);
      console.log("RESULT " + JSON.stringify(result));
      await browser.close();
    } catch (err) {
      console.error(err);
      try { await shot("failure"); } catch { /* the page is gone */ }
      await browser.close();
      process.exit(1);
    }
  }
  return { browser, page, dialogs, bodies, consoleErrors, shot, checkLabels, live, waitState, signIn, run };
}
