// The dashboard's safe-bulk-changes flow (crates/neo-backfill/tests/dashboard_e2e.rs runs it):
// a psa_actions workflow, a shadow run from the wizard, its diff, apply, and revert.
import { check, must, open, step } from "./harness.mjs";

const base = must("NEO_E2E_BASE");
const key = must("NEO_E2E_KEY");
const sim = must("NEO_E2E_SIM");
const workflowName = must("NEO_E2E_WORKFLOW");
const workflowId = must("NEO_E2E_WORKFLOW_ID");
const plainName = must("NEO_E2E_PLAIN");
const limit = Number(must("NEO_E2E_LIMIT"));
const secrets = must("NEO_E2E_SECRETS").split(",").filter(Boolean).concat([key]);

async function api(path) {
  const r = await fetch(`${base}/public-api${path}`, { headers: { authorization: `Bearer ${key}` } });
  const v = await r.json();
  if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(v)}`);
  return v.data;
}
async function simWrites() {
  return (await fetch(`${sim}/__sim/writes`)).json();
}
const ok = (w, kind) => w.filter((x) => x.kind === kind && x.status >= 200 && x.status < 300).length;

const { page, dialogs, bodies, shot, checkLabels, waitState, signIn, run } = await open({
  shots: must("NEO_E2E_SCREENSHOTS"), timezoneId: "UTC", bodies: true,
});
const waitDone = (what) => waitState("COMPLETED", what);

/** The diff table as the page shows it. */
async function uiTotals() {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll("#change-totals tbody tr")).map((r) => ({
      field: r.dataset.field,
      before: r.querySelector(".before").textContent.trim(),
      after: r.querySelector(".after").textContent.trim(),
      entities: Number(r.dataset.entities),
    })));
}
const text = (v) => (v === null ? "none" : typeof v === "string" ? v : JSON.stringify(v));
/** The page's diff table is the API's `/changes`, group for group. */
async function checkTotals(id, where) {
  await page.locator('#change-totals tr[data-field="priority/id"]').waitFor();
  const ui = await uiTotals();
  const want = (await api(`/backfills/${id}/changes`)).slice(0, 20).map((t) => ({
    field: t.field, before: text(t.previous_value), after: text(t.new_value), entities: t.entities,
  }));
  check(JSON.stringify(ui) === JSON.stringify(want), `${where}: diff table ${JSON.stringify(ui)} is not the API's ${JSON.stringify(want)}`);
  step(`${where} diff table: ${ui.map((t) => `${t.field}: ${t.entities} entities, ${t.before} → ${t.after}`).join("; ")}`);
  return ui;
}
async function childId(action) {
  await page.waitForURL(new RegExp(`/backfills/bf_[0-9a-f]+\\?flash=${action}$`));
  return page.url().replace(/\?.*$/, "").split("/").pop();
}

