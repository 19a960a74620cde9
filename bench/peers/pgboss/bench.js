// pg-boss peer for ./bench/run: insert N no-op jobs (not timed), then work them until none is
// left (timed) and print `RESULT pg_boss <jobs/s> jobs/s`. Its documented high-throughput
// settings (docs/api/workers.md): batches (`batchSize` 500, the size of graphile-worker's local
// queue; a batch completes together when the handler returns), several pollers per node
// (`localConcurrency` 4), fetching again at once while batches come back full
// (`burstWhenBatchFull`), and the shortest idle poll (0.5 s).
// Usage: node bench.js postgres://postgres@127.0.0.1:5432/db [jobs]
"use strict";
const { PgBoss } = require("pg-boss");

async function main() {
  const connectionString = process.argv[2];
  const jobs = parseInt(process.argv[3] || process.env.BENCH_ITEMS || "100000", 10);
  const boss = new PgBoss({ connectionString, max: 10 });
  boss.on("error", (e) => console.error(e));
  await boss.start();
  const queue = "noop";
  await boss.createQueue(queue);
  const t0 = Date.now();
  const chunk = 10000;
  for (let i = 0; i < jobs; i += chunk) {
    const batch = [];
    for (let j = i; j < Math.min(jobs, i + chunk); j++) batch.push({ data: { i: j } });
    await boss.insert(queue, batch);
  }
  console.error(`pg_boss: enqueued ${jobs} jobs in ${Date.now() - t0} ms`);
  const limit = parseFloat(process.env.PEER_TIME_LIMIT_SECS || "300");
  let done = 0;
  const started = process.hrtime.bigint();
  await boss.work(
    queue,
    { batchSize: 500, localConcurrency: 4, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
    async (batch) => {
      done += batch.length;
    },
  );
  // Done when every job ran and none is left that is not completed.
  const db = boss.getDb();
  const open = async () =>
    Number((await db.executeSql("SELECT count(*) AS n FROM pgboss.job WHERE name = $1 AND state <> 'completed'", [queue])).rows[0].n);
  const deadline = Date.now() + limit * 1000;
  let timedOut = false;
  for (;;) {
    if (done >= jobs && (await open()) === 0) break;
    if (Date.now() > deadline) {
      timedOut = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  await boss.stop({ graceful: false, wait: false });
  const rate = (timedOut ? done : jobs) / secs;
  console.error(`pg_boss: ${done} of ${jobs} jobs in ${secs.toFixed(2)} s${timedOut ? ` (stopped at the ${limit} s limit)` : ""}: ${rate.toFixed(0)} jobs/s`);
  console.log(`RESULT pg_boss ${rate.toFixed(1)} jobs/s`);
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
