// The dashboard's Failures section (issue 22, failure triage), driven by
// crates/neo-backfill/tests/dashboard_e2e.rs against the real `serve`: a COMPLETED backfill whose
// receiver failed in two ways shows two causes with their kinds and counts, a sample entity opens
// its items view, and "Rerun this cause" on the 4xx cause creates a child whose page says what it
// reruns.
//   NEO_E2E_BASE          the service's base URL (http://127.0.0.1:PORT)
//   NEO_E2E_KEY           an API key of the tenant
//   NEO_E2E_BACKFILL      the COMPLETED backfill with failures
//   NEO_E2E_SCREENSHOTS   where to save screenshots
//   NEO_E2E_CHROMIUM      the browser
// Prints each step, then `RESULT {"clusters": [{kind, count, signature, entities}], "child": id}`;
// exits 0 when every check passed.
import { check, must, open, step } from "./harness.mjs";

const base = must("NEO_E2E_BASE");
const key = must("NEO_E2E_KEY");
const id = must("NEO_E2E_BACKFILL");
const { page, dialogs, shot, signIn, run } = await open({ shots: must("NEO_E2E_SCREENSHOTS") });

/** The rows of the Failures table. */
async function clusters() {
  return page.evaluate(() => Array.from(document.querySelectorAll("#failure-clusters tr.failure-cluster")).map((r) => ({
    kind: r.dataset.kind,
    count: Number(r.querySelector(".cluster-count").textContent.trim()),
    signature: r.querySelector("code.signature").textContent,
    // Elements inside the signature: none, whatever the receiver wrote.
    markup: r.querySelector("code.signature").children.length,
    entities: Array.from(r.querySelectorAll("a.entity-link")).map((a) => a.dataset.entity),
    seen: r.querySelectorAll("time").length,
    rerun: !!r.querySelector("button.rerun-cause"),
  })));
}

await run(async () => {
  await signIn(base, key);

  await page.goto(`${base}/backfills/${id}`);
  await page.getByRole("heading", { name: "Failures" }).waitFor();
  const shown = await clusters();
  step(`clusters: ${JSON.stringify(shown)}`);
  check(shown.length === 2, `two causes: ${JSON.stringify(shown)}`);
  const kinds = shown.map((c) => c.kind).sort();
  check(kinds[0] === "http_4xx" && kinds[1] === "http_5xx", `a 4xx and a 5xx cause: ${kinds}`);
  check(shown[0].count >= shown[1].count, "most frequent first");
  for (const c of shown) {
    check(c.markup === 0, `the signature is text: ${c.signature}`);
    check(c.entities.length === Math.min(5, c.count), `up to five sample entities: ${JSON.stringify(c)}`);
    check(c.seen === 2, "first and last seen");
    check(c.rerun, "a COMPLETED backfill offers Rerun this cause");
  }
  const four = shown.find((c) => c.kind === "http_4xx");
  check(four.signature.includes("<b>ticket <id></b>"), `the 4xx signature masks the ticket and shows the tags as text: ${four.signature}`);
  await shot("failures");

  // A sample entity opens the items view of that entity.
  const entity = four.entities[0];
  await page.locator(`#failure-clusters a.entity-link[data-entity="${entity}"]`).click();
  await page.waitForURL(new RegExp(`\\?entity_id=${entity}#items$`));
  const rows = await page.locator("#items tbody tr").evaluateAll((rs) => rs.map((r) => [r.dataset.entity, r.dataset.status]));
  check(rows.length === 1 && rows[0][0] === entity && rows[0][1] === "failed", `the items view of ${entity}: ${JSON.stringify(rows)}`);
  step(`entity ${entity} in the items view`);

  // Rerun the 4xx cause only.
  await page.goto(`${base}/backfills/${id}`);
  await page.locator("#failure-clusters tr.failure-cluster[data-kind=\"http_4xx\"] button.rerun-cause").click();
  await page.waitForURL(/\/backfills\/bf_[0-9a-f]+\?flash=rerun$/);
  check(dialogs.some((d) => d.includes(`the ${four.count} entities that failed with this cause`)), `confirmed: ${dialogs}`);
  const child = page.url().replace(/\?.*$/, "").split("/").pop();
  check(child !== id, "a new backfill");
  const causes = (await page.locator("#rerun-causes").textContent()).trim();
  check(causes === `Rerun of: ${four.signature}`, `the child says what it reruns: ${causes}`);
  const flash = (await page.locator("#flash").textContent()).trim();
  check(flash.includes(`Rerun created over the ${four.count} failed entities`), `flash: ${flash}`);
  step(`child ${child}: ${causes}`);
  await shot("child");

  return { clusters: shown, child };
});