await run(async () => {
  await signIn(base, key);

  // ---- the workflow's executor becomes psa_actions ------------------------------------------
  await page.goto(base + "/workflows");
  const row = page.locator(`tr[data-workflow="${workflowId}"]`);
  await row.locator("summary").filter({ hasText: "Edit executor" }).click();
  await row.getByLabel("Type").selectOption("psa_actions");
  const actionsBox = row.getByLabel(/PSA actions/);
  check((await row.innerText()).includes("On connectwise, psa_actions write tickets"), "the writable fields are listed");
  await actionsBox.fill(JSON.stringify([{ type: "update_fields", fields: { "priority/idd": 2 } }]));
  await row.getByRole("button", { name: "Save executor" }).click();
  const refused = page.locator(`#wf-msg-${workflowId} .msg.error`);
  await refused.filter({ hasText: "executor.actions[0].fields.priority/idd" }).waitFor();
  step(`an unknown field is refused at its path: ${(await refused.innerText()).trim()}`);
  await actionsBox.fill(JSON.stringify([
    { type: "update_fields", fields: { "priority/id": 2, severity: "High" } },
    { type: "add_note", internal: true, text: "Escalated from {{priority/name}} by backfill {{backfill_id}}" },
  ], null, 2));
  await checkLabels("workflows");
  await row.getByRole("button", { name: "Save executor" }).click();
  await page.locator(`#wf-msg-${workflowId} .msg.ok`).filter({ hasText: "Executor saved." }).waitFor();
  await page.reload();
  const summary = await page.locator(`tr[data-workflow="${workflowId}"] td[data-label=Executor]`).innerText();
  check(summary.includes("psa_actions: update priority/id, severity; add a note"), `executor summary: ${summary}`);
  step("executor saved as psa_actions");
  await shot("workflow-psa-actions");

  // ---- a shadow run from the wizard -------------------------------------------------------------
  await page.getByRole("navigation").getByRole("link", { name: "New backfill" }).click();
  await page.getByRole("heading", { name: "1. Pick a workflow" }).waitFor();
  await page.getByRole("radio", { name: new RegExp(plainName) }).check();
  check((await page.locator("#mode-choice").getAttribute("hidden")) !== null, "no shadow choice for a simulated workflow");
  await page.getByRole("radio", { name: new RegExp(workflowName) }).check();
  check((await page.locator("#mode-choice").getAttribute("hidden")) === null, "a psa_actions workflow is offered a shadow run");
  await page.getByRole("button", { name: "Next: filter" }).click();
  await page.getByRole("heading", { name: "2. Which entities" }).waitFor();
  await page.getByLabel("Raw JSON").check();
  await page.getByLabel("Filter (JSON)").fill(JSON.stringify({
    conditions: { combinator: "and", rules: [
      { field: "priority/id", operator: "=", value: 3 },
      { field: "$closed", operator: "=", value: false }] },
    limit,
  }, null, 2));
  await page.getByRole("button", { name: "Preflight" }).click();
  await page.locator("#preflight [data-level]").waitFor();
  step(`preflight: ${(await page.locator("#preflight").innerText()).replace(/\s+/g, " ").trim()}`);
  await page.getByRole("button", { name: "Next: windows" }).click();
  await page.getByRole("heading", { name: "3. When it may run" }).waitFor();
  await page.getByRole("button", { name: "Next: review" }).click();
  await page.getByRole("heading", { name: "4. Review and create" }).waitFor();
  await page.locator("#review-mode[data-mode=live]").waitFor();
  await page.getByLabel("Shadow run (preview the changes, write nothing)").check();
  await page.locator("#review-mode[data-mode=shadow]").waitFor();
  check(Number(await page.locator("#review-entities [data-entities]").getAttribute("data-entities")) === limit, "the review counts the limit");
  await checkLabels("wizard review");
  await shot("wizard-shadow-run");
  await page.getByRole("button", { name: "Create backfill" }).click();
  const shadow = await childId("created");
  await page.locator("#mode-banner[data-mode=shadow]").filter({ hasText: "Shadow run — nothing was written." }).waitFor();
  const sc = await waitDone("the shadow run");
  check(sc.succeeded === limit && sc.failed === 0, `shadow counters ${JSON.stringify(sc)}`);
  step(`shadow run ${shadow} completed over ${sc.succeeded} tickets`);
  const shadowTotals = await checkTotals(shadow, "shadow");
  const prio = shadowTotals.find((t) => t.field === "priority/id");
  check(prio.before === "3" && prio.after === "2" && prio.entities === limit, `priority group: ${JSON.stringify(prio)}`);
  check((await simWrites()).length === 0, "a shadow run writes nothing to the PSA");
  step("the simulator's write log is empty");
  // Each item lists its own would-be changes and note.
  await page.waitForFunction((n) => document.querySelectorAll('#items td.diff .diff-field[data-field="priority/id"]').length === n, limit);
  const notes = await page.locator("#items td.diff .diff-note").allInnerTexts();
  check(notes.length === limit && notes.every((n) => n.startsWith("would add an internal note: Escalated from")), `notes: ${notes[0]}`);
  await checkLabels("shadow run page");
  await shot("shadow-run");
  // The execution's audit says what it would write.
  await page.locator("#items a.exec-link").first().click();
  await page.locator("#field-audit[data-mode=shadow] #audit-shadow").waitFor();
  const audit = await page.locator('#audit tr[data-field="priority/id"]').innerText();
  check(audit.includes("would write") && audit.includes("3") && audit.includes("2"), `audit: ${audit}`);
  step(`shadow execution's audit: ${audit.replace(/\s+/g, " ").trim()}`);
  await shot("shadow-execution-audit");
  await page.goBack();

  // ---- apply ---------------------------------------------------------------------------------
  check((await page.locator("#action-revert").count()) === 0, "a shadow run is not reverted");
  await page.getByRole("button", { name: "Apply" }).click();
  const apply = await childId("apply");
  check(dialogs.some((d) => d.startsWith("Apply this shadow run?")), "apply asks first");
  await page.locator("#flash").filter({ hasText: `Apply created: a live run over the ${limit} entities of shadow run ${shadow}` }).waitFor();
  await page.locator("#mode-banner[data-mode=live]").waitFor();
  const ac = await waitDone("the apply");
  check(ac.succeeded === limit && ac.failed === 0, `apply counters ${JSON.stringify(ac)}`);
  const applyTotals = await checkTotals(apply, "apply");
  check(JSON.stringify(applyTotals) === JSON.stringify(shadowTotals), "the apply wrote what the shadow run previewed");
  const w = await simWrites();
  check(ok(w, "update") === limit && ok(w, "note") === limit, `write log after apply: ${ok(w, "update")} updates, ${ok(w, "note")} notes`);
  step(`apply ${apply}: ${ac.succeeded} succeeded; the simulator logged ${ok(w, "update")} updates and ${ok(w, "note")} notes`);
  await page.locator("#items a.exec-link").first().click();
  await page.locator("#field-audit[data-mode=live]").waitFor();
  check((await page.locator('#audit tr[data-field="priority/id"]').innerText()).includes("written"), "the apply's audit says written");
  await page.goBack();
  await shot("applied");

  // ---- a technician edits one ticket; revert skips it ---------------------------------------------
  const edited = await page.locator("#items tr[data-entity]").first().getAttribute("data-entity");
  const t = await fetch(`${sim}/__sim/technician`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ psa: "connectwise", ticket_id: Number(edited), field: "priority/id", value: 1 }),
  });
  check(t.ok, `technician edit: ${t.status}`);
  step(`a technician set ticket ${edited} to priority 1`);
  await page.getByLabel("also remove the notes it added").check();
  await page.getByRole("button", { name: "Revert" }).click();
  const revert = await childId("revert");
  check(dialogs.some((d) => d.startsWith("Revert this backfill?")), "revert asks first");
  await page.locator("#flash").filter({ hasText: "removing the notes it added" }).waitFor();
  await page.locator("#mode-banner[data-mode=revert]").filter({ hasText: "The notes its parent added are removed." }).waitFor();
  const rc = await waitDone("the revert");
  check(rc.succeeded === limit - 1 && rc.skipped === 1 && rc.failed === 0, `revert counters ${JSON.stringify(rc)}`);
  step(`revert ${revert}: ${rc.succeeded} succeeded, ${rc.skipped} skipped`);
  const revertTotals = await checkTotals(revert, "revert");
  const back = revertTotals.find((x) => x.field === "priority/id");
  check(back.before === "2" && back.after === "3" && back.entities === limit - 1, `restored priority: ${JSON.stringify(back)}`);
  check((await page.locator("#action-apply, #action-revert").count()) === 0, "a revert offers neither apply nor revert");
  await page.getByLabel("Status").selectOption("skipped");
  await page.waitForFunction(() => {
    const rows = document.querySelectorAll("#items tr[data-entity]");
    return rows.length === 1 && rows[0].dataset.status === "skipped";
  });
  const skipped = page.locator("#items tr[data-entity]");
  check((await skipped.getAttribute("data-entity")) === edited, "the edited ticket is the skipped one");
  const reason = (await skipped.locator(".skip-reason").innerText()).trim();
  check(reason.startsWith("changed_since: priority/id changed in the PSA after backfill " + apply), `reason: ${reason}`);
  step(`skipped ticket ${edited}: ${reason}`);
  const parentLink = await page.locator("#live dt", { hasText: "Revert of" }).count();
  check(parentLink === 1, "the revert names its parent");
  await checkLabels("revert page");
  await shot("reverted");
  await page.setViewportSize({ width: 375, height: 800 });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= 376, `the revert page is ${wide}px wide at 375px`);
  await shot("reverted-375");
  await page.setViewportSize({ width: 1440, height: 900 });

  // ---- the chain and the list name each run -----------------------------------------------------
  await page.goto(`${base}/backfills/${apply}`);
  check((await page.locator('.chain li[data-relation="revert"]').count()) === 1, "the apply's chain lists its revert");
  check((await page.locator('.chain li[data-relation="parent"]').count()) === 1, "and its shadow run");
  await page.goto(`${base}/backfills`);
  check((await page.locator(`tr[data-id="${shadow}"] [data-mode=shadow]`).count()) === 1, "the list tags the shadow run");
  check((await page.locator(`tr[data-id="${revert}"] [data-mode=revert]`).count()) === 1, "and the revert");
  check((await page.locator(`tr[data-id="${apply}"]`).innerText()).includes("apply of"), "the apply names its parent");
  check((await page.locator(`tr[data-id="${revert}"]`).innerText()).includes("revert of"), "the revert names its parent");
  await shot("list");

  for (const b of bodies) {
    for (const s of secrets) check(!b.text.includes(s), `a secret reached the browser in ${b.url}`);
  }
  return { shadow, apply, revert, edited };
});
