"""procrastinate peer for ./bench/run: defer N no-op jobs in batches (not timed), then run
one worker with concurrency 100 until the queue is empty (timed) and print
`RESULT procrastinate <jobs/s> jobs/s`.

Usage: .venv/bin/python bench.py postgresql://postgres@127.0.0.1:5432/db [jobs] [concurrency]
"""

import asyncio
import logging
import os
import sys
import time

import procrastinate

url = sys.argv[1]
jobs = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("BENCH_ITEMS", "100000"))
concurrency = int(sys.argv[3] if len(sys.argv) > 3 else "100")
# The worker stops after this many seconds; the figure is then jobs succeeded / time.
limit = float(os.environ.get("PEER_TIME_LIMIT_SECS", "300"))

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
done = 0


@app.task(name="noop")
async def noop(i: int) -> None:
    global done
    done += 1


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        t0 = time.monotonic()
        batch = 10_000
        for start in range(0, jobs, batch):
            await noop.batch_defer_async(*({"i": i} for i in range(start, min(jobs, start + batch))))
        print(f"procrastinate: deferred {jobs} jobs in {time.monotonic() - t0:.2f} s", file=sys.stderr)
        async with app.connector.pool.connection() as c:
            await c.execute("analyze procrastinate_jobs")
        started = time.monotonic()
        # wait=False: the worker stops once it has caught up with the queue.
        worker = app.run_worker_async(concurrency=concurrency, wait=False, install_signal_handlers=False)
        timed_out = False
        try:
            await asyncio.wait_for(worker, timeout=limit)
        except asyncio.TimeoutError:
            timed_out = True
        secs = time.monotonic() - started
        async with app.connector.pool.connection() as c:
            ok = (await (await c.execute("select count(*) from procrastinate_jobs where status = 'succeeded'")).fetchone())[0]
    if not timed_out and ok != jobs:
        raise SystemExit(f"ran {done} of {jobs} jobs, {ok} succeeded")
    rate = ok / secs
    note = f" (stopped at the {limit:.0f} s limit)" if timed_out else ""
    print(f"procrastinate: {ok} of {jobs} jobs in {secs:.2f} s{note}: {rate:.0f} jobs/s", file=sys.stderr)
    print(f"RESULT procrastinate {rate:.1f} jobs/s")


asyncio.run(main())
