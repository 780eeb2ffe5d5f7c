"""The engine through its public surface: submit, run_job (as a worker calls it), tick, cancel, retry."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from queueapp import dispatcher, runner, services
from queueapp.engine import JobStatus, submit
from queueapp.models import Job, JobEvent
from tests.queueapp import kinds  # noqa: F401  registers the test kinds

pytestmark = pytest.mark.django_db


def event_types(job):
    return list(job.events.values_list("type", flat=True))


def make_due(job):
    """Let time pass: the job's next attempt is due now."""
    Job.objects.filter(id=job.id).update(run_after=timezone.now() - timedelta(seconds=1))


def test_demo_count_runs_to_success_with_progress_and_history(user):
    job = submit("demo.count", {"n": 3, "delay": 0}, owner=user)
    assert job.status == JobStatus.QUEUED and job.params == {"n": 3, "delay": 0.0}

    assert runner.run_job(job.id) == "succeeded"

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert (job.progress_done, job.progress_total, job.percentage) == (3, 3, 100)
    assert job.result == {"counted": 3, "resumed_from": 0}
    assert job.checkpoint == {"counted": 3}
    assert job.attempts == 1 and job.finished_at >= job.started_at
    types = event_types(job)
    assert types[0] == "created" and types[1] == "started" and types[-1] == "succeeded"
    assert types.count("progress") == 3  # 33 %, 66 %, 100 % milestones


def test_submit_validates_params_and_kind():
    with pytest.raises(services.InvalidParams) as bad:
        submit("demo.count", {"n": -1})
    assert "n" in bad.value.errors
    with pytest.raises(services.UnknownKind):
        submit("no.such.kind", {})
    assert not Job.objects.exists()


def test_run_job_is_safe_to_call_twice():
    job = submit("demo.count", {"n": 1, "delay": 0})
    assert runner.run_job(job.id) == "succeeded"
    assert runner.run_job(job.id) == "not claimed"
    job.refresh_from_db()
    assert job.attempts == 1 and event_types(job).count("started") == 1


def test_retry_later_follows_the_backoff_then_succeeds():
    job = submit("test.flaky", {"fail_times": 2})
    before = timezone.now()
    assert runner.run_job(job.id) == "retry"
    job.refresh_from_db()
    assert job.status == JobStatus.WAITING and job.attempts == 1
    assert job.error == "not ready on attempt 1"
    # base 60 s for the first retry, doubled for the second, capped at 100 s.
    assert timedelta(seconds=59) < job.run_after - before < timedelta(seconds=62)

    assert runner.run_job(job.id) == "not claimed"  # not due yet: waiting jobs are never claimed
    make_due(job)
    assert dispatcher.wake_waiting() == 1
    before = timezone.now()
    assert runner.run_job(job.id) == "retry"
    job.refresh_from_db()
    assert timedelta(seconds=99) < job.run_after - before < timedelta(seconds=102)

    make_due(job)
    dispatcher.wake_waiting()
    assert runner.run_job(job.id) == "succeeded"
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 3 and job.result == {"attempt": 3}
    assert job.error == ""
    assert event_types(job).count("retry_scheduled") == 2


def test_retry_later_with_explicit_delay():
    job = submit("test.flaky", {"fail_times": 1, "after": 5})
    before = timezone.now()
    runner.run_job(job.id)
    job.refresh_from_db()
    assert timedelta(seconds=4) < job.run_after - before < timedelta(seconds=6)


