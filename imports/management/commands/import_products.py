import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from imports import services
from imports.models import ImportLog


class Command(BaseCommand):
    help = ("Check a product spreadsheet (.xlsx or .csv) and start its import as a background job; with "
            "--wait, follow it with a progress bar until it ends (a qcluster must be running).")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--wait", action="store_true",
                            help="Follow the import until it ends and the product search has caught up.")
        parser.add_argument("--user", help="Username recorded as the uploader (default: none).")
        parser.add_argument("--interval", type=float, default=0.5, help="Seconds between progress updates.")

    def handle(self, *args, **options):
        path = options["file"]
        if not path.is_file():
            raise CommandError(f"No file at {path}.")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}.")
        with open(path, "rb") as handle:
            try:
                import_log = services.start_product_import(File(handle, name=path.name), user)
            except services.UploadRejected as exc:
                raise CommandError("The file was refused:\n- " + "\n- ".join(exc.problems)) from None
        for warning in import_log.warnings:
            self.stderr.write(f"warning: {warning}")
        self.stdout.write(f"Import {import_log.pk} started as job {import_log.job_id} "
                          f"(about {import_log.total_rows} rows).")
        if not options["wait"]:
            return
        import_log = self.follow(import_log, options["interval"])
        self.stdout.write(
            f"{import_log.import_status}: {import_log.processed_rows} rows, {import_log.created_count} created, "
            f"{import_log.updated_count} updated, {import_log.unchanged_count} unchanged, "
            f"{import_log.error_count} rejected."
        )
        if import_log.error_count:
            self.stdout.write(f"Rejected rows: GET /api/imports/{import_log.pk}/errors.csv")
        services.request_search_refresh(import_log)  # (a no-op unless the import's end was not seen)
        import_log.refresh_from_db()
        if import_log.search_indexed_at is None:
            self.stdout.write("Updating the product search...")
            while import_log.search_indexed_at is None:
                time.sleep(options["interval"])
                import_log.refresh_from_db()
        self.stdout.write("The product search is up to date.")
        if import_log.import_status == ImportLog.Status.FAILED:
            raise CommandError(import_log.error or "The import failed.")

    def follow(self, import_log, interval):
        tty = self.stdout.isatty()
        last = None
        while True:
            import_log.refresh_from_db()
            import_log = services.sync_with_job(import_log)
            line = self.bar(import_log)
            if line != last:
                self.stdout.write(("\r" + line.ljust(90)) if tty else line, ending="" if tty else "\n")
                self.stdout.flush()
                last = line
            if import_log.import_status in (ImportLog.Status.COMPLETED, ImportLog.Status.FAILED):
                if tty:
                    self.stdout.write("")
                return import_log
            time.sleep(interval)

    @staticmethod
    def bar(import_log, width=30):
        total = import_log.total_rows or 0
        done = import_log.processed_rows
        percent = 100 if import_log.import_status == ImportLog.Status.COMPLETED else (
            min(100, int(done * 100 / total)) if total else 0)
        filled = int(width * percent / 100)
        return (f"[{'#' * filled}{'-' * (width - filled)}] {percent:3d}% {done}/{total or '?'} "
                f"{import_log.import_status.lower()}")
