// A consumer's flow through a TypeScript client generated from the served OpenAPI document
// (openapi-typescript types, openapi-fetch calls), written from the document alone: no casts,
// no `any`. scripts/clients type-checks it (`tsc`) and runs it against a live `serve`.
//
//   NEO_URL=http://127.0.0.1:8080 NEO_KEY=neo_sk_live_... node dist/flow.js
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api.js";

type Backfill = components["schemas"]["PublicBackfill"];
type RunState = components["schemas"]["BackfillRunState"];
type ErrorEnvelope = components["schemas"]["ErrorEnvelope"];

const baseUrl = process.env.NEO_URL ?? "http://127.0.0.1:8080";
const key = process.env.NEO_KEY;
if (!key) throw new Error("set NEO_KEY to an API key of the service at NEO_URL");
const neo = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${key}` } });

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`flow: ${what}`);
}

/** The data of a successful answer, or a thrown error naming the error envelope's code. */
function ok<T>(r: { data?: { data: T }; error?: ErrorEnvelope; response: Response }, what: string): T {
  if (r.data === undefined) {
    throw new Error(`${what}: HTTP ${r.response.status} ${r.error?.error.code}: ${r.error?.error.message}`);
  }
  return r.data.data;
}

async function waitFor(id: string, done: (s: RunState) => boolean): Promise<Backfill> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const b = ok(await neo.GET("/public-api/backfills/{backfill_id}", { params: { path: { backfill_id: id } } }), "get backfill");
    if (done(b.state)) return b;
    if (Date.now() > deadline) throw new Error(`backfill ${id} still ${b.state} after 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const terminal = (s: RunState): boolean => s === "COMPLETED" || s === "CANCELLED" || s === "FAILED";
const run = `${Date.now()}`;

// A workflow with a simulated executor that fails about a third of the entities.
const agent = ok(
  await neo.POST("/public-api/agents", {
    body: {
      name: `ts flow ${run}`,
      executor: { type: "simulated", latency_ms: 0, failure_rate: 0.3, seed: 7 },
    },
  }),
  "create agent",
);
check(agent.executor.type === "simulated", "the executor reads back as simulated");

// A backfill over 40 explicit entities, polled to COMPLETED.
const entityIds = Array.from({ length: 40 }, (_, i) => `ts-${run}-${i}`);
const created = ok(
  await neo.POST("/public-api/backfills", {
    body: { target_workflow_id: agent.id, filter_spec: { entity_ids: entityIds }, max_in_flight: 10 },
  }),
  "create backfill",
);
check(created.cost_estimate.total_entities === 40, "the estimate counts 40 entities");
const fs = created.backfill.filter_spec;
check("entity_ids" in fs && fs.entity_ids.length === 40, "filter_spec reads back as the 40 ids");
const source = await waitFor(created.backfill.id, terminal);
check(source.state === "COMPLETED", `the backfill completed (${source.state})`);
check(source.failed_count > 0 && source.succeeded_count > 0, "some entities failed, some succeeded");

// Its failed items, page by page.
let failed = 0;
let cursor: string | undefined;
for (;;) {
  const page = await neo.GET("/public-api/backfills/{backfill_id}/items", {
    params: { path: { backfill_id: source.id }, query: { status: ["failed"], page_size: 5, cursor } },
  });
  const items = ok(page, "list failed items");
  failed += items.length;
  check(items.every((i) => i.status === "failed"), "only failed items are listed");
  const next = page.data?.meta.pagination.next_cursor;
  if (!next) break;
  cursor = next;
}
check(failed === source.failed_count, `${failed} failed items listed, failed_count ${source.failed_count}`);

// Rerun the failed ones as a child backfill.
const rerun = ok(
  await neo.POST("/public-api/backfills/{backfill_id}/rerun-failed", { params: { path: { backfill_id: source.id } } }),
  "rerun failed",
);
check(rerun.backfill.parent_backfill_run_id === source.id, "the child names its source");
check(rerun.cost_estimate.total_entities === source.failed_count, "the child covers the failed entities");
const child = await waitFor(rerun.backfill.id, terminal);
check(child.total_items === source.failed_count, "the child's snapshot is the failed entities");

// The backfill list, one per page: the cursor leads to the next one.
const first = await neo.GET("/public-api/backfills", { params: { query: { page_size: 1 } } });
const firstPage = ok(first, "list backfills");
const nextCursor = first.data?.meta.pagination.next_cursor;
check(firstPage.length === 1 && typeof nextCursor === "string", "a first page of one with a cursor");
const second = ok(
  await neo.GET("/public-api/backfills", { params: { query: { page_size: 1, cursor: nextCursor ?? undefined } } }),
  "list backfills, page 2",
);
check(second.length === 1 && second[0]?.id !== firstPage[0]?.id, "the second page holds another backfill");

// Pause and resume a slow backfill, then cancel it.
const slow = ok(
  await neo.POST("/public-api/agents", {
    body: { name: `ts flow slow ${run}`, executor: { type: "simulated", latency_ms: 300 } },
  }),
  "create slow agent",
);
const running = ok(
  await neo.POST("/public-api/backfills", {
    body: {
      target_workflow_id: slow.id,
      filter_spec: { entity_ids: entityIds.slice(0, 20) },
      max_in_flight: 1,
    },
  }),
  "create slow backfill",
).backfill;
const paused = ok(
  await neo.POST("/public-api/backfills/{backfill_id}/pause", { params: { path: { backfill_id: running.id } } }),
  "pause",
);
check(paused.signal === "pause", "the pause signal is acknowledged");
check((await waitFor(running.id, (s) => s === "PAUSED")).state === "PAUSED", "the backfill reads PAUSED");
ok(await neo.POST("/public-api/backfills/{backfill_id}/resume", { params: { path: { backfill_id: running.id } } }), "resume");
check((await waitFor(running.id, (s) => s !== "PAUSED")).state === "RUNNING", "the backfill runs again");
ok(await neo.POST("/public-api/backfills/{backfill_id}/cancel", { params: { path: { backfill_id: running.id } } }), "cancel");
check((await waitFor(running.id, terminal)).state === "CANCELLED", "the backfill is cancelled");

// Typed errors: a backfill that does not exist, and a workflow the service refuses.
const missing = await neo.GET("/public-api/backfills/{backfill_id}", { params: { path: { backfill_id: "bf_missing" } } });
check(missing.response.status === 404 && missing.error?.error.code === "backfill_not_found", "404 backfill_not_found");
const refused = await neo.POST("/public-api/agents", {
  body: { name: "refused", executor: { type: "webhook", url: "ftp://example.com/hook", secret: "0123456789abcdef" } },
});
check(refused.response.status === 422, `a bad executor answers 422 (${refused.response.status})`);
check(refused.error?.error.details?.field === "executor.url", "the error names executor.url");

console.log(`typescript flow: ok (backfill ${source.id}: ${source.succeeded_count} succeeded, ${source.failed_count} failed; rerun ${child.id})`);
