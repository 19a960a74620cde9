// The dashboard's operator control (issue 21), driven by crates/neo-backfill/tests/dashboard_e2e.rs
// against the real `serve`: a trial run created from the wizard, its result panel and Continue; a
// credit cap refused at step 3 then set, the budget pause explained, the cap raised in the edit
// form and the backfill resumed to the end; and a running backfill's ETA, from "measuring" to a
// measured instant shown in the viewer's zone and in the backfill's.
//   NEO_E2E_BASE          the service's base URL (http://127.0.0.1:PORT)
//   NEO_E2E_KEY           an API key of the tenant
//   NEO_E2E_TRIAL_WF      a simulated workflow (some failures) for the trial run
//   NEO_E2E_TRIAL_IDS     how many entity ids the trial backfill runs over
//   NEO_E2E_TRIAL_SAMPLE  its trial sample size
//   NEO_E2E_BUDGET_WF     a simulated tier-1 workflow without failures for the credit cap
//   NEO_E2E_BUDGET_IDS    how many entity ids the capped backfill runs over
//   NEO_E2E_BUDGET_CAP    its credit cap (below its entities)
//   NEO_E2E_ETA           a RUNNING backfill (created just before, Europe/London, a slow receiver)
//   NEO_E2E_VIEWER_TZ     the browser's time zone
//   NEO_E2E_SCREENSHOTS   where to save screenshots
//   NEO_E2E_CHROMIUM      the browser
// Prints each step, then `RESULT {"trial": id, "budget": id, "eta_basis": …}`; exits 0 when every
// check passed.
import { check, must, open, step } from "./harness.mjs";

const base = must("NEO_E2E_BASE");
const key = must("NEO_E2E_KEY");
const trialWf = must("NEO_E2E_TRIAL_WF");
const trialIds = Number(must("NEO_E2E_TRIAL_IDS"));
const sample = Number(must("NEO_E2E_TRIAL_SAMPLE"));
const budgetWf = must("NEO_E2E_BUDGET_WF");
const budgetIds = Number(must("NEO_E2E_BUDGET_IDS"));
const cap = Number(must("NEO_E2E_BUDGET_CAP"));
const etaId = must("NEO_E2E_ETA");
const viewerTz = must("NEO_E2E_VIEWER_TZ");
const { page, dialogs, bodies, shot, checkLabels, live, waitState, signIn, run } = await open({
  shots: must("NEO_E2E_SCREENSHOTS"), timezoneId: viewerTz, bodies: true, csp: true,
});

