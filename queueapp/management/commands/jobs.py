import json
import time

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management.base import BaseCommand, CommandError

from queueapp import services
from queueapp.models import Job, JobStatus


def find_job(job_id):
    try:
        job = Job.objects.filter(id=job_id).first()
    except (DjangoValidationError, ValueError):
        job = None
    if job is None:
        raise CommandError(f"No job with id {job_id!r}. 'manage.py jobs list' shows the ids.")
    return job


def progress_line(job):
    total = job.progress_total
    if total:
        width = 30
        filled = int(width * job.percentage / 100)
        bar = "#" * filled + "-" * (width - filled)
        return f"[{bar}] {job.percentage:3d}% {job.progress_done}/{total} {job.status} {job.message}"
    return f"{job.status} {job.progress_done or ''} {job.message}".strip()


def wait_for(job, out, interval=0.5):
    """Follow a job until it ends, drawing a progress bar on `out` (a command's OutputWrapper)."""
    tty = out.isatty()
    last = None
    while True:
        job.refresh_from_db()
        line = progress_line(job)
        if line != last:
            out.write(("\r" + line.ljust(100)) if tty else line + "\n", ending="")
            out.flush()
            last = line
        if not job.is_active:
            if tty:
                out.write("\n", ending="")
            return job
        time.sleep(interval)


class Command(BaseCommand):
    help = "List, show, submit, cancel and retry jobs, and print queue statistics."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        lister = sub.add_parser("list", help="Recent jobs, newest first.")
        lister.add_argument("--status", choices=JobStatus.values)
        lister.add_argument("--kind")
        lister.add_argument("--limit", type=int, default=20)
        show = sub.add_parser("show", help="One job with its history.")
        show.add_argument("job_id")
        for name, text in (("cancel", "Cancel a job."), ("retry", "Retry a failed or cancelled job.")):
            p = sub.add_parser(name, help=text)
            p.add_argument("job_id")
        sub.choices["retry"].add_argument("--from-start", action="store_true",
                                          help="Forget the checkpoint and start over.")
        sub.add_parser("stats", help="Counts by status and kind, ready vs. scheduled later.")
        submit = sub.add_parser("submit", help="Submit a job of any registered kind.")
        submit.add_argument("kind")
        submit.add_argument("--params", default="{}", help='JSON object, e.g. \'{"n": 20}\'')
        submit.add_argument("--wait", action="store_true", help="Follow it with a progress bar until it ends.")

    def handle(self, *args, action, **options):
        getattr(self, f"do_{action}")(**options)

    def do_list(self, status, kind, limit, **_):
        jobs = Job.objects.select_related("owner").order_by("-created_at")
        if status:
            jobs = jobs.filter(status=status)
        if kind:
            jobs = jobs.filter(kind=kind)
        rows = list(jobs[:limit])
        if not rows:
            self.stdout.write("No jobs.")
            return
        for job in rows:
            owner = job.owner.username if job.owner else "-"
            self.stdout.write(
                f"{job.id}  {job.kind:<24} {job.status:<9} {job.percentage:3d}%  "
                f"{job.attempts}/{job.max_attempts}  {owner:<12} {job.created_at:%Y-%m-%d %H:%M:%S}  {job.message}"
            )

    def do_show(self, job_id, **_):
        job = find_job(job_id)
        w = self.stdout.write
        w(f"Job {job.id}\n  kind: {job.kind}\n  owner: {job.owner or '-'}\n  status: {job.status}")
        w(f"  progress: {progress_line(job)}")
        w(f"  attempts: {job.attempts} of {job.max_attempts}")
        for field in ("run_after", "created_at", "started_at", "finished_at"):
            value = getattr(job, field)
            if value:
                w(f"  {field}: {value:%Y-%m-%d %H:%M:%S} UTC")
        w(f"  params: {json.dumps(job.params)}")
        if job.error:
            w(f"  error: {job.error}")
        if job.result is not None:
            w(f"  result: {json.dumps(job.result)[:2000]}")
        w("  history:")
        for event in job.events.all():
            w(f"    {event.created_at:%Y-%m-%d %H:%M:%S} {event.type:<16} {event.message}")

    def do_cancel(self, job_id, **_):
        job = find_job(job_id)
        try:
            job = services.cancel(job)
        except services.NotAllowed as exc:
            raise CommandError(str(exc))
        if job.status == JobStatus.RUNNING:
            self.stdout.write(f"Cancel requested for {job.id}; it stops at its next progress report.")
        else:
            self.stdout.write(f"Cancelled {job.id}.")

    def do_retry(self, job_id, from_start=False, **_):
        try:
            job = services.retry(find_job(job_id), from_start=from_start)
        except services.NotAllowed as exc:
            raise CommandError(str(exc))
        self.stdout.write(f"Queued {job.id} again.")

    def do_stats(self, **_):
        data = services.stats()
        data["workers"] = services.worker_clusters()
        self.stdout.write(json.dumps(data, indent=2, default=str))

    def do_submit(self, kind, params, wait, **_):
        try:
            parsed = json.loads(params)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--params is not valid JSON: {exc}")
        try:
            job = services.submit(kind, parsed)
        except services.InvalidParams as exc:
            raise CommandError(f"Invalid params for {kind}: {json.dumps(exc.errors)}")
        except services.JobError as exc:
            raise CommandError(str(exc))
        self.stdout.write(f"Submitted {job.kind} job {job.id}")
        if wait:
            job = wait_for(job, self.stdout)
            if job.status != JobStatus.SUCCEEDED:
                raise CommandError(f"Job {job.status}: {job.error or job.message}")
            self.stdout.write(json.dumps(job.result))
