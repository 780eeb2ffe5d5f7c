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


_APP_SCHEDULES = []


def register_schedule(name, func, *, schedule_type=Schedule.DAILY, minutes=None, first_run_in=60):
    """Let an app add a periodic task (call it from the app's jobs.py); setup_schedules creates it by name."""
    spec = {"name": name, "func": func, "schedule_type": schedule_type, "minutes": minutes,
            "first_run_in": first_run_in}
    if not any(existing["name"] == name for existing in _APP_SCHEDULES):
        _APP_SCHEDULES.append(spec)


def all_schedules():
    return ENGINE_SCHEDULES + _APP_SCHEDULES


def ensure_schedules():
    results = []
    specs = all_schedules()
    for spec in specs:
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
    names = [spec["name"] for spec in specs]
    funcs = {spec["func"] for spec in specs}
    Schedule.objects.filter(func__in=funcs).exclude(name__in=names).delete()
    return results
