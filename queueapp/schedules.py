"""The django-q2 Schedules the engine needs, created by name so that running this twice adds nothing."""

from datetime import timedelta

from django.utils import timezone
from django_q.models import Schedule

# Two minute ticks half a minute apart: django-q2's scheduler looks every ~30 s, so a waiting job
# (backoff, rate limit, a paused quota) is picked up within about 30-60 s of its time instead of 60-90 s.
ENGINE_SCHEDULES = [
    {
        "name": "jobsite: tick",
        "func": "queueapp.tasks.tick",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
        "first_run_in": 5,
    },
    {
        "name": "jobsite: tick (half past)",
        "func": "queueapp.tasks.tick",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
        "first_run_in": 35,
    },
    {
        "name": "jobsite: cleanup finished jobs",
        "func": "queueapp.tasks.cleanup",
        "schedule_type": Schedule.DAILY,
        "minutes": None,
        "first_run_in": 60,
    },
]


def ensure_schedules():
    results = []
    for spec in ENGINE_SCHEDULES:
        defaults = {key: value for key, value in spec.items() if key not in ("name", "first_run_in")}
        defaults["repeats"] = -1
        first_run = timezone.now() + timedelta(seconds=spec["first_run_in"])
        schedule, created = Schedule.objects.get_or_create(
            name=spec["name"], defaults={**defaults, "next_run": first_run}
        )
        if not created:
            changed = [key for key, value in defaults.items() if getattr(schedule, key) != value]
            if changed:
                Schedule.objects.filter(pk=schedule.pk).update(**defaults)
        results.append((spec["name"], created))
    # Copies under another name (e.g. made by hand) would run the same function again.
    names = [spec["name"] for spec in ENGINE_SCHEDULES]
    funcs = {spec["func"] for spec in ENGINE_SCHEDULES}
    Schedule.objects.filter(func__in=funcs).exclude(name__in=names).delete()
    return results
