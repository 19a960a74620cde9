// Browser end-to-end test of the dashboard, driven with playwright-core and Debian's Chromium.
// Started by crates/neo-backfill/tests/dashboard_e2e.rs, which runs the real `serve` binary and
// passes:
//   NEO_E2E_BASE         the service's base URL (http://127.0.0.1:PORT)
//   NEO_E2E_KEY          an API key of the tenant
//   NEO_E2E_WORKFLOW     the name of the simulated workflow to backfill
//   NEO_E2E_IDS          how many entity ids to backfill
//   NEO_E2E_SECRETS      comma list of secrets that must never appear in a page or script
//   NEO_E2E_SCREENSHOTS  where to save screenshots
//   NEO_E2E_CHROMIUM     the browser (default /usr/bin/chromium)
// Exits 0 when every step passed; prints each step.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = must("NEO_E2E_BASE");
const key = must("NEO_E2E_KEY");
const workflowName = must("NEO_E2E_WORKFLOW");
const nIds = Number(process.env.NEO_E2E_IDS || "120");
const secrets = (process.env.NEO_E2E_SECRETS || "").split(",").filter(Boolean).concat([key]);
const shots = process.env.NEO_E2E_SCREENSHOTS || "target/e2e-screenshots";
const executablePath = process.env.NEO_E2E_CHROMIUM || "/usr/bin/chromium";
mkdirSync(shots, { recursive: true });

function must(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`missing ${name}`);
    process.exit(2);
  }
  return v;
}

const started = Date.now();
function step(msg) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
}
function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const context = await browser.newContext({
  viewport: { width: 1440, height: 900 },
  timezoneId: "Europe/London",
  locale: "en-GB",
});
const page = await context.newPage();
page.setDefaultTimeout(15000);

// Every page and script the browser receives, to look for secrets; every dialog accepted.
const bodies = [];
page.on("response", async (r) => {
  const ct = r.headers()["content-type"] || "";
  if (/html|javascript|css|json/.test(ct)) {
    try {
      bodies.push({ url: r.url(), text: await r.text() });
    } catch {
      /* redirects have no body */
    }
  }
});
const dialogs = [];
page.on("dialog", async (d) => {
  dialogs.push(d.message());
  await d.accept();
});
const consoleErrors = [];
page.on("console", (m) => {
  // A 4xx answer shown as a message on the page is expected (the browser and htmx log it).
  const t = m.text();
  if (m.type() === "error" && !/Failed to load resource|Response Status Error Code|htmx:responseError/.test(t)) {
    consoleErrors.push(t);
  }
});
page.on("pageerror", (e) => consoleErrors.push(String(e)));

