from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from queueapp import services


class Command(BaseCommand):
    help = "Delete finished jobs (succeeded, failed, cancelled) whose end is older than N days, with their history."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=settings.JOBS_RETENTION_DAYS,
                            help="Keep jobs that finished within this many days (default: %(default)s).")

    def handle(self, *args, days, **options):
        if days < 0:
            raise CommandError("--days must be 0 or more.")
        deleted = services.cleanup(days)
        self.stdout.write(f"Deleted {deleted} finished job(s) older than {days} day(s).")
