from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.models import Schedule

from queueapp import runner
from queueapp.schedules import all_schedules
from queueapp.engine import JobStatus, submit
from queueapp.models import Job

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_setup_schedules_is_idempotent():
    first = run("setup_schedules")
    second = run("setup_schedules")
    assert "created: jobsite: tick" in first and "up to date: jobsite: tick" in second
    assert Schedule.objects.count() == len(all_schedules())
    assert Schedule.objects.filter(name="analysis: remove orphan upload folders").exists()  # an app's own
    ticks = Schedule.objects.filter(func="queueapp.tasks.tick").order_by("next_run")
    assert [(t.schedule_type, t.minutes) for t in ticks] == [(Schedule.MINUTES, 1)] * 2
    assert 25 <= (ticks[1].next_run - ticks[0].next_run).total_seconds() <= 35
    assert Schedule.objects.get(name="jobsite: cleanup finished jobs").schedule_type == Schedule.DAILY


def test_setup_schedules_removes_a_hand_made_duplicate():
    Schedule.objects.create(func="queueapp.tasks.tick", schedule_type=Schedule.MINUTES, minutes=1,
                            name="my tick")
    run("setup_schedules")
    assert not Schedule.objects.filter(name="my tick").exists()
    assert Schedule.objects.filter(func="queueapp.tasks.tick").count() == 2


def test_jobs_list_show_cancel_retry_stats():
    job = submit("demo.count", {"n": 2, "delay": 0})
    assert str(job.id) in run("jobs", "list")
    assert "No jobs." in run("jobs", "list", "--status", "failed")
    assert f"Cancelled {job.id}" in run("jobs", "cancel", str(job.id))
    shown = run("jobs", "show", str(job.id))
    assert "status: cancelled" in shown and "cancelled" in shown.split("history:")[1]
    assert f"Queued {job.id} again" in run("jobs", "retry", str(job.id))
    runner.run_job(job.id)
    assert '"succeeded": 1' in run("jobs", "stats")
    with pytest.raises(CommandError, match="already succeeded"):
        run("jobs", "cancel", str(job.id))
    with pytest.raises(CommandError, match="Only failed or cancelled"):
        run("jobs", "retry", str(job.id))
    with pytest.raises(CommandError, match="No job with id"):
        run("jobs", "show", "nope")


def test_jobs_submit_validates():
    with pytest.raises(CommandError, match="Invalid params"):
        run("jobs", "submit", "demo.count", "--params", '{"n": -1}')
    with pytest.raises(CommandError, match="not valid JSON"):
        run("jobs", "submit", "demo.count", "--params", "{n")
    with pytest.raises(CommandError, match="Unknown job kind"):
        run("jobs", "submit", "demo.nothing")
    out = run("jobs", "submit", "demo.count", "--params", '{"n": 3}')
    assert "Submitted demo.count job" in out
    assert Job.objects.get().params == {"n": 3, "delay": 0.1}


def test_cleanup_jobs_command():
    job = submit("demo.count", {"n": 0})
    runner.run_job(job.id)
    Job.objects.filter(id=job.id).update(finished_at=timezone.now() - timedelta(days=3))
    assert "Deleted 0" in run("cleanup_jobs", "--days", "7")
    assert "Deleted 1" in run("cleanup_jobs", "--days", "2")
    with pytest.raises(CommandError):
        run("cleanup_jobs", "--days", "-1")


def test_cleanup_task_uses_the_retention_setting(settings):
    from queueapp.tasks import cleanup

    settings.JOBS_RETENTION_DAYS = 1
    job = submit("demo.count", {"n": 0})
    runner.run_job(job.id)
    Job.objects.filter(id=job.id).update(finished_at=timezone.now() - timedelta(days=2))
    assert cleanup() == {"deleted": 1}
    assert Job.objects.filter(status=JobStatus.SUCCEEDED).count() == 0
