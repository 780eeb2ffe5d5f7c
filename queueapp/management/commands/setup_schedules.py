from django.core.management.base import BaseCommand

from queueapp.schedules import ensure_schedules


class Command(BaseCommand):
    help = "Create or update the engine's django-q2 schedules (tick every minute, daily cleanup). Idempotent."

    def handle(self, *args, **options):
        for name, created in ensure_schedules():
            self.stdout.write(f"{'created' if created else 'up to date'}: {name}")
