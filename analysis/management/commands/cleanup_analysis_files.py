from django.core.management.base import BaseCommand, CommandError

from analysis import services


class Command(BaseCommand):
    help = ("Remove upload folders under MEDIA_ROOT/analysis/ that belong to no job (left by a process that "
            "died between storing an upload and queueing its job). Folders of existing jobs go with the job "
            "(cleanup_jobs).")

    def add_arguments(self, parser):
        parser.add_argument("--older-than-hours", type=int, default=24,
                            help="Leave younger folders alone: an upload may be in progress (default: %(default)s).")

    def handle(self, *args, older_than_hours, **options):
        if older_than_hours < 0:
            raise CommandError("--older-than-hours must be 0 or more.")
        removed = services.remove_orphan_folders(older_than_hours)
        self.stdout.write(f"Removed {removed} orphan analysis folder(s).")
