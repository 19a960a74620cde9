// graphile-worker peer for ./bench/run: enqueue N no-op jobs (not timed), then run workers
// until the queue is empty (timed) and print `RESULT <name> <jobs/s> jobs/s`.
// Two configurations:
// - default (`graphile_worker`): `runOnce` with `concurrency` workers (100 here);
// - best (`graphile_worker_best`): the configuration graphile-worker publishes for throughput
//   (worker.graphile.org/docs/performance): concurrentJobs 24, maxPoolSize 25,
//   localQueue { size: 500 }, completeJobBatchDelay 0, failJobBatchDelay 0, with `run`.
// Usage: node bench.js postgres://postgres@127.0.0.1:5432/db [jobs] [concurrency] [default|best]
"use strict";
const { makeWorkerUtils, run, runOnce } = require("graphile-worker");

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
  const best = (process.argv[5] || "default") === "best";
  const name = best ? "graphile_worker_best" : "graphile_worker";
  const started = process.hrtime.bigint();
  let finished;
  if (best) {
    const runner = await run({
      preset: {
        worker: {
          connectionString,
          concurrentJobs: 24,
          maxPoolSize: 25,
          localQueue: { size: 500 },
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
        },
      },
      taskList,
      noHandleSignals: true,
      logger: quietLogger(),
    });
    // `run` keeps polling: stop it once every job has run.
    finished = (async () => {
      while (done < jobs) await new Promise((r) => setTimeout(r, 2));
      await runner.stop();
    })();
  } else {
    // runOnce: `concurrency` workers, each until no job is left.
    finished = runOnce({ connectionString, concurrency, taskList, noHandleSignals: true, logger: quietLogger() }, taskList);
  }
  const timedOut = await Promise.race([
    finished.then(() => false),
    new Promise((r) => setTimeout(() => r(true), limit * 1000).unref()),
  ]);
  if (timedOut) {
    // The figure is then jobs done / time; the pool is abandoned, the process exits.
    const secs = Number(process.hrtime.bigint() - started) / 1e9;
    const rate = done / secs;
    console.error(`${name}: ${done} of ${jobs} jobs in ${secs.toFixed(2)} s (stopped at the ${limit} s limit): ${rate.toFixed(0)} jobs/s`);
    console.log(`RESULT ${name} ${rate.toFixed(1)} jobs/s`);
    process.exit(0);
  }
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  // Completions may still be in flight to the database when the last task returns.
  await new Promise((r) => setTimeout(r, 200));
  const left = await utils.withPgClient((c) =>
    c.query("select count(*)::int as n from graphile_worker.jobs"),
  );
  await utils.release();
  if (done !== jobs || left.rows[0].n !== 0) {
    throw new Error(`ran ${done} of ${jobs} jobs, ${left.rows[0].n} left`);
  }
  const rate = jobs / secs;
  console.error(`${name}: ${jobs} jobs in ${secs.toFixed(2)} s: ${rate.toFixed(0)} jobs/s`);
  console.log(`RESULT ${name} ${rate.toFixed(1)} jobs/s`);
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
