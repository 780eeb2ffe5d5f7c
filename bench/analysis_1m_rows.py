"""Benchmark: a sales analysis of a 1M-row Business Report, start to finish, in bounded memory.

    .venv/bin/python bench/analysis_1m_rows.py [--rows 1000000] [--items 2740]

Writes var/bench_analysis/business_report_<rows>.csv (once), then, in a fresh child process on its own
SQLite database: checks and stores the upload as POST /api/analysis/ does, and runs the job in-process.
Prints the time of each part and the child's peak RSS; run it with --rows 100000 too to see that the
peak does not grow with the number of rows.
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench_analysis"


def generate(path, rows, items):
    """A US 'Detail Page Sales and Traffic by Child Item' export by date: one row per item per day."""
    rng = random.Random(2)
    catalogue = [(f"B0{i:08d}", f"Design {i} T-Shirt, \"Funny\" gift", rng.randint(1, 80), rng.randint(1, 15),
                  rng.choice([12.99, 17.99, 19.99, 24.95, 29.99])) for i in range(items)]
    header = ('"Date","(Parent) ASIN","(Child) ASIN","Title","Sessions - Total","Session Percentage - Total",'
              '"Page Views - Total","Page Views Percentage - Total","Featured Offer (Buy Box) Percentage",'
              '"Units Ordered","Unit Session Percentage","Ordered Product Sales","Total Order Items"\r\n')
    tmp = path.with_suffix(".tmp")
    written = 0
    day = date(2023, 1, 1)
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        out.write(header)
        while written < rows:
            d = f"{day.month}/{day.day}/{day.year}"
            lines = []
            for asin, title, traffic, conv, price in catalogue:
                if written >= rows:
                    break
                sessions = rng.randint(0, traffic)
                units = sessions * conv // 100
                lines.append(f'"{d}","B0PARENT00","{asin}","{title.replace(chr(34), chr(34) * 2)}","{sessions:,}",'
                             f'"0.01%","{sessions * 2:,}","0.01%","100.00%","{units:,}","{conv:.2f}%",'
                             f'"${units * price:,.2f}","{units:,}"\r\n')
                written += 1
            out.writelines(lines)
            day += timedelta(days=1)
    tmp.replace(path)


def child(path):
    os.environ.pop("DATABASE_URL", None)
    os.environ["SQLITE_PATH"] = str(WORK / "bench.sqlite3")
    os.environ["MEDIA_ROOT"] = str(WORK / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobsite.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.files import File
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from analysis import services
    from queueapp import runner
    from queueapp.models import Job

    rss_setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    with open(path, "rb") as handle:
        analysis = services.start_analysis(owner=None, asin_or_url="B000000007", marketplace="US",
                                           revenue_csv=File(handle, name=path.name))
    t1 = time.perf_counter()
    runner.run_job(analysis.job_id)
    t2 = time.perf_counter()
    job = Job.objects.get(id=analysis.job_id)
    assert job.status == "succeeded", job.error
    r = job.result
    report = Path(os.environ["MEDIA_ROOT"]) / analysis.storage / "report.xlsx"
    print(json.dumps({
        "rows_used": r["inputs"]["revenue_csv"]["rows_used"],
        "rows_rejected": r["inputs"]["revenue_csv"]["rows_rejected"],
        "items": r["totals"]["items"],
        "revenue": r["totals"]["revenue"],
        "upload_check_and_store_seconds": round(t1 - t0, 2),
        "job_seconds": round(t2 - t1, 2),
        "rows_per_second": round(r["inputs"]["revenue_csv"]["rows_used"] / (t2 - t1)),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_after_django_setup_mb": round(rss_setup, 1),
        "result_json_kb": round(len(json.dumps(r)) / 1024),
        "report_kb": round(report.stat().st_size / 1024),
    }))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=2740)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        return child(Path(args.run))
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"business_report_{args.rows}_{args.items}.csv"
    if not path.exists():
        t = time.perf_counter()
        generate(path, args.rows, args.items)
        print(f"generated {path} ({path.stat().st_size / 1024 / 1024:.1f} MB) in {time.perf_counter() - t:.1f}s")
    for stale in ("bench.sqlite3", "bench.sqlite3-wal", "bench.sqlite3-shm"):
        (WORK / stale).unlink(missing_ok=True)
    load = os.getloadavg()
    out = subprocess.run([sys.executable, __file__, "--run", str(path)], capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"file: {path.name}, {path.stat().st_size / 1024 / 1024:.1f} MB; load average before: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    for key, value in figures.items():
        print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
