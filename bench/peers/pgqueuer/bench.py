"""PgQueuer peer for ./bench/run: enqueue N no-op jobs (not timed), then run one QueueManager
until every job ran and the queue table is empty (timed), and print `RESULT pgqueuer <jobs/s>
jobs/s`. Its documented high-throughput settings: jobs dequeued in batches (`batch_size` 500,
the size of graphile-worker's local queue) over asyncpg, with the short dequeue timeout of a
busy queue. Usage: python bench.py postgresql://postgres@127.0.0.1:5432/db [jobs]
"""

import asyncio
import os
import sys
import time
from datetime import timedelta

import asyncpg
from pgqueuer import Queries, QueueManager


async def main() -> None:
    dsn = sys.argv[1]
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else int(os.environ.get("BENCH_ITEMS", "100000"))
    limit = float(os.environ.get("PEER_TIME_LIMIT_SECS", "300"))
    setup = await asyncpg.connect(dsn)
    queries = Queries.from_asyncpg_connection(setup)
    await queries.install()
    t0 = time.perf_counter()
    for i in range(0, jobs, 10_000):
        n = min(10_000, jobs - i)
        await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
    print(f"pgqueuer: enqueued {jobs} jobs in {(time.perf_counter() - t0) * 1000:.0f} ms", file=sys.stderr)

    conn = await asyncpg.connect(dsn)
    qm = QueueManager(Queries.from_asyncpg_connection(conn))
    done = 0

    @qm.entrypoint("noop")
    async def noop(job) -> None:
        nonlocal done
        done += 1

    async def stop_when_empty() -> bool:
        deadline = time.perf_counter() + limit
        while time.perf_counter() < deadline:
            if done >= jobs and await setup.fetchval("SELECT count(*) FROM pgqueuer") == 0:
                qm.shutdown.set()
                return False
            await asyncio.sleep(0.02)
        qm.shutdown.set()
        return True

    started = time.perf_counter()
    watcher = asyncio.create_task(stop_when_empty())
    await qm.run(batch_size=500, dequeue_timeout=timedelta(milliseconds=100))
    timed_out = await watcher
    secs = time.perf_counter() - started
    rate = (done if timed_out else jobs) / secs
    note = f" (stopped at the {limit:.0f} s limit)" if timed_out else ""
    print(f"pgqueuer: {done} of {jobs} jobs in {secs:.2f} s{note}: {rate:.0f} jobs/s", file=sys.stderr)
    print(f"RESULT pgqueuer {rate:.1f} jobs/s")


if __name__ == "__main__":
    asyncio.run(main())
