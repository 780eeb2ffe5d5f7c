import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from analysis import services
from queueapp.engine import JobStatus


class Command(BaseCommand):
    help = ("Start a sales analysis of a revenue CSV (and optionally a design CSV) for a focus ASIN, "
            "like POST /api/analysis/; --wait follows it to the end and prints the summary.")

    def add_arguments(self, parser):
        parser.add_argument("--revenue", required=True, help="Sales export: Business Report or order report CSV.")
        parser.add_argument("--design", help="Optional CSV: one row per design with ASIN, name, type, keywords.")
        parser.add_argument("--asin", required=True, help="The focus ASIN, or an Amazon product URL.")
        parser.add_argument("--marketplace", default="", help="US, UK, DE, ... (default: the URL's store, else US).")
        parser.add_argument("--user", help="Username to own the job (it then shows in that user's API).")
        parser.add_argument("--wait", action="store_true", help="Follow the job until it ends.")
        parser.add_argument("--timeout", type=float, default=0,
                            help="With --wait: give up waiting after this many seconds (0: no limit).")

    def handle(self, *args, revenue, design, asin, marketplace, user, wait, timeout, **options):
        owner = None
        if user:
            owner = get_user_model().objects.filter(username=user).first()
            if owner is None:
                raise CommandError(f"No user {user!r}.")
        files = {}
        try:
            for key, path in (("revenue_csv", revenue), ("design_csv", design)):
                if path:
                    p = Path(path)
                    if not p.is_file():
                        raise CommandError(f"--{key.split('_')[0]}: no such file {path}")
                    files[key] = File(open(p, "rb"), name=p.name)
            try:
                analysis = services.start_analysis(owner=owner, asin_or_url=asin, marketplace=marketplace, **files)
            except services.InputErrors as exc:
                lines = [f"{field}: {message}" for field, messages in exc.errors.items() for message in messages]
                raise CommandError("\n".join(lines))
        finally:
            for handle in files.values():
                handle.close()
        job = analysis.job
        self.stdout.write(f"Queued sales analysis {job.id} of {analysis.asin} on Amazon {analysis.marketplace}.")
        self.stdout.write(f"Status: GET /api/analysis/{job.id}   Results: GET /api/jobs/{job.id}/result   "
                          f"Report: GET /api/analysis/{job.id}/report.xlsx")
        if wait:
            self.follow(job, timeout)

    def follow(self, job, timeout):
        started = time.monotonic()
        last = None
        hinted = False
        while True:
            job.refresh_from_db()
            state = services.status(job)
            line = f"{state['progress']:3d}% {state['status']}: {state['message']}"
            if line != last:
                self.stdout.write(line)
                last = line
            if not job.is_active:
                break
            waited = time.monotonic() - started
            if job.status == JobStatus.QUEUED and waited > 15 and not hinted:
                self.stderr.write("No worker has picked the job up yet: is `manage.py qcluster` (make run) running?")
                hinted = True
            if timeout and waited > timeout:
                raise CommandError(f"Still {job.status} after {timeout:.0f}s; the job goes on. "
                                   f"Follow it with: manage.py jobs show {job.id}")
            time.sleep(0.5)
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(f"The analysis {job.status}: {job.error or job.message}")
        for line in services.summary_lines(job.result):
            self.stdout.write(line)
        self.stdout.write(f"Report: {services.report_file(job)}")