/** The ETA element of the page's live part. */
async function eta() {
  return page.evaluate(() => {
    const e = document.querySelector("#eta[data-eta]");
    const t = e.querySelector("time[data-viewer]");
    const z = e.querySelector(".eta-zone");
    const r = e.querySelector(".eta-rate");
    return { basis: e.dataset.basis, at: e.dataset.eta, text: e.textContent.trim(),
             viewer: t && t.textContent.trim(), zone: z && z.textContent.trim(), rate: r && r.textContent.trim() };
  });
}
/** `n` distinct ids, one a line, as pasted from a spreadsheet column. */
const idColumn = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`).join("\n");

/** Steps 1 to 3 of the wizard for `workflow` over `n` pasted ids; step 3 left open. */
async function wizardToStep3(workflow, prefix, n) {
  await page.goto(`${base}/backfills/new`);
  await page.getByRole("radio", { name: new RegExp(workflow) }).check();
  await page.getByRole("button", { name: "Next: filter" }).click();
  await page.getByRole("heading", { name: "2. Which entities" }).waitFor();
  await page.getByLabel("Id list").check();
  await page.getByLabel("Entity ids").fill(idColumn(prefix, n));
  await page.getByRole("button", { name: "Next: windows" }).click();
  await page.getByRole("heading", { name: "3. When it may run" }).waitFor();
  check((await page.getByLabel("Time zone").inputValue()) === viewerTz, "the time zone is the browser's");
}
async function createFromReview() {
  await page.getByRole("button", { name: "Create backfill" }).click();
  await page.waitForURL(/\/backfills\/bf_[0-9a-f]+\?flash=created$/);
  return page.url().replace(/\?.*$/, "").split("/").pop();
}

let etaResult = {};
await run(async () => {
  await signIn(base, key);

  // ---- a running backfill that has not run long enough to be measured --------------------------
  await page.goto(`${base}/backfills/${etaId}`);
  const early = await eta();
  check(early.basis === "measuring" && early.at === "", `the new backfill is being measured: ${JSON.stringify(early)}`);
  check(early.text.includes("measuring throughput… (an ETA needs 20 settled items over 30 s of work)"), `basis text: ${early.text}`);
  step(`ETA of a backfill just started: ${early.text}`);

  // ---- a trial run from the wizard -------------------------------------------------------------
  await wizardToStep3(trialWf, "TR", trialIds);
  await checkLabels("wizard step 3");
  await page.getByLabel("Trial run: sample size").fill(String(trialIds + 1));
  await page.getByRole("button", { name: "Next: review" }).click();
  const tooBig = page.locator("#err-trial_sample_size");
  await tooBig.filter({ hasText: `The trial sample size must be at most the ${trialIds} entities of the backfill` }).waitFor();
  check((await page.locator("#trial_sample_size").getAttribute("aria-invalid")) === "true", "the sample size is marked");
  check(await page.getByRole("heading", { name: "3. When it may run" }).isVisible(), "step 3 stays open");
  step(`a sample larger than the ids: ${(await tooBig.innerText()).trim()}`);
  await page.getByLabel("Trial run: sample size").fill(String(sample));
  await page.getByRole("button", { name: "Next: review" }).click();
  await page.getByRole("heading", { name: "4. Review and create" }).waitFor();
  await page.locator(`#review-trial [data-trial-sample="${sample}"]`).waitFor();
  step(`review: ${(await page.locator("#review-trial").innerText()).trim()}`);
  await shot("wizard-trial-review");
  const trial = await createFromReview();
  step(`created ${trial} with a trial of ${sample}`);
  // The sample runs, then the backfill pauses itself with the result and asks.
  await page.locator("#trial-result").waitFor({ timeout: 60000 });
  const reason = page.locator("#pause-reason[data-pause-reason=trial_complete]");
  await reason.waitFor();
  check((await reason.innerText()).includes("The trial sample has run. Check its results, then continue with the rest or cancel."), "the trial pause is explained");
  const num = async (sel) => Number((await page.locator(sel).innerText()).trim());
  const tr = { succeeded: await num("#trial-succeeded"), failed: await num("#trial-failed"), skipped: await num("#trial-skipped") };
  check(tr.succeeded + tr.failed + tr.skipped === sample, `the sample's results add up to ${sample}: ${JSON.stringify(tr)}`);
  const errorRows = await page.locator("#trial-errors tbody tr").count();
  check(tr.failed === 0 ? errorRows === 0 : errorRows >= 1, `top errors (${errorRows} rows) for ${tr.failed} failures`);
  const atPause = await live();
  check(atPause.state === "PAUSED" && atPause.pending === trialIds - sample, `only the sample ran: ${JSON.stringify(atPause)}`);
  check((await page.locator("#action-resume").count()) === 0, "Continue stands for Resume");
  check((await page.locator("#trial[data-trial-phase=awaiting]").count()) === 1, "the live part says it waits");
  step(`trial result: ${JSON.stringify(tr)}, ${errorRows} error row(s); ${atPause.pending} entities held`);
  await shot("trial-result");
  await page.locator("#trial-continue").click();
  check(dialogs.some((d) => d === `Continue with the other ${trialIds - sample} entities?`), `Continue asks first: ${dialogs.join(" | ")}`);
  await page.locator("#flash .msg.ok").filter({ hasText: "Resume" }).waitFor();
  const trialDone = await waitState("COMPLETED", "the trial backfill");
  check(trialDone.succeeded + trialDone.failed + trialDone.skipped === trialIds, `every entity ran: ${JSON.stringify(trialDone)}`);
  check((await page.locator("#trial-result").count()) === 0, "the panel goes once continued");
  await page.locator("#trial[data-trial-phase=done]").waitFor();
  const doneEta = await eta();
  check(doneEta.basis === "not_running" && doneEta.at === "" && doneEta.text.startsWith("done"), `a completed backfill has no ETA: ${JSON.stringify(doneEta)}`);
  step(`continued and completed: ${JSON.stringify(trialDone)}; ETA: ${doneEta.text}`);

  // ---- a credit cap ------------------------------------------------------------------------------
  await wizardToStep3(budgetWf, "BU", budgetIds);
  await page.getByLabel("Credit cap (max credits)").fill("0");
  await page.getByRole("button", { name: "Next: review" }).click();
  const badCap = page.locator("#err-max_credits");
  await badCap.filter({ hasText: "The credit cap must be between 1 and 1000000000000, or empty for no cap" }).waitFor();
  check(!(await page.getByRole("heading", { name: "4. Review and create" }).isVisible()), "the review does not open");
  step(`cap 0: ${(await badCap.innerText()).trim()}`);
  await shot("wizard-bad-cap");
  await page.getByLabel("Credit cap (max credits)").fill(String(cap));
  await page.getByRole("button", { name: "Next: review" }).click();
  await page.locator(`#review-max-credits [data-max-credits="${cap}"]`).waitFor();
  await page.locator("#review-cap-note").filter({ hasText: `The credit cap (${cap}) is below the cost estimate (${budgetIds} credits)` }).waitFor();
  const budget = await createFromReview();
  step(`created ${budget} with a cap of ${cap} credits over ${budgetIds} tier-1 entities`);
  const budgetReason = page.locator("#pause-reason[data-pause-reason=budget_reached]");
  await budgetReason.waitFor({ timeout: 60000 });
  check((await budgetReason.innerText()).includes("The backfill reached its credit cap (max_credits). Raise the cap, then resume."), "the budget pause is explained");
  const atCap = await live();
  check(atCap.state === "PAUSED" && atCap.succeeded === cap && atCap.pending === budgetIds - cap, `it stopped at the cap: ${JSON.stringify(atCap)}`);
  const credits = (await page.locator("#credits").innerText()).trim();
  check(credits.startsWith(`${cap} / ${cap} credits`), `credits: ${credits}`);
  step(`paused at the cap: ${credits}; ${(await budgetReason.innerText()).trim()}`);
  await shot("budget-reached");
  await page.goto(`${base}/backfills`);
  const row = page.locator(`tr[data-id="${budget}"]`);
  check((await row.locator("[data-pause-reason=budget_reached]").innerText()).trim() === "credit cap reached", "the list says why it is paused");
  await page.goBack();
  // Raise the cap in the edit form, then resume.
  await page.locator("#edit-settings summary").click();
  await checkLabels("edit form");
  await page.getByLabel("Credit cap (max credits)").fill(String(budgetIds));
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("#edit-msg .msg.ok").filter({ hasText: "Saved. It stays paused at its credit cap until you resume it." }).waitFor();
  check((await live()).state === "PAUSED", "raising the cap does not resume it");
  await page.locator("#action-resume").click();
  const budgetDone = await waitState("COMPLETED", "the capped backfill");
  check(budgetDone.succeeded === budgetIds, `all ran after the raise: ${JSON.stringify(budgetDone)}`);
  await page.locator("#credits").filter({ hasText: `${budgetIds} / ${budgetIds} credits` }).waitFor();
  check((await page.locator("#pause-reason").count()) === 0, "no pause reason once it runs");
  step(`cap raised to ${budgetIds} and resumed: ${JSON.stringify(budgetDone)}`);
  await shot("budget-completed");

  // ---- the ETA, measured -------------------------------------------------------------------------
  await page.goto(`${base}/backfills/${etaId}`);
  const until = Date.now() + 60000;
  let e = await eta();
  while (e.basis !== "measured" && Date.now() < until) {
    await page.waitForTimeout(500);
    e = await eta();
  }
  check(e.basis === "measured", `measured within a minute: ${JSON.stringify(e)}`);
  etaResult = { eta_basis: e.basis };
  {
    // In the viewer's zone (the browser's), then in the backfill's. The page's script turns the
    // server's UTC text into the viewer's zone once the live part has settled (it is swapped in
    // every second, and the ETA moves with the measured rate): compare each reading with its own
    // instant.
    const inViewerZone = (iso) => page.evaluate(([at, tz]) => new Intl.DateTimeFormat("en-GB", {
      weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
      timeZoneName: "short", timeZone: tz }).format(new Date(at)), [iso, viewerTz]);
    let want = await inViewerZone(e.at);
    const shown = Date.now() + 5000;
    while (e.viewer !== want && Date.now() < shown) {
      await page.waitForTimeout(100);
      e = await eta();
      if (e.basis !== "measured") continue;
      want = await inViewerZone(e.at);
    }
    check(e.viewer === want, `the ETA in the viewer's zone: ${e.viewer} is not ${want}`);
    check(/\(Europe\/London\)$/.test(e.zone), `the ETA in the backfill's zone: ${e.zone}`);
    check(/measured \d+\.\d items\/min/.test(e.rate), `the measured rate: ${e.rate}`);
    etaResult.eta = e.at;
    step(`measured ETA: ${e.text}`);
    await shot("eta-measured");
    await page.goto(`${base}/backfills`);
    const cell = page.locator(`tr[data-id="${etaId}"] td[data-label=ETA]`);
    check((await cell.getAttribute("data-basis")) === "measured", "the list's ETA is measured");
    const listed = Date.now() + 5000;
    let inList = {};
    while (Date.now() < listed) {
      const t = cell.locator("time[data-viewer]");
      inList = { text: (await t.innerText()).trim(), want: await inViewerZone(await t.getAttribute("datetime")) };
      if (inList.text === inList.want) break;
      await page.waitForTimeout(100);
    }
    check(inList.text === inList.want, `the list's ETA is in the viewer's zone: ${JSON.stringify(inList)}`);
    check((await cell.innerText()).includes("(Europe/London)"), "with the backfill's zone on a second line");
    step(`list ETA: ${(await cell.innerText()).replace(/\s+/g, " ").trim()}`);
    await shot("list-eta");
  }

  for (const b of bodies) check(!b.text.includes(key), `the API key reached the browser in ${b.url}`);
  return { trial, budget, trial_result: tr, ...etaResult };
});
