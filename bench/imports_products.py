"""Benchmark: a 700k-row x 8-column product spreadsheet from upload to COMPLETED, then the same file again.

    .venv/bin/python bench/imports_products.py                         # SQLite, job run in this process
    .venv/bin/python bench/imports_products.py --db postgres           # PostgreSQL (database jobsite_imports_bench)
    .venv/bin/python bench/imports_products.py --mode cluster          # a real qcluster runs the job
    .venv/bin/python bench/imports_products.py --strings inline --rows 100000

The file is generated once by bench/make_products_xlsx.py under var/ (shared strings, like Excel, unless
--strings inline). Each run starts from an empty database, so the first import creates every product
and its price and stock records, and the second finds every row unchanged.

Reports for each import: seconds from the upload call to COMPLETED, and to the moment the product search
has caught up (the refresh job the import queues as it ends; in `direct` mode also run in this process),
rows per second, and peak RSS of the process that ran the job: in `direct` mode this process (ru_maxrss:
it also did the upload check), in `cluster` mode the largest VmHWM among the qcluster's processes; and
separately the largest of the reader processes the job starts for large files (imports/readahead.py), as
they report their own VmHWM in a job event.
The load average before each import is printed too: the machine is shared, so run it several times.
In `direct` mode it also prints the CPU seconds the import took in this process (the job), in the reader
processes, and in the local PostgreSQL server's processes (read from /proc, so only for a server on
this machine): on two cores these three share the machine, so their sum bounds the time.
"""

import argparse
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--mode", choices=["direct", "cluster"], default="direct")
    parser.add_argument("--rows", type=int, default=700_000)
    parser.add_argument("--strings", choices=["shared", "inline"], default="shared")
    parser.add_argument("--file", type=Path, help="Use this file instead of generating one.")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/jobsite_imports_bench")
    parser.add_argument("--no-reimport", action="store_true")
    return parser.parse_args()


def prepare_environment(args):
    os.environ["DJANGO_SETTINGS_MODULE"] = "jobsite.settings"
    os.environ["MEDIA_ROOT"] = str(VAR / "bench_media")
    if args.db == "sqlite":
        path = VAR / "bench_imports.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        os.environ.pop("DATABASE_URL", None)
        os.environ["SQLITE_PATH"] = str(path)
    else:
        import psycopg

        name = args.postgres_url.rsplit("/", 1)[1]
        admin_url = args.postgres_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        os.environ["DATABASE_URL"] = args.postgres_url
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)


def spreadsheet(args):
    if args.file:
        return args.file
    suffix = "" if args.strings == "shared" else "_inline"
    path = VAR / f"products_{args.rows // 1000}k{suffix}.xlsx"
    if not path.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_products_xlsx.py"), str(path),
                        "--rows", str(args.rows), "--strings", args.strings], check=True)
    return path


def cluster_peak_rss_mb(pgid):
    peak = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except (OSError, ProcessLookupError):
            continue
    return peak


def postgres_cpu_seconds():
    """CPU seconds of the PostgreSQL server on this machine so far: its live processes' own CPU plus what
    the ended ones used, which the postmaster collects as it reaps them (cutime, cstime)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() not in ("postgres", "postmaster"):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            ticks += sum(int(field) for field in fields[11:15])  # utime, stime, cutime, cstime
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def run_import(path, user, mode, cluster=None):
    from django.core.files import File

    from imports import services
    from imports.models import ImportLog
    from queueapp import runner

    started = time.monotonic()
    with open(path, "rb") as handle:
        import_log = services.start_product_import(File(handle, name=path.name), user)
    accepted = time.monotonic() - started
    cpu = None
    if mode == "direct":
        before = (time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN), postgres_cpu_seconds())
        runner.run_job(import_log.job_id)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (time.process_time() - before[0],
               children.ru_utime + children.ru_stime - before[1].ru_utime - before[1].ru_stime,
               postgres_cpu_seconds() - before[2])
    peak = 0.0
    while True:
        import_log.refresh_from_db()
        if cluster is not None:
            peak = max(peak, cluster_peak_rss_mb(cluster.pid))
        if import_log.import_status in (ImportLog.Status.COMPLETED, ImportLog.Status.FAILED):
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    # Then the product search catches up, by the refresh job the import queued as it ended.
    from queueapp.engine import Job, JobStatus

    while True:
        if mode == "direct":
            for job in Job.objects.filter(kind=services.SEARCH_REFRESH_KIND, status=JobStatus.QUEUED):
                runner.run_job(job.pk)
        import_log.refresh_from_db()
        if import_log.search_indexed_at is not None:
            break
        time.sleep(0.2)
    search_elapsed = time.monotonic() - started
    # The reader child reports its own VmHWM as a job event (ru_maxrss of children would count this
    # process's memory at the fork).
    child_peak = None
    for event in Job.objects.get(pk=import_log.job_id).events.all():
        if event.message.startswith("The reader process peaked at "):
            child_peak = float(event.message.rsplit(" ", 2)[1])
    if mode == "direct":
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, child_peak)
    else:
        peak = (max(peak, cluster_peak_rss_mb(cluster.pid)), child_peak)
    return import_log, accepted, elapsed, search_elapsed, peak, cpu


def main():
    args = parse_args()
    path = spreadsheet(args)
    prepare_environment(args)
    from django.contrib.auth import get_user_model
    from django.db import connection

    user, _ = get_user_model().objects.get_or_create(username="bench")
    cluster = None
    if args.mode == "cluster":
        # The worker as deployed: its poll interval is the project's (Q_POLL, 0.2 s by default).
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        log_file = open(VAR / "bench_imports_qcluster.log", "wb")
        cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        time.sleep(3)
    print(f"file: {path} ({path.stat().st_size / 1e6:.1f} MB), database: {connection.vendor}, "
          f"job run by: {'this process (runner.run_job)' if args.mode == 'direct' else 'qcluster'}, "
          f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    try:
        rounds = ["first import", "re-import of the same file"][: 1 if args.no_reimport else 2]
        for label in rounds:
            load = os.getloadavg()[0]
            import_log, accepted, elapsed, search_elapsed, (peak, child_peak), cpu = run_import(
                path, user, args.mode, cluster)
            rate = import_log.processed_rows / elapsed if elapsed else 0
            memory = (f"peak RSS {peak:.0f} MB" if args.mode == "direct"
                      else f"peak RSS {peak:.0f} MB (largest qcluster process)")
            memory += f", reader child {child_peak:.0f} MB" if child_peak else ""
            print(f"{label}: {import_log.import_status} in {elapsed:.1f} s (upload check {accepted:.2f} s), "
                  f"{rate:,.0f} rows/s, {memory}, load {load:.2f}; rows {import_log.processed_rows}, "
                  f"created {import_log.created_count}, updated {import_log.updated_count}, "
                  f"unchanged {import_log.unchanged_count}, errors {import_log.error_count}"
                  + (f"; error: {import_log.error}" if import_log.error else ""))
            if cpu is not None:
                print(f"  CPU: job {cpu[0]:.1f} s, readers {cpu[1]:.1f} s"
                      + (f", PostgreSQL server {cpu[2]:.1f} s" if connection.vendor == "postgresql" else ""))
            print(f"  product search current {search_elapsed:.1f} s after the upload "
                  f"({search_elapsed - elapsed:.1f} s after {import_log.import_status})")
    finally:
        if cluster is not None:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait()


if __name__ == "__main__":
    main()
