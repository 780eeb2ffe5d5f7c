"""The django-q2 Schedules the engine needs, created by name so that running this twice adds nothing."""

from datetime import timedelta

from django.utils import timezone
from django_q.models import Schedule

ENGINE_SCHEDULES = [
    {
        "name": "jobsite: tick",
        "func": "queueapp.tasks.tick",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "jobsite: cleanup finished jobs",
        "func": "queueapp.tasks.cleanup",
        "schedule_type": Schedule.DAILY,
        "minutes": None,
    },
]


def ensure_schedules():
    results = []
    for spec in ENGINE_SCHEDULES:
        defaults = {key: value for key, value in spec.items() if key != "name"}
        defaults["repeats"] = -1
        schedule, created = Schedule.objects.get_or_create(
            name=spec["name"], defaults={**defaults, "next_run": timezone.now() + timedelta(seconds=5)}
        )
        if not created:
            changed = [key for key, value in defaults.items() if getattr(schedule, key) != value]
            if changed:
                Schedule.objects.filter(pk=schedule.pk).update(**defaults)
        results.append((spec["name"], created))
    # Older copies under the same function but another name (e.g. made by hand) would run it twice.
    for spec in ENGINE_SCHEDULES:
        Schedule.objects.filter(func=spec["func"]).exclude(name=spec["name"]).delete()
    return results