let shotNo = 0;
async function shot(name, fullPage = true) {
  shotNo += 1;
  const file = join(shots, `${String(shotNo).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage });
  step(`screenshot ${file}`);
}

/** Every visible form control has a label (acceptance 2). */
async function checkLabels(where) {
  const unlabelled = await page.evaluate(() =>
    Array.from(document.querySelectorAll("input, select, textarea"))
      .filter((e) => e.type !== "hidden" && e.offsetParent !== null)
      .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label"))
      .map((e) => e.outerHTML.slice(0, 120)),
  );
  check(unlabelled.length === 0, `${where}: controls without a label: ${unlabelled.join(" | ")}`);
}

/** Nothing wider than the viewport (acceptance 2). */
async function checkNoOverflow(where) {
  const { sw, vw } = await page.evaluate(() => ({
    sw: document.documentElement.scrollWidth,
    vw: window.innerWidth,
  }));
  check(sw <= vw + 1, `${where}: page is ${sw}px wide in a ${vw}px viewport`);
}

async function live() {
  return page.evaluate(() => {
    const l = document.querySelector("#live");
    return {
      state: l.dataset.state,
      processed: Number(l.dataset.processed),
      done: Number(l.dataset.done),
      total: Number(l.dataset.total),
      failed: Number(l.dataset.failed),
    };
  });
}

async function waitLive(pred, what, timeout = 60000) {
  const until = Date.now() + timeout;
  let last;
  while (Date.now() < until) {
    last = await live();
    if (pred(last)) return last;
    await page.waitForTimeout(200);
  }
  throw new Error(`timed out waiting for ${what}; last ${JSON.stringify(last)}`);
}

try {
  // ---- sign in -------------------------------------------------------------------------
  await page.goto(base + "/");
  check(page.url().endsWith("/login"), `/ sends to the sign-in form, got ${page.url()}`);
  await checkLabels("login");
  await shot("login");
  await page.getByLabel("API key").fill("neo_sk_live_" + "x".repeat(40));
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "Sign-in refused" }).waitFor();
  step("a wrong key is refused with a message");
  await shot("login-refused");
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/backfills$/);
  check((await page.evaluate(() => document.cookie)) === "", "the session cookie is HttpOnly");
  step("signed in");
  await shot("backfills-empty");

  // ---- workflows and keys ----------------------------------------------------------------
  await page.getByRole("link", { name: "Workflows" }).click();
  await page.getByRole("heading", { name: "Workflows" }).waitFor();
  check(await page.getByText(workflowName).isVisible(), "the workflow is listed");
  await shot("workflows");
  // Keys are managed with the CLI or by an Entra ID admin: an API-key session is not offered them.
  check((await page.getByRole("link", { name: "API keys" }).count()) === 0, "no API keys link");

  // ---- the wizard ------------------------------------------------------------------------
  await page.getByRole("navigation").getByRole("link", { name: "New backfill" }).click();
  await page.getByRole("heading", { name: "1. Pick a workflow" }).waitFor();
  await checkLabels("wizard step 1");
  await page.getByRole("button", { name: "Next: filter" }).click();
  await page.getByText("Pick a workflow to continue.").waitFor();
  step("step 1 refuses to continue without a workflow");
  await page.getByRole("radio", { name: new RegExp(workflowName) }).check();
  await shot("wizard-1-workflow");
  await page.getByRole("button", { name: "Next: filter" }).click();
  await page.getByRole("heading", { name: "2. Which entities" }).waitFor();

  // The rule builder: add a rule and a nested group, see the JSON follow.
  await page.locator("#builder .rb-add-rule").first().click();
  await page.locator("#builder .rb-add-group").first().click();
  const rules = await page.locator("#builder .rule").count();
  check(rules >= 3, `the rule builder has ${rules} rules`);
  await checkLabels("rule builder");
  await shot("wizard-2-rule-builder");
  // Preflight of a rule group without a PSA integration: a visible error.
  await page.getByRole("button", { name: "Preflight" }).click();
  await page.locator("#preflight .msg.error").waitFor();
  step(`rule-group preflight says: ${(await page.locator("#preflight").innerText()).trim()}`);

  // Raw JSON: an explicit id list.
  await page.getByLabel("Raw JSON").check();
  const ids = Array.from({ length: nIds }, (_, i) => `T${String(i + 1).padStart(5, "0")}`);
  await page.getByLabel("Filter (JSON)").fill(JSON.stringify({ entity_ids: ids }, null, 1));
  await page.getByRole("button", { name: "Preflight" }).click();
  await page.locator("#preflight [data-level=OK]").waitFor();
  const pf = await page.locator("#preflight").innerText();
  check(pf.includes(`${nIds} entities match`), `preflight: ${pf}`);
  check(/Cost estimate: \d+ credits/.test(pf), `preflight cost: ${pf}`);
  step(`preflight: ${pf.replace(/\s+/g, " ").trim()}`);
  await shot("wizard-2-preflight");
  await page.getByRole("button", { name: "Next: windows" }).click();
  await page.getByRole("heading", { name: "3. When it may run" }).waitFor();

  // Windows: the browser's time zone is the default; weeknights with a summary.
  check((await page.getByLabel("Time zone").inputValue()) === "Europe/London", "time zone defaults to the browser's");
  await page.getByLabel("Only inside daily windows").check();
  await page.getByRole("button", { name: "Weeknights 22:00 → 06:00" }).click();
  await page.locator("#summary .msg.ok").filter({ hasText: "Weeknights 22:00 → 06:00 Europe/London" }).waitFor();
  step(`windows summary: ${(await page.locator("#summary").innerText()).trim()}`);
  await checkLabels("wizard step 3");
  await shot("wizard-3-windows");
  // A bad window shows the API's validation message.
  await page.locator(".day[data-day=saturday] [data-add]").click();
  await page.getByLabel("Saturday window start").fill("10:00");
  await page.getByLabel("Saturday window end").fill("10:00");
  await page.getByLabel("Saturday window end").dispatchEvent("change");
  await page.locator("#summary .msg.error").filter({ hasText: "saturday[0]" }).waitFor();
  step(`bad window: ${(await page.locator("#summary").innerText()).trim()}`);
  // Run now: always open, two at a time.
  await page.getByLabel("Always open").check();
  await page.getByLabel("Max executions at once (1–100)").fill("2");
  await page.getByRole("button", { name: "Next: review" }).click();
  await page.getByRole("heading", { name: "4. Review and create" }).waitFor();
  await page.locator("#review dl").waitFor();
  const review = await page.locator("#review").innerText();
  check(review.includes(workflowName) && review.includes("Always open"), `review: ${review}`);
  await shot("wizard-4-review");
  await page.getByRole("button", { name: "Create backfill" }).click();
  await page.waitForURL(/\/backfills\/bf_[0-9a-f]+\?flash=created$/);
  const parentUrl = page.url().replace(/\?.*$/, "");
  const parentId = parentUrl.split("/").pop();
  await page.getByText(`Backfill created over ${nIds} entities`).waitFor();
  step(`created ${parentId}`);

  // ---- progress, pause, resume -------------------------------------------------------------
  const first = await waitLive((l) => l.processed > 0, "progress to start", 20000);
  await shot("backfill-running");
  const advanced = await waitLive((l) => l.processed > first.processed, "progress to advance", 20000);
  check(advanced.state === "RUNNING", `running, got ${advanced.state}`);
  step(`progress advances: ${first.processed} → ${advanced.processed} of ${advanced.total}`);
  await page.getByRole("button", { name: "Pause" }).click();
  await page.locator("#flash .msg.ok").filter({ hasText: "Pause: backfill is now PAUSED." }).waitFor();
  const paused = await waitLive((l) => l.state === "PAUSED", "PAUSED");
  check(dialogs.some((d) => d.startsWith("Pause this backfill?")), "pause asks for confirmation");
  check(paused.done < paused.total, `paused before the end (${paused.done}/${paused.total})`);
  await page.waitForTimeout(1500);
  const stillPaused = await live();
  // In-flight executions (at most max_in_flight = 2) may finish; nothing new is dispatched.
  check(stillPaused.processed <= paused.processed + 2, `no dispatch while paused: ${paused.processed} → ${stillPaused.processed}`);
  step(`paused at ${stillPaused.processed}/${stillPaused.total}`);
  await shot("backfill-paused");
  await page.getByRole("button", { name: "Resume" }).click();
  await page.locator("#flash .msg.ok").filter({ hasText: "Resume: backfill is now RUNNING." }).waitFor();
  await waitLive((l) => l.state === "RUNNING" || l.state === "COMPLETED", "RUNNING again");
  step("resumed");
  const done = await waitLive((l) => l.state === "COMPLETED", "COMPLETED", 90000);
  check(done.failed > 0, "the simulated executor failed some entities");
  step(`completed: ${done.processed} processed, ${done.failed} failed`);
  await shot("backfill-completed");

  // Items: filter failed, follow an execution to its error.
  await page.waitForTimeout(500); // the items refresh on the state change first
  await page.getByLabel("Status").selectOption("failed");
  await page.waitForFunction(() => {
    const rows = Array.from(document.querySelectorAll("#items tr[data-status]"));
    return rows.length > 0 && rows.every((r) => r.dataset.status === "failed");
  });
  step("items filtered by status failed");
  await shot("backfill-items-failed");
  await page.locator("#items a.exec-link").first().click();
  await page.getByRole("heading", { name: "Execution" }).waitFor();
  check((await page.locator("#exec-error").innerText()).length > 0, "the execution shows its error");
  await shot("execution");
  await page.goto(parentUrl);

  // ---- rerun failed ----------------------------------------------------------------------
  await page.getByRole("button", { name: "Rerun failed" }).click();
  await page.waitForURL(/\?flash=rerun$/);
  const childId = page.url().replace(/\?.*$/, "").split("/").pop();
  check(childId !== parentId, "a new backfill");
  await page.getByText(`Rerun created over the ${done.failed} failed entities`).waitFor();
  const parentLink = page.locator("#parent-link");
  check((await parentLink.innerText()) === parentId, "the child links to its parent");
  check((await page.locator("li[data-relation=parent] a").innerText()) === parentId, "chain shows the parent");
  step(`rerun ${childId} of ${parentId}`);
  await shot("backfill-rerun-child");
  await parentLink.click();
  await page.waitForURL(parentUrl);
  check((await page.locator("li[data-relation=rerun] a").innerText()) === childId, "the parent lists its rerun");
  await shot("backfill-parent-chain");
  await page.getByRole("navigation").getByRole("link", { name: "Backfills" }).click();
  await page.locator(`tr[data-id="${childId}"]`).waitFor();
  await shot("backfills-list");

  // ---- 375 px ------------------------------------------------------------------------------
  await page.setViewportSize({ width: 375, height: 812 });
  for (const [name, path] of [
    ["mobile-backfills", "/backfills"],
    ["mobile-backfill", parentUrl.replace(base, "")],
    ["mobile-wizard", "/backfills/new"],
    ["mobile-workflows", "/workflows"],
  ]) {
    await page.goto(base + path);
    await page.waitForLoadState("networkidle").catch(() => {});
    await checkNoOverflow(name);
    await checkLabels(name);
    await shot(name, false); // the first screen, as a phone shows it
  }
  await page.setViewportSize({ width: 1440, height: 900 });
  for (const path of ["/backfills", parentUrl.replace(base, ""), "/workflows"]) {
    await page.goto(base + path);
    await checkNoOverflow(`1440px ${path}`);
    await checkLabels(`1440px ${path}`);
  }

  // ---- sign out ----------------------------------------------------------------------------
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByText("You are signed out.").waitFor();
  await page.goto(base + "/backfills");
  check(page.url().endsWith("/login"), "signed out");

  // ---- no secret anywhere ------------------------------------------------------------------
  for (const b of bodies) {
    for (const s of secrets) {
      check(!b.text.includes(s), `${b.url} contains a secret`);
    }
  }
  step(`checked ${bodies.length} responses for ${secrets.length} secrets`);
  check(consoleErrors.length === 0, `browser console errors: ${consoleErrors.join(" | ")}`);
  step("PASS");
  await browser.close();
} catch (e) {
  console.error(`FAIL: ${e.stack || e}`);
  await shot("failure").catch(() => {});
  await browser.close();
  process.exit(1);
}
