"""Engine throughput: N demo jobs of no work submitted at once, run by a real qcluster.

Prints jobs per second end to end (first submit to last finish) and the median time from submit to start.

    .venv/bin/python bench/engine_throughput.py --db sqlite --jobs 1000 --workers 2
    .venv/bin/python bench/engine_throughput.py --db postgres --jobs 1000 --workers 2

It uses its own database (var/jobsite_bench.sqlite3, or the PostgreSQL database jobsite_bench, made anew)
and never touches db.sqlite3.
"""

import argparse
import statistics
import time

from _common import PYTHON, fresh_database_env, migrate_and_setup_django, start, stop


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    env = fresh_database_env(args.db, "jobsite_bench")
    env["Q_WORKERS"] = str(args.workers)
    migrate_and_setup_django(env)
    from queueapp.engine import JobStatus, submit
    from queueapp.models import Job

    cluster = start([PYTHON, "manage.py", "qcluster"], env, f"bench_engine_{args.db}_qcluster")
    try:
        time.sleep(3)  # let the cluster start its workers before the clock starts
        started = time.monotonic()
        for _ in range(args.jobs):
            submit("demo.count", {"n": 0, "delay": 0})
        submitted = time.monotonic()
        while True:
            done = Job.objects.filter(status=JobStatus.SUCCEEDED).count()
            if done >= args.jobs:
                break
            if time.monotonic() - started > 600:
                raise SystemExit(f"only {done} of {args.jobs} jobs finished in 600 s")
            time.sleep(0.05)
        finished = time.monotonic()
        rows = list(Job.objects.values_list("created_at", "started_at", "finished_at"))
        waits = [(s - c).total_seconds() for c, s, _ in rows]
        first_created = min(c for c, _, _ in rows)
        last_finished = max(f for _, _, f in rows)
        span = (last_finished - first_created).total_seconds()
        print(f"database: {args.db}, workers: {args.workers}, jobs: {args.jobs}")
        print(f"submit loop: {submitted - started:.2f} s ({args.jobs / (submitted - started):.0f} submits/s)")
        print(f"end to end (first submit to last finish): {span:.2f} s -> {args.jobs / span:.1f} jobs/s")
        print(f"observed by the poller: {finished - started:.2f} s")
        print(f"submit -> start: median {statistics.median(waits) * 1000:.0f} ms, "
              f"p90 {statistics.quantiles(waits, n=10)[-1] * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms"
              " (a backlog: all jobs were submitted at once)")
        # The same on an idle queue: one job at a time, as a seller clicking a button sees it.
        lone = []
        for _ in range(20):
            job = submit("demo.count", {"n": 0, "delay": 0})
            while not Job.objects.filter(id=job.id, status=JobStatus.SUCCEEDED).exists():
                time.sleep(0.01)
            job.refresh_from_db()
            lone.append((job.started_at - job.created_at).total_seconds())
        print(f"idle queue, one job at a time: submit -> start median {statistics.median(lone) * 1000:.0f} ms")
    finally:
        stop(cluster)


if __name__ == "__main__":
    main()
