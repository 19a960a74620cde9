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
//   NEO_E2E_REFUSED      a settled backfill whose receiver refused its one entity (503, then
//                        422 with {"error": "board Help Desk is locked"})
//   NEO_E2E_CW_KEY       an API key of a second tenant, whose integration is the ConnectWise
//                        simulator, with workflows "Enrich companies" (company) and "Chase
//                        tasks" (task: ids only on ConnectWise)
//   NEO_E2E_CW_COMPANIES two of the simulator's companies, JSON [{"id": "…", "name": "…"}]
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
const refusedId = must("NEO_E2E_REFUSED");
const cwKey = must("NEO_E2E_CW_KEY");
const cwCompanies = JSON.parse(must("NEO_E2E_CW_COMPANIES"));

/** The API, as a script would call it. */
async function api(method, path, body) {
  const r = await fetch(`${base}/public-api${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const v = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(v)}`);
  return v.data;
}

/** The statuses of the items table, top to bottom. */
async function itemStatuses() {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll("#items tr[data-status]")).map((r) => r.dataset.status).join(","),
  );
}
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
// A Content-Security-Policy violation fails the test naming what caused it (the console's own
// message does not say which element or script).
await page.addInitScript(() =>
  document.addEventListener("securitypolicyviolation", (e) =>
    console.error(`CSP violation: ${e.violatedDirective} by ${e.sourceFile}:${e.lineNumber} on ${e.target && e.target.outerHTML ? e.target.outerHTML.slice(0, 160) : e.target}`),
  ),
);
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
    consoleErrors.push(`${t} (on ${page.url()})`);
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

  // An id list pasted as a spreadsheet column, with a duplicate: accepted, and said so.
  await page.getByLabel("Id list").check();
  const ids = Array.from({ length: nIds }, (_, i) => `T${String(i + 1).padStart(5, "0")}`);
  await page.getByLabel("Entity ids").fill([...ids, ids[6]].join("\n") + "\n");
  await page.getByRole("button", { name: "Preflight" }).click();
  await page.locator("#preflight [data-level=OK]").waitFor();
  const pf = await page.locator("#preflight").innerText();
  check(pf.includes(`${nIds} entities match`), `preflight: ${pf}`);
  check(/Cost estimate: \d+ credits/.test(pf), `preflight cost: ${pf}`);
  await page.locator("#note-entity_ids_text").filter({ hasText: "1 duplicate removed" }).waitFor();
  step(`pasted column: ${(await page.locator("#note-entity_ids_text").innerText()).trim()}; preflight: ${pf.replace(/\s+/g, " ").trim()}`);
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
  // A bad time sits next to its input, in words, and the review does not open.
  await page.locator(".day[data-day=saturday] [data-add]").click();
  await page.getByLabel("Saturday window start").fill("10:00");
  await page.getByLabel("Saturday window end").fill("10:00");
  await page.getByLabel("Saturday window end").dispatchEvent("change");
  const badTime = page.locator("#err-saturday_end_0");
  await badTime.filter({ hasText: "Saturday's first window" }).waitFor();
  check((await page.locator("#saturday_end_0").getAttribute("aria-invalid")) === "true", "the bad time is marked");
  step(`bad time: ${(await badTime.innerText()).trim()}`);
  await shot("wizard-3-bad-time");
  // Run now: always open; max in flight 0 is refused at its step, in words.
  await page.getByLabel("Always open").check();
  await page.getByLabel("Max executions at once (1–100)").fill("0");
  await page.getByRole("button", { name: "Next: review" }).click();
  const badCap = page.locator("#err-max_in_flight");
  await badCap.waitFor();
  check(await page.getByRole("heading", { name: "3. When it may run" }).isVisible(), "step 3 stays open");
  check(!(await page.getByRole("heading", { name: "4. Review and create" }).isVisible()), "the review does not open");
  step(`max in flight 0: ${(await badCap.innerText()).trim()}`);
  await shot("wizard-3-bad-max-in-flight");
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

  // ---- the items table follows the run without a click ------------------------------------
  const itemsAtStart = await itemStatuses();
  await page.waitForFunction(
    (before) =>
      Array.from(document.querySelectorAll("#items tr[data-status]")).map((r) => r.dataset.status).join(",") !== before,
    itemsAtStart,
    { timeout: 20000 },
  );
  step(`items table updated by itself: ${itemsAtStart.slice(0, 40)}… → ${(await itemStatuses()).slice(0, 40)}…`);

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

  // Find an entity by id in the items, and across backfills; the filter is in the URL.
  await page.getByLabel("Entity id").fill("T00007");
  await page.getByLabel("Entity id").press("Enter");
  await page.waitForFunction(() => {
    const rows = Array.from(document.querySelectorAll("#items tr[data-entity]"));
    return rows.length === 1 && rows[0].dataset.entity === "T00007";
  });
  await page.waitForURL(/entity_id=T00007/);
  step(`entity search in the items: ${page.url().replace(base, "")}`);
  await shot("backfill-items-entity-search");
  await page.reload();
  check((await page.locator("#items tr[data-entity]").count()) === 1, "a reload keeps the entity filter");
  await page.getByLabel("Entity id").fill("");
  await page.getByLabel("Entity id").press("Enter");
  await page.waitForFunction(() => document.querySelectorAll("#items tr[data-entity]").length > 1);

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
  // Ids are shortened on the page; the whole id is the link's title.
  check((await parentLink.getAttribute("title")) === parentId, "the child links to its parent");
  check((await page.locator("li[data-relation=parent] a").getAttribute("title")) === parentId, "chain shows the parent");
  step(`rerun ${childId} of ${parentId}`);
  await shot("backfill-rerun-child");
  await parentLink.click();
  await page.waitForURL(parentUrl);
  check((await page.locator("li[data-relation=rerun] a").getAttribute("title")) === childId, "the parent lists its rerun");
  await shot("backfill-parent-chain");
  await page.getByRole("navigation").getByRole("link", { name: "Backfills" }).click();
  await page.locator(`tr[data-id="${childId}"]`).waitFor();
  await shot("backfills-list");

  // ---- across backfills: the parent and its rerun both ran a failed entity ------------------
  const failedEntity = await api("GET", `/backfills/${parentId}/items?status=failed&page_size=1`).then((d) => d[0].entity_id);
  // The rerun's first item is the parent's first failure: wait until the rerun has run it.
  for (let i = 0; ; i++) {
    const [item] = await api("GET", `/backfills/${childId}/items?entity_id=${failedEntity}`);
    if (item && !["pending", "in_flight"].includes(item.status)) break;
    check(i < 100, `the rerun ran ${failedEntity}`);
    await page.waitForTimeout(200);
  }
  await page.getByLabel("Find an entity in every backfill").fill(failedEntity);
  await page.getByLabel("Find an entity in every backfill").press("Enter");
  await page.getByRole("heading", { name: `Executions of entity ${failedEntity}` }).waitFor();
  const hits = await page.locator("#hits tr[data-status]").count();
  check(hits === 2, `entity ${failedEntity} ran in the parent and its rerun: ${hits} executions`);
  step(`search across backfills: ${failedEntity} in ${hits} backfills`);
  await shot("search-entity");

  // ---- why did it fail: the receiver's words and every attempt ------------------------------
  await page.goto(`${base}/backfills/${refusedId}`);
  await page.locator("#items tr[data-status=failed]").waitFor();
  const itemError = await page.locator("#items tr[data-status=failed] .err-text").innerText();
  check(itemError.includes("board Help Desk is locked"), `the items table shows the receiver's message: ${itemError}`);
  await page.locator("#items a.exec-link").first().click();
  await page.getByRole("heading", { name: "Attempts" }).waitFor();
  check((await page.locator("#exec-error").innerText()).includes("HTTP 422: board Help Desk is locked"), "the execution's error");
  const attempts = await page.locator("#attempts tbody tr").allInnerTexts();
  check(attempts.length === 2, `two attempts: ${attempts.join(" | ")}`);
  check(/503/.test(attempts[0]) && /retried/.test(attempts[0]), `attempt 1: ${attempts[0]}`);
  check(/422/.test(attempts[1]) && /board Help Desk is locked/.test(attempts[1]), `attempt 2: ${attempts[1]}`);
  step(`execution attempts: ${attempts.map((a) => a.replace(/\s+/g, " ")).join(" | ")}`);
  await shot("execution-attempts");
  const executionUrl = page.url();

  // ---- a named backfill waiting for its window, in its own zone; edit it while it runs ------
  const night = await api("POST", "/agents", {
    name: "Night Shift",
    executor: { type: "simulated", failure_rate: 0, seed: 1 },
  });
  const days = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
  const sydneyToday = new Intl.DateTimeFormat("en-US", { timeZone: "Australia/Sydney", weekday: "long" })
    .format(new Date())
    .toLowerCase();
  const day = days[(days.indexOf(sydneyToday) + 3) % 7]; // shut today, tomorrow and the day after
  const waiting = await api("POST", "/backfills", {
    target_workflow_id: night.id,
    name: "Sydney overnight sweep",
    filter_spec: { entity_ids: ["S1", "S2", "S3"] },
    timezone: "Australia/Sydney",
    daily_execution_windows: { [day]: [{ run_start_time: "09:00", run_end_time: "10:00" }] },
    max_in_flight: 5,
  });
  const waitingUrl = `${base}/backfills/${waiting.backfill.id}`;
  await page.goto(waitingUrl);
  check((await page.locator("#backfill-title").innerText()) === "Sydney overnight sweep", "the backfill's own name");
  check((await page.locator("#state-badge").innerText()).trim() === "waiting for window", "the badge says waiting");
  const waitingText = await page.locator("#waiting").innerText();
  const dayShort = day.slice(0, 1).toUpperCase() + day.slice(1, 3);
  check(
    new RegExp(`waiting for window — opens ${dayShort} 09:00 Australia/Sydney \\(in \\d+ d`).test(waitingText),
    `when it opens, in its zone: ${waitingText}`,
  );
  step(waitingText);
  await page.locator("#edit-settings summary").click();
  await page.getByLabel("Max in flight").fill("7");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("#edit-msg .msg.ok").waitFor();
  await page.reload();
  check((await page.locator("#cfg-max-in-flight").innerText()) === "7", "max in flight edited");
  check((await page.locator("#history").innerText()).includes("max in flight 5 → 7"), "the edit is in the history");
  step("edited max in flight of a running backfill: 5 → 7, audited");
  await shot("backfill-waiting-named-edited");
  // One switch shows every time in UTC, or in the viewer's zone (London here).
  const created = page.locator("#h-config ~ dl time").first();
  const inZone = await created.innerText();
  check(/AEDT|AEST/.test(inZone), `times in the backfill's zone: ${inZone}`);
  await page.locator("#time-switch").click();
  check(/UTC/.test(await created.innerText()), `UTC after the switch: ${await created.innerText()}`);
  await page.locator("#time-switch").click();
  check(/GMT|BST/.test(await created.innerText()), `the viewer's zone next: ${await created.innerText()}`);
  await page.locator("#time-switch").click();
  check((await created.innerText()) === inZone, "and back to the backfill's zone");
  step("time switch: backfill zone → UTC → viewer's zone → backfill zone");
  await page.getByRole("navigation").getByRole("link", { name: "Backfills" }).click();
  await page.locator(`tr[data-id="${waiting.backfill.id}"]`).getByText("Sydney overnight sweep").waitFor();

  // ---- styled errors ------------------------------------------------------------------------
  for (const path of ["/backfills/bf_00000000000000000000000000000000", "/no/such/page"]) {
    const r = await page.goto(base + path);
    check(r.status() === 404, `${path}: ${r.status()}`);
    await page.getByRole("heading", { name: "Not found" }).waitFor();
    check((await page.locator("link[rel=stylesheet]").count()) === 1, `${path} is a styled page`);
  }
  await shot("not-found");

  // ---- 390 px ------------------------------------------------------------------------------
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [name, path] of [
    ["mobile-backfills", "/backfills"],
    ["mobile-backfill", parentUrl.replace(base, "")],
    ["mobile-backfill-waiting", waitingUrl.replace(base, "")],
    ["mobile-execution", executionUrl.replace(base, "")],
    ["mobile-search", `/search?entity_id=${failedEntity}`],
    ["mobile-wizard", "/backfills/new"],
    ["mobile-workflows", "/workflows"],
  ]) {
    await page.goto(base + path);
    await page.waitForLoadState("networkidle").catch(() => {});
    await checkNoOverflow(name);
    await checkLabels(name);
    await shot(name, false); // the first screen, as a phone shows it
  }
  await page.goto(parentUrl);
  const mobileHeight = await page.evaluate(() => document.documentElement.scrollHeight);
  step(`the backfill page at 390 px is ${mobileHeight} px tall`);
  check(mobileHeight < 6000, `a compact mobile backfill page: ${mobileHeight} px`);
  await page.setViewportSize({ width: 1440, height: 900 });
  for (const path of ["/backfills", parentUrl.replace(base, ""), waitingUrl.replace(base, ""), executionUrl.replace(base, ""), "/workflows"]) {
    await page.goto(base + path);
    await checkNoOverflow(`1440px ${path}`);
    await checkLabels(`1440px ${path}`);
  }

  // ---- sign out ----------------------------------------------------------------------------
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByText("You are signed out.").waitFor();
  await page.goto(base + "/backfills");
  check(page.url().endsWith("/login"), "signed out");

  // ---- a ConnectWise tenant: the builder offers each entity type's own fields ---------------
  await page.getByLabel("API key").fill(cwKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/backfills$/);
  await page.getByRole("navigation").getByRole("link", { name: "New backfill" }).click();
  await page.getByRole("heading", { name: "1. Pick a workflow" }).waitFor();
  const idsOnly = await page.locator(".ids-only-marker").allInnerTexts();
  check(
    idsOnly.length === 1 && idsOnly[0] === "ids only on ConnectWise: tasks are listed per project ticket",
    `step 1 marks the task workflow: ${idsOnly.join(" | ")}`,
  );
  // A task workflow: step 2 opens on the id list, the builder's tab disabled, and says why.
  await page.getByRole("radio", { name: /Chase tasks/ }).check();
  await page.getByRole("button", { name: "Next: filter" }).click();
  await page.getByRole("heading", { name: "2. Which entities" }).waitFor();
  check(await page.getByRole("radio", { name: "Id list" }).isChecked(), "a task workflow opens on the Id list tab");
  check(await page.getByRole("radio", { name: "Rule builder" }).isDisabled(), "the rule builder is disabled for tasks");
  const why = await page.locator("#builder-note").innerText();
  check(why.includes("cannot run on ConnectWise (tasks are listed per project ticket)"), `why ids only: ${why}`);
  check(await page.getByLabel("Entity ids").isVisible(), "the id list is shown");
  step(`task workflow: ${why}`);
  await checkLabels("wizard step 2, ids only");
  await shot("wizard-2-ids-only");
  // A company workflow: the builder is back, with company fields and a rule valid on companies.
  await page.locator("#step-2").getByRole("button", { name: "Back" }).click();
  await page.getByRole("radio", { name: /Enrich companies/ }).check();
  await page.getByRole("button", { name: "Next: filter" }).click();
  await page.getByRole("heading", { name: "2. Which entities" }).waitFor();
  check(await page.getByRole("radio", { name: "Rule builder" }).isChecked(), "the builder's tab is given back");
  check(await page.locator("#builder-note").isHidden(), "no ids-only note for companies");
  const fieldSelect = page.locator("#builder .rule .rb-field").first();
  const offered = await fieldSelect.evaluate((s) => ({
    options: Array.from(s.options).map((o) => o.textContent),
    groups: Array.from(s.querySelectorAll("optgroup")).map((g) => g.label),
    value: s.value,
  }));
  check(offered.options.includes("Company") && offered.options.includes("territory/name"), `company fields: ${offered.options.join(", ")}`);
  check(!offered.options.some((o) => o.startsWith("Closed")), `no Closed on companies: ${offered.options.join(", ")}`);
  check(offered.groups.join() === "ConnectWise fields", `native fields grouped: ${offered.groups.join()}`);
  check(offered.value === "$updated", `the default rule on companies is $updated, not ${offered.value}`);
  step(`company fields: ${offered.options.slice(0, 8).join(", ")}, …`);
  // A native field sets the rule's field to its path.
  await page.locator("#builder .rb-add-rule").first().click();
  const second = page.locator("#builder .rule").nth(1);
  await second.locator(".rb-field").selectOption("territory/name");
  check((await page.locator("#filter_spec").inputValue()).includes('"field": "territory/name"'), "a native field's path is the rule's field");
  check((await second.locator(".rb-value").getAttribute("placeholder")).startsWith("text"), "a text field's value hint");
  await second.getByRole("button", { name: "Remove rule" }).click();
  // $company in [two of the simulator's companies].
  const firstRule = page.locator("#builder .rule").first();
  await firstRule.locator(".rb-field").selectOption("$company");
  await firstRule.locator(".rb-op").selectOption("in");
  await firstRule.locator(".rb-value").fill(cwCompanies.map((c) => c.id).join(", "));
  const spec = JSON.parse(await page.locator("#filter_spec").inputValue());
  check(
    JSON.stringify(spec.conditions.rules) === JSON.stringify([{ field: "$company", operator: "in", value: cwCompanies.map((c) => Number(c.id)) }]),
    `the rule: ${JSON.stringify(spec)}`,
  );
  await checkLabels("wizard step 2, company rule builder");
  await page.setViewportSize({ width: 390, height: 844 });
  await checkNoOverflow("390px company rule builder");
  await shot("mobile-wizard-company-rule", false);
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.getByRole("button", { name: "Preflight" }).click();
  await page.locator("#preflight [data-level=OK]").waitFor();
  const cwPreflight = await page.locator("#preflight").innerText();
  check(cwPreflight.includes("2 entities match"), `company preflight: ${cwPreflight}`);
  await shot("wizard-2-company-rule");
  await page.getByRole("button", { name: "Next: windows" }).click();
  await page.getByRole("heading", { name: "3. When it may run" }).waitFor();
  await page.getByRole("button", { name: "Next: review" }).click();
  await page.getByRole("heading", { name: "4. Review and create" }).waitFor();
  await page.locator("#review dl").waitFor();
  check((await page.locator("#review").innerText()).includes("Enrich companies"), "the review names the company workflow");
  await page.getByRole("button", { name: "Create backfill" }).click();
  await page.waitForURL(/\/backfills\/bf_[0-9a-f]+\?flash=created$/);
  await page.getByText("Backfill created over 2 entities").waitFor();
  await page.waitForFunction(() => document.querySelectorAll("#items tr[data-entity]").length === 2);
  const companyItems = await page.evaluate(() =>
    Array.from(document.querySelectorAll("#items tr[data-entity]")).map((r) => ({
      id: r.dataset.entity,
      summary: (r.querySelector(".summary") || {}).textContent || "",
    })),
  );
  const byId = (a, b) => a.id.localeCompare(b.id);
  check(
    JSON.stringify(companyItems.map((i) => ({ id: i.id, name: i.summary })).sort(byId)) ===
      JSON.stringify([...cwCompanies].sort(byId)),
    `the items are the two companies, named: ${JSON.stringify(companyItems)}`,
  );
  step(`company backfill over ${companyItems.map((i) => `${i.id} ${i.summary}`).join(", ")}`);
  await shot("backfill-companies");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByText("You are signed out.").waitFor();

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
