"""Category fetch end to end: N leaf categories under 26395 Health & Beauty fetched by a real qcluster from
the fake eBay server over loopback HTTP, at the configured spacing between calls (default 200 ms).

Prints the measured time (POST-equivalent start to job finished), the ideal N x spacing, the overhead
ratio, and compares with the seed (5 categories a minute: 1,000 categories = 3.3 hours).

    .venv/bin/python bench/ebay_category_fetch.py --categories 1000 --spacing 0.2
    .venv/bin/python bench/ebay_category_fetch.py --db postgres --categories 1000

Its own database (var/jobsite_bench_ebay.sqlite3 or PostgreSQL jobsite_bench_ebay, made anew).
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import PYTHON, fresh_database_env, migrate_and_setup_django, start, stop  # noqa: E402

from ebay.fake_server import FakeEbayServer  # noqa: E402  (plain Python: no Django needed)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--categories", type=int, default=1000)
    parser.add_argument("--spacing", type=float, default=0.2, help="EBAY_CALL_SPACING_SECONDS")
    parser.add_argument("--slice", type=float, default=30, help="EBAY_CATEGORY_FETCH_SLICE_SECONDS")
    args = parser.parse_args()

    server = FakeEbayServer(port=0).start()
    env = fresh_database_env(args.db, "jobsite_bench_ebay")
    env.update({"EBAY_ENV": "fake", "EBAY_CLIENT_ID": "", "EBAY_API_BASE_URL": server.url,
                "EBAY_CALL_SPACING_SECONDS": str(args.spacing),
                "EBAY_CATEGORY_FETCH_SLICE_SECONDS": str(args.slice)})
    migrate_and_setup_django(env)
    from ebay import services
    from ebay.models import CategoryFetch

    cluster = start([PYTHON, "manage.py", "qcluster"], env, f"bench_ebay_{args.db}_qcluster")
    try:
        time.sleep(3)  # the cluster's workers are up before the clock starts
        started = time.monotonic()
        fetch = services.start_category_fetch(None, "EBAY_US", "26395", max_categories=args.categories,
                                              force=True)
        queued = time.monotonic()
        while True:
            fetch = CategoryFetch.objects.select_related("job").get(pk=fetch.pk)
            if not fetch.job.is_active:
                break
            if time.monotonic() - started > max(600, args.categories * args.spacing * 3):
                raise SystemExit(f"not finished: {fetch.processed} of {fetch.total_categories}")
            time.sleep(0.2)
        measured = time.monotonic() - started
        job = fetch.job
        ideal = fetch.total_categories * args.spacing
        calls = len(server.state.requests_to("get_item_aspects_for_category"))
        slices = job.events.filter(type="yielded").count() + 1
        print(f"database: {args.db}; categories: {fetch.total_categories}; spacing: {args.spacing * 1000:.0f} ms; "
              f"slice budget: {args.slice:g} s")
        print(f"job {job.id}: {job.status}, {fetch.success} stored, {fetch.failed} failed, {calls} aspect calls, "
              f"{slices} slices, {job.attempts} attempt(s)")
        print(f"start request (tree read + {fetch.total_categories} rows queued): {queued - started:.2f} s")
        print(f"measured end to end: {measured:.1f} s; ideal {fetch.total_categories} x {args.spacing:g} s = "
              f"{ideal:.1f} s; overhead ratio {measured / ideal:.3f} ({measured - ideal:+.1f} s)" if ideal else
              f"measured end to end: {measured:.1f} s")
        print(f"rate: {fetch.total_categories / measured:.2f} categories/s; the seed's 5 a minute would take "
              f"{fetch.total_categories / 5 / 60:.1f} h ({fetch.total_categories / 5 * 60 / measured:.0f}x slower)")
    finally:
        stop(cluster)
        server.stop()


if __name__ == "__main__":
    main()
