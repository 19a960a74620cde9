// graphile-worker peer for ./bench/run: enqueue N no-op jobs (not timed), then run a
// worker pool of concurrency 100 until the queue is empty (timed) and print
// `RESULT graphile_worker <jobs/s> jobs/s`.
// Usage: node bench.js postgres://postgres@127.0.0.1:5432/db [jobs] [concurrency]
"use strict";
const { makeWorkerUtils, runOnce } = require("graphile-worker");

async function main() {
  const connectionString = process.argv[2];
  const jobs = parseInt(process.argv[3] || process.env.BENCH_ITEMS || "100000", 10);
  const concurrency = parseInt(process.argv[4] || "100", 10);
  const utils = await makeWorkerUtils({ connectionString });
  await utils.migrate();
  const t0 = Date.now();
  const batch = 10000;
  for (let i = 0; i < jobs; i += batch) {
    const specs = [];
    for (let j = i; j < Math.min(jobs, i + batch); j++) {
      specs.push({ identifier: "noop", payload: { i: j } });
    }
    await utils.addJobs(specs);
  }
  console.error(`graphile_worker: enqueued ${jobs} jobs in ${Date.now() - t0} ms`);
  let done = 0;
  const taskList = {
    noop: async () => {
      done++;
    },
  };
  await utils.withPgClient((c) => c.query("analyze graphile_worker._private_jobs"));
  const limit = parseFloat(process.env.PEER_TIME_LIMIT_SECS || "300");
  const started = process.hrtime.bigint();
  // runOnce: `concurrency` workers, each until no job is left.
  const run = runOnce({ connectionString, concurrency, taskList, noHandleSignals: true, logger: quietLogger() }, taskList);
  const timedOut = await Promise.race([
    run.then(() => false),
    new Promise((r) => setTimeout(() => r(true), limit * 1000).unref()),
  ]);
  if (timedOut) {
    // The figure is then jobs done / time; the pool is abandoned, the process exits.
    const secs = Number(process.hrtime.bigint() - started) / 1e9;
    const rate = done / secs;
    console.error(`graphile_worker: ${done} of ${jobs} jobs in ${secs.toFixed(2)} s (stopped at the ${limit} s limit): ${rate.toFixed(0)} jobs/s`);
    console.log(`RESULT graphile_worker ${rate.toFixed(1)} jobs/s`);
    process.exit(0);
  }
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  const left = await utils.withPgClient((c) =>
    c.query("select count(*)::int as n from graphile_worker.jobs"),
  );
  await utils.release();
  if (done !== jobs || left.rows[0].n !== 0) {
    throw new Error(`ran ${done} of ${jobs} jobs, ${left.rows[0].n} left`);
  }
  const rate = jobs / secs;
  console.error(`graphile_worker: ${jobs} jobs in ${secs.toFixed(2)} s: ${rate.toFixed(0)} jobs/s`);
  console.log(`RESULT graphile_worker ${rate.toFixed(1)} jobs/s`);
}

function quietLogger() {
  const { Logger } = require("graphile-worker");
  return new Logger(() => (level, message) => {
    if (level === "error") console.error(message);
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
