"""The status endpoint under polling: C concurrent pollers of GET /api/jobs/{id}/status on loopback while
jobs run in a real qcluster. Prints requests per second and latency percentiles.

    .venv/bin/python bench/status_polling.py --db sqlite --pollers 50 --seconds 20
    .venv/bin/python bench/status_polling.py --db postgres --pollers 50 --seconds 20
    .venv/bin/python bench/status_polling.py --db sqlite --pollers 50 --interval 2   # as the pages poll

The web server is gunicorn (gthread workers), as in production; --server runserver measures the
development server instead. The pollers run in this process (asyncio + httpx) on the same two cores.
"""

import argparse
import asyncio
import random
import statistics
import time

import httpx

from _common import PYTHON, fresh_database_env, free_port, migrate_and_setup_django, start, stop


async def poll(client, urls, seconds, interval, latencies, failures):
    if interval:  # pages opened at different moments do not poll in step
        await asyncio.sleep(random.uniform(0, interval))
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        if interval and i:
            await asyncio.sleep(interval)
        url = urls[i % len(urls)]
        i += 1
        began = time.perf_counter()
        try:
            response = await client.get(url)
            if response.status_code != 200:
                failures.append(response.status_code)
                continue
        except httpx.HTTPError as exc:
            failures.append(type(exc).__name__)
            continue
        latencies.append(time.perf_counter() - began)


async def load(base, token, job_ids, pollers, seconds, interval):
    urls = [f"{base}/api/jobs/{job_id}/status" for job_id in job_ids]
    latencies, failures = [], []
    limits = httpx.Limits(max_connections=pollers, max_keepalive_connections=pollers)
    async with httpx.AsyncClient(headers={"Authorization": f"Token {token}"}, limits=limits,
                                 timeout=30) as client:
        started = time.monotonic()
        await asyncio.gather(
            *(poll(client, urls, seconds, interval, latencies, failures) for _ in range(pollers))
        )
        elapsed = time.monotonic() - started
    return latencies, failures, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--interval", type=float, default=0,
                        help="Seconds each poller waits between requests (0: flat out; the pages use 2).")
    parser.add_argument("--server", choices=["gunicorn", "runserver"], default="gunicorn")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    env = fresh_database_env(args.db, "jobsite_bench_status")
    migrate_and_setup_django(env)
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from queueapp.engine import JobStatus, submit
    from queueapp.models import Job

    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    token = Token.objects.create(user=user).key
    port = free_port()
    if args.server == "gunicorn":
        # gunicorn.conf.py supplies the rest (gthread, keep-alive), as in production.
        web_cmd = [PYTHON, "-m", "gunicorn", "jobsite.wsgi", "-b", f"127.0.0.1:{port}",
                   "-w", str(args.web_workers), "--threads", str(args.threads), "--log-level", "warning"]
    else:
        web_cmd = [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    web = start(web_cmd, env, f"bench_status_{args.db}_web")
    cluster = start([PYTHON, "manage.py", "qcluster"], env, f"bench_status_{args.db}_qcluster")
    try:
        # Jobs that keep the workers writing progress while the pollers read it.
        jobs = [submit("demo.count", {"n": 100_000, "delay": 0.02}, owner=user) for _ in range(4)]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/api/jobs/{jobs[0].id}/status",
                             headers={"Authorization": f"Token {token}"}).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the web server did not come up")
            time.sleep(0.2)
        running = Job.objects.filter(status=JobStatus.RUNNING).count()
        latencies, failures, elapsed = asyncio.run(
            load(base, token, [job.id for job in jobs], args.pollers, args.seconds, args.interval)
        )
        done_during = sum(Job.objects.filter(id__in=[j.id for j in jobs]).values_list("progress_done", flat=True))
        qs = statistics.quantiles(latencies, n=100)
        print(f"database: {args.db}, server: {args.server}"
              + (f" ({args.web_workers} workers x {args.threads} threads)" if args.server == "gunicorn" else "")
              + f", pollers: {args.pollers}"
              + (f" (each every {args.interval:g} s)" if args.interval else " (flat out)")
              + f", jobs running at start: {running}")
        print(f"requests: {len(latencies)} ok, {len(failures)} failed in {elapsed:.1f} s "
              f"-> {len(latencies) / elapsed:.0f} requests/s")
        print(f"latency: p50 {qs[49] * 1000:.1f} ms, p90 {qs[89] * 1000:.1f} ms, p99 {qs[98] * 1000:.1f} ms, "
              f"max {max(latencies) * 1000:.1f} ms")
        print(f"progress steps the workers wrote meanwhile: {done_during}")
        if failures:
            print(f"failures: {sorted(set(map(str, failures)))}")
    finally:
        for job in Job.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]):
            Job.objects.filter(id=job.id).update(cancel_requested=True)
        stop(web)
        stop(cluster)


if __name__ == "__main__":
    main()
