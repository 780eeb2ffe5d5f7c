import sys
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ebay import services
from ebay.models import CategoryFetch


class Command(BaseCommand):
    help = ("Queue a category-fetch job: the leaf categories of the marketplace's tree (or of --parent) have "
            "their item aspects fetched into the taxonomy store by the workers (`manage.py qcluster`).")

    def add_arguments(self, parser):
        parser.add_argument("--marketplace", default=None, help="eBay marketplace id (default EBAY_MARKETPLACE_ID).")
        parser.add_argument("--parent", default=None, help="Only leaves under this category, e.g. 26395.")
        parser.add_argument("--max", type=int, default=None, help="At most this many categories.")
        parser.add_argument("--force", action="store_true", help="Refetch categories that are still fresh.")
        parser.add_argument("--user", default=None, help="Owner of the job (default: none, a system job).")
        parser.add_argument("--wait", action="store_true", help="Show a progress bar until the job ends.")

    def handle(self, *args, **options):
        owner = None
        if options["user"]:
            owner = get_user_model().objects.filter(username=options["user"]).first()
            if owner is None:
                raise CommandError(f"No user {options['user']!r}.")
        if options["max"] is not None and options["max"] < 1:
            raise CommandError("--max must be at least 1.")
        if options["parent"] and not options["parent"].isdigit():
            raise CommandError("--parent is a category id, e.g. 26395.")
        try:
            fetch = services.start_category_fetch(owner, marketplace_id=options["marketplace"],
                                                  parent_category_id=options["parent"],
                                                  max_categories=options["max"], force=options["force"])
        except services.ServiceError as exc:
            raise CommandError(exc.message)
        self.stdout.write(f"Job {fetch.job_id}: {fetch.total_categories} categories queued"
                          + (f" under {fetch.parent_category}" if fetch.parent_category_id else "")
                          + f". Status: /api/ebay/category-fetches/{fetch.job_id}")
        if options["wait"]:
            return self._wait(fetch.job_id)

    def _wait(self, job_id):
        started, width = time.monotonic(), 30
        while True:
            fetch = CategoryFetch.objects.select_related("job").get(job_id=job_id)
            status = services.fetch_status(fetch, errors_limit=0)
            done, total = status["processed"], status["total_categories"] or 1
            filled = int(width * done / total)
            eta = f" ETA {status['eta_seconds']:.0f}s" if status["eta_seconds"] else ""
            line = (f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{status['total_categories']} "
                    f"{status['percentage']:3d}% ok {status['success']} failed {status['failed']} "
                    f"{status['status']}{eta}   ")
            self.stdout.write(line, ending="")
            self.stdout.flush()
            if not fetch.job.is_active:
                self.stdout.write("")
                if status["status"] != "completed":
                    raise CommandError(f"The job ended {status['status']}: {fetch.job.error or fetch.job.message}")
                for error in services.fetch_status(fetch, errors_limit=20)["errors"]:
                    self.stdout.write(f"  failed: {error['category_id']} {error['category_name']}: {error['error']}")
                return
            if status["status"] == "queued" and time.monotonic() - started > 30:
                sys.stderr.write("\nStill queued after 30 s: is a worker running (`manage.py qcluster` or "
                                 "`make run`)?\n")
                started = float("inf")
            time.sleep(1)
