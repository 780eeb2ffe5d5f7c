"""Handing due jobs to the executor (django-q2) within each kind's limits, and reaping lost workers.

A job is handed over at most once per JOBS_REDISPATCH_SECONDS: `dispatched_at` marks it. Handing a job
over twice is harmless (the claim in runner.claim lets only one worker run it), so every step here is a
conditional UPDATE that can be repeated after a crash.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from .models import EngineLock, Job, JobEvent, JobStatus, KindGate
from .registry import get_kind
from .signals import job_finished

log = logging.getLogger("queueapp")

RUN_JOB_TASK = "queueapp.tasks.run_job"


def _undispatched(now):
    stale = now - timedelta(seconds=settings.JOBS_REDISPATCH_SECONDS)
    return Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale)


def enqueue(job_id, kind=""):
    """Give the job to the executor. The caller has already marked it dispatched."""
    try:
        async_task(RUN_JOB_TASK, str(job_id), task_name=f"{kind} {job_id}"[:100])
    except Exception:
        # The broker is unreachable: leave the job for the next tick instead of losing it.
        log.exception("could not hand job %s to the executor; the next tick will try again", job_id)
        Job.objects.filter(id=job_id, status=JobStatus.QUEUED).update(dispatched_at=None)
        return False
    return True


def dispatch(job_id, now=None):
    """Mark one queued job dispatched and enqueue it after the current transaction commits."""
    now = now or timezone.now()
    job = Job.objects.filter(id=job_id).only("kind").first()
    if job is None:
        return False
    won = (
        Job.objects.filter(_undispatched(now), id=job_id, status=JobStatus.QUEUED)
        .update(dispatched_at=now)
    )
    if won:
        transaction.on_commit(lambda: enqueue(job_id, job.kind))
    return bool(won)


def free_slots(kind_name, now=None):
    """How many more jobs of this kind may be handed over now (None: no limit)."""
    kind = get_kind(kind_name)
    if kind is None or not kind.limited:
        return None
    now = now or timezone.now()
    slots = []
    if kind.concurrency:
        busy = Job.objects.filter(kind=kind_name).filter(
            Q(status=JobStatus.RUNNING) | (Q(status=JobStatus.QUEUED) & ~_undispatched(now))
        ).count()
        slots.append(kind.concurrency - busy)
    if kind.rate_per_minute:
        gate = KindGate.objects.filter(kind=kind_name).first()
        cutoff = now.timestamp() - 60
        recent = [t for t in (gate.recent_starts if gate else []) if t > cutoff]
        in_flight = Job.objects.filter(kind=kind_name, status=JobStatus.QUEUED).exclude(
            _undispatched(now)
        ).count()
        slots.append(kind.rate_per_minute - len(recent) - in_flight)
    return max(0, min(slots))


def dispatch_queued(kind=None, now=None, limit=1000):
    """Hand over queued jobs that nobody has been given yet, highest priority first, within limits."""
    now = now or timezone.now()
    pending = Job.objects.filter(_undispatched(now), status=JobStatus.QUEUED)
    if kind:
        pending = pending.filter(kind=kind)
    kinds = sorted(set(pending.values_list("kind", flat=True).distinct()))
    handed = 0
    for kind_name in kinds:
        room = free_slots(kind_name, now)
        if room == 0:
            continue
        take = limit if room is None else min(room, limit)
        ids = list(
            pending.filter(kind=kind_name)
            .order_by("-priority", "created_at")
            .values_list("id", flat=True)[:take]
        )
        for job_id in ids:
            with transaction.atomic():
                handed += dispatch(job_id, now)
    return handed


def wake_waiting(now=None):
    """Waiting jobs whose time has come become queued."""
    now = now or timezone.now()
    return Job.objects.filter(status=JobStatus.WAITING).filter(
        Q(run_after__lte=now) | Q(run_after__isnull=True)
    ).update(status=JobStatus.QUEUED, dispatched_at=None, updated_at=now)


def reap_expired_leases(now=None):
    """Running jobs whose worker stopped renewing its lease (killed, OOM, machine lost).

    The lost run counts as an attempt (it was counted at claim). With attempts left the job is queued
    again and resumes from its checkpoint; without, it fails with the reason."""
    now = now or timezone.now()
    requeued = failed = 0
    expired = Job.objects.filter(status=JobStatus.RUNNING, lease_expires_at__lt=now).values_list(
        "id", "claim_token", "attempts", "max_attempts", "cancel_requested", "kind"
    )
    for job_id, token, attempts, max_attempts, cancel_requested, kind in list(expired):
        lost = Job.objects.filter(id=job_id, status=JobStatus.RUNNING, claim_token=token)
        reason = (
            f"The worker running attempt {attempts} stopped responding "
            f"(its lease expired at {now:%Y-%m-%d %H:%M:%S} UTC)."
        )
        with transaction.atomic():
            if cancel_requested:
                final = JobStatus.CANCELLED
                if lost.update(status=final, claim_token=None, lease_expires_at=None,
                               finished_at=now, updated_at=now, message="Cancelled"):
                    JobEvent.objects.create(job_id=job_id, type=JobEvent.Type.CANCELLED,
                                            message=f"{reason} A cancel had been requested: cancelled.")
                    transaction.on_commit(lambda j=job_id: _send_finished(j))
                    failed += 1
            elif attempts >= max_attempts:
                error = f"{reason} No attempts left ({attempts} of {max_attempts} used)."
                if lost.update(status=JobStatus.FAILED, claim_token=None, lease_expires_at=None,
                               finished_at=now, updated_at=now, error=error):
                    JobEvent.objects.create(job_id=job_id, type=JobEvent.Type.FAILED, message=error)
                    transaction.on_commit(lambda j=job_id: _send_finished(j))
                    failed += 1
            else:
                if lost.update(status=JobStatus.QUEUED, claim_token=None, lease_expires_at=None,
                               dispatched_at=None, updated_at=now, error=reason):
                    JobEvent.objects.create(
                        job_id=job_id, type=JobEvent.Type.LEASE_EXPIRED,
                        message=f"{reason} Requeued; it resumes from its last checkpoint "
                                f"(attempt {attempts + 1} of {max_attempts} next).",
                    )
                    requeued += 1
    if requeued or failed:
        log.warning("reaper: %s job(s) requeued, %s ended after their worker was lost", requeued, failed)
    return {"requeued": requeued, "failed": failed}


def _send_finished(job_id):
    if not job_finished.has_listeners(Job):
        return
    job = Job.objects.filter(id=job_id).first()
    if job is not None:
        job_finished.send(sender=Job, job=job)


def acquire_lock(name, seconds):
    now = timezone.now()
    EngineLock.objects.get_or_create(name=name, defaults={"held_until": now - timedelta(seconds=1)})
    return bool(
        EngineLock.objects.filter(name=name, held_until__lt=now).update(
            held_until=now + timedelta(seconds=seconds)
        )
    )


def release_lock(name):
    EngineLock.objects.filter(name=name).update(held_until=timezone.now() - timedelta(seconds=1))


def tick():
    """The minute's bookkeeping: reap lost workers, wake due jobs, hand queued jobs over.

    django-q2 starts a new run even while the previous one still runs; the lock makes the overlap a no-op."""
    if not acquire_lock("tick", seconds=300):
        return {"skipped": "another tick is running"}
    started = time.monotonic()
    try:
        now = timezone.now()
        summary = reap_expired_leases(now)
        summary["woken"] = wake_waiting(now)
        summary["dispatched"] = dispatch_queued(now=now)
        summary["seconds"] = round(time.monotonic() - started, 3)
        return summary
    finally:
        release_lock("tick")