def test_an_exception_is_retried_then_fails_after_max_attempts():
    job = submit("test.boom")
    assert runner.run_job(job.id) == "error"
    job.refresh_from_db()
    assert job.status == JobStatus.WAITING and job.error == "ValueError: the input is broken"
    make_due(job)
    dispatcher.wake_waiting()
    runner.run_job(job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "ValueError: the input is broken (gave up after 2 of 2 attempts)"
    failed = job.events.get(type="failed")
    assert "ValueError" in failed.data["traceback"]


def test_permanent_error_fails_at_once():
    job = submit("test.permanent")
    assert runner.run_job(job.id) == "failed"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.attempts == 1
    assert job.error == "Campaign 42 does not exist; choose another campaign."


def test_yielded_slices_do_not_use_up_attempts():
    job = submit("test.sliced", {"units": 3})
    assert runner.run_job(job.id) == "yielded"
    job.refresh_from_db()
    # Queued again at once, at the back of the executor's queue.
    assert job.status == JobStatus.QUEUED and job.attempts == 0 and job.checkpoint == {"done": 1}
    assert runner.run_job(job.id) == "yielded"
    assert runner.run_job(job.id) == "succeeded"
    job.refresh_from_db()
    assert job.result == {"done": 3} and job.attempts == 1  # max_attempts is 1, yet three slices ran
    assert event_types(job).count("yielded") == 2


def test_yield_with_delay_waits():
    job = submit("test.sliced", {"units": 2, "after": 30})
    runner.run_job(job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.WAITING and job.run_after > timezone.now() + timedelta(seconds=25)


def test_unknown_kind_in_the_worker_fails_with_a_readable_reason():
    job = submit("demo.count", {"n": 1})
    Job.objects.filter(id=job.id).update(kind="removed.kind")
    assert runner.run_job(job.id) == "not claimed"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "removed.kind" in job.error


def test_submit_with_run_after_waits_until_then():
    later = timezone.now() + timedelta(minutes=5)
    job = submit("demo.count", {"n": 1}, run_after=later)
    assert job.status == JobStatus.WAITING
    assert dispatcher.wake_waiting() == 0
    assert runner.run_job(job.id) == "not claimed"


def _expire_lease(job):
    Job.objects.filter(id=job.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_tick_requeues_a_lost_run_and_counts_the_attempt():
    job = submit("demo.count", {"n": 5, "delay": 0})
    claimed = runner.claim(job.id)  # a worker took it ... and died without a word
    assert claimed is not None
    _expire_lease(job)
    summary = dispatcher.tick()
    assert summary["requeued"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.attempts == 1
    assert "stopped responding" in job.error
    assert "lease_expired" in event_types(job)
    # The dead worker's token no longer writes.
    dead_ctx = runner.JobContext(claimed[0], claimed[1], claimed[2])
    with pytest.raises(runner.LeaseLost):
        dead_ctx.progress(1)
    assert runner.run_job(job.id) == "succeeded"
    job.refresh_from_db()
    assert job.attempts == 2


def test_tick_fails_a_lost_run_when_attempts_are_used_up():
    job = submit("demo.count", {"n": 5})
    Job.objects.filter(id=job.id).update(max_attempts=1)
    runner.claim(job.id)
    _expire_lease(job)
    assert dispatcher.tick()["failed"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.finished_at is not None
    assert "No attempts left (1 of 1 used)" in job.error


def test_tick_does_not_run_twice_at_once():
    assert dispatcher.acquire_lock("tick", seconds=60)
    assert dispatcher.tick() == {"skipped": "another tick is running"}
    dispatcher.release_lock("tick")
    assert "requeued" in dispatcher.tick()


def test_concurrency_limit_holds_and_a_finishing_job_hands_over():
    first = submit("test.single")
    second = submit("test.single")
    claimed = runner.claim(first.id)
    assert claimed is not None
    assert runner.claim(second.id) is None
    second.refresh_from_db()
    assert second.status == JobStatus.QUEUED and second.dispatched_at is None
    assert dispatcher.free_slots("test.single") == 0
    Job.objects.filter(id=first.id).update(status=JobStatus.SUCCEEDED)
    assert dispatcher.free_slots("test.single") == 1
    assert runner.run_job(second.id) == "succeeded"


def test_rate_limit_defers_the_start_to_the_next_free_slot():
    jobs = [submit("test.rated") for _ in range(3)]
    assert runner.run_job(jobs[0].id) == "succeeded"
    assert runner.run_job(jobs[1].id) == "succeeded"
    assert runner.run_job(jobs[2].id) == "not claimed"
    third = Job.objects.get(id=jobs[2].id)
    assert third.status == JobStatus.WAITING
    assert timedelta(seconds=55) < third.run_after - timezone.now() <= timedelta(seconds=60)


def test_cancel_a_queued_job_at_once():
    job = submit("demo.count", {"n": 3})
    services.cancel(job)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert runner.run_job(job.id) == "not claimed"


def test_cancel_a_running_job_is_seen_at_its_next_progress_call():
    job = submit("demo.count", {"n": 3})
    _, kind, token = runner.claim(job.id)
    services.cancel(job)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.cancel_requested
    ctx = runner.JobContext(job, kind, token)
    with pytest.raises(runner.JobCancelled):
        ctx.progress(1)
    outcome = runner._call(kind, ctx)
    runner._record(job, kind, token, outcome)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


def test_cancel_a_finished_job_is_refused():
    job = submit("demo.count", {"n": 0})
    runner.run_job(job.id)
    with pytest.raises(services.NotAllowed, match="already succeeded"):
        services.cancel(job)


def test_retry_a_failed_job_resumes_and_refuses_active_ones():
    job = submit("test.permanent")
    with pytest.raises(services.NotAllowed):
        services.retry(job)
    runner.run_job(job.id)
    job = services.retry(Job.objects.get(id=job.id))
    assert job.status == JobStatus.QUEUED and job.attempts == 0 and job.error == ""
    assert "retried" in event_types(job)


def test_retry_from_start_forgets_the_checkpoint():
    job = submit("demo.count", {"n": 2, "delay": 0})
    Job.objects.filter(id=job.id).update(status=JobStatus.CANCELLED, checkpoint={"counted": 1},
                                         progress_done=1)
    job = services.retry(job, from_start=True)
    assert job.checkpoint is None and job.progress_done == 0
    runner.run_job(job.id)
    job.refresh_from_db()
    assert job.result == {"counted": 2, "resumed_from": 0}


def test_finished_signal_is_sent(django_capture_on_commit_callbacks):
    from queueapp.engine import job_finished

    seen = []
    job_finished.connect(lambda sender, job, **kw: seen.append((job.id, job.status)), weak=False,
                         dispatch_uid="test-finished")
    try:
        job = submit("test.permanent")
        with django_capture_on_commit_callbacks(execute=True):
            runner.run_job(job.id)
        assert seen == [(job.id, JobStatus.FAILED)]
    finally:
        job_finished.disconnect(dispatch_uid="test-finished")


def test_cleanup_deletes_old_finished_jobs_only():
    old = submit("demo.count", {"n": 0})
    recent = submit("demo.count", {"n": 0})
    active = submit("demo.count", {"n": 0})
    for job in (old, recent):
        runner.run_job(job.id)
    Job.objects.filter(id=old.id).update(finished_at=timezone.now() - timedelta(days=8))
    Job.objects.filter(id=active.id).update(created_at=timezone.now() - timedelta(days=30))
    assert services.cleanup(days=7) == 1
    assert set(Job.objects.values_list("id", flat=True)) == {recent.id, active.id}
    assert not JobEvent.objects.filter(job_id=old.id).exists()


def test_stats_counts_ready_and_scheduled_later():
    submit("demo.count", {"n": 0})
    submit("demo.count", {"n": 0}, run_after=timezone.now() + timedelta(hours=1))
    done = submit("demo.count", {"n": 0})
    runner.run_job(done.id)
    data = services.stats()
    assert data["total"] == 3
    assert data["by_status"]["queued"] == 1 and data["by_status"]["waiting"] == 1
    assert data["ready"] == 1 and data["scheduled_later"] == 1
    assert data["by_kind"]["demo.count"] == {"total": 3, "queued": 1, "waiting": 1, "succeeded": 1}
    assert data["average_duration_seconds"] is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_exactly_one_wins():
    job = submit("demo.count", {"n": 1})
    contenders = 8
    barrier = threading.Barrier(contenders)
    winners, errors = [], []

    def contend():
        try:
            barrier.wait()
            if runner.claim(job.id) is not None:
                winners.append(threading.get_ident())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=contend) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(winners) == 1, f"{len(winners)} workers claimed the job on {connection.vendor}"
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_respect_the_concurrency_limit():
    jobs = [submit("test.single") for _ in range(6)]
    barrier = threading.Barrier(len(jobs))
    winners = []

    def contend(job_id):
        try:
            barrier.wait()
            if runner.claim(job_id) is not None:
                winners.append(job_id)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=contend, args=(job.id,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert Job.objects.filter(status=JobStatus.RUNNING).count() == 1
