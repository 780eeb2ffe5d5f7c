"""Submitting, cancelling, retrying, cleaning up and counting jobs. Callable without HTTP."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q
from django.utils import timezone

from . import dispatcher
from .models import ACTIVE_STATUSES, FINISHED_STATUSES, Job, JobEvent, JobStatus
from .registry import get_kind, registered_kinds
from .runner import to_json

log = logging.getLogger("queueapp")


class JobError(Exception):
    """A request about a job that cannot be carried out; the message says why and what to do."""


class UnknownKind(JobError):
    pass


class InvalidParams(JobError):
    def __init__(self, errors):
        super().__init__("invalid params")
        self.errors = errors


class NotAllowed(JobError):
    """The job's current state does not allow this (cancel a finished job, retry a running one)."""


def validate_params(kind_name, params):
    kind = get_kind(kind_name)
    if kind is None:
        raise UnknownKind(f"Unknown job kind {kind_name!r}. Known kinds: {', '.join(sorted(registered_kinds()))}.")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidParams({"non_field_errors": ["params must be a JSON object."]})
    if kind.params_serializer is None:
        return kind, to_json(params)
    serializer = kind.params_serializer(data=params)
    if not serializer.is_valid():
        raise InvalidParams(serializer.errors)
    return kind, to_json(serializer.validated_data)


def submit(kind, params=None, *, owner=None, run_after=None, priority=0, parent=None, max_attempts=None,
           validate=True):
    """Record a job and hand it to the workers once the surrounding transaction commits."""
    if validate:
        kind_def, params = validate_params(kind, params)
    else:
        kind_def = get_kind(kind)
        if kind_def is None:
            raise UnknownKind(f"Unknown job kind {kind!r}.")
        params = to_json(params or {})
    now = timezone.now()
    later = run_after is not None and run_after > now
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            params=params,
            owner=owner if owner is not None and owner.is_authenticated else None,
            status=JobStatus.WAITING if later else JobStatus.QUEUED,
            priority=priority,
            run_after=run_after,
            max_attempts=max_attempts or kind_def.max_attempts,
            parent=parent,
            # Unlimited kinds are handed over at commit; limited ones by the dispatcher within their limits.
            dispatched_at=None if later or kind_def.limited else now,
        )
        JobEvent.objects.create(
            job=job, type=JobEvent.Type.CREATED,
            message="Created" + (f", not before {run_after:%Y-%m-%d %H:%M:%S} UTC" if later else ""),
        )
        if not later:
            if kind_def.limited:
                transaction.on_commit(lambda: dispatcher.dispatch_queued(kind=kind))
            else:
                transaction.on_commit(lambda: dispatcher.enqueue(job.id, kind))
    return job


def cancel(job):
    """Queued or waiting: cancelled at once. Running: the handler stops at its next progress call."""
    now = timezone.now()
    with transaction.atomic():
        if Job.objects.filter(id=job.id, status__in=[JobStatus.QUEUED, JobStatus.WAITING]).update(
            status=JobStatus.CANCELLED, finished_at=now, updated_at=now, message="Cancelled",
            dispatched_at=None,
        ):
            JobEvent.objects.create(job=job, type=JobEvent.Type.CANCELLED, message="Cancelled before it ran")
            transaction.on_commit(lambda: dispatcher._send_finished(job.id))
        elif Job.objects.filter(id=job.id, status=JobStatus.RUNNING, cancel_requested=False).update(
            cancel_requested=True, updated_at=now
        ):
            JobEvent.objects.create(
                job=job, type=JobEvent.Type.CANCEL_REQUESTED,
                message="Cancel requested; the job stops at its next progress report",
            )
        else:
            current = Job.objects.filter(id=job.id).values_list("status", "cancel_requested").first()
            if current and current[0] == JobStatus.RUNNING and current[1]:
                pass  # already requested: asking twice is not an error
            else:
                status = current[0] if current else "deleted"
                raise NotAllowed(f"The job has already {status}; there is nothing to cancel.")
    job.refresh_from_db()
    return job


def retry(job, from_start=False):
    """Run a failed or cancelled job again with fresh attempts. It resumes from its checkpoint unless
    from_start is given."""
    now = timezone.now()
    kind = get_kind(job.kind)
    if kind is None:
        raise NotAllowed(f"Job kind {job.kind!r} is no longer known; it cannot be retried.")
    fields = dict(
        status=JobStatus.QUEUED, attempts=0, max_attempts=kind.max_attempts, cancel_requested=False,
        error="", result=None, finished_at=None, run_after=None, lease_expires_at=None, claim_token=None,
        message="Retried", updated_at=now, dispatched_at=None,
    )
    if from_start:
        fields.update(checkpoint=None, progress_done=0, succeeded_count=0, failed_count=0, step=None)
    with transaction.atomic():
        if not Job.objects.filter(id=job.id, status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).update(**fields):
            current = Job.objects.filter(id=job.id).values_list("status", flat=True).first()
            raise NotAllowed(
                f"Only failed or cancelled jobs can be retried; this one is {current or 'deleted'}."
            )
        JobEvent.objects.create(
            job=job, type=JobEvent.Type.RETRIED,
            message="Retried from the start" if from_start else "Retried; resumes from its last checkpoint",
        )
        transaction.on_commit(lambda: dispatcher.dispatch_queued(kind=job.kind))
    job.refresh_from_db()
    return job


def cleanup(days=None, batch=500):
    """Delete finished jobs (and their history) whose end is older than `days` days. Returns the count."""
    days = settings.JOBS_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    old = Job.objects.filter(status__in=FINISHED_STATUSES, finished_at__lt=cutoff, parent__isnull=True)
    deleted = 0
    while True:
        ids = list(old.values_list("id", flat=True)[:batch])
        if not ids:
            break
        # The ORM's delete sends pre_delete/post_delete: domain apps remove their files there.
        Job.objects.filter(id__in=ids).delete()
        deleted += len(ids)
    if deleted:
        log.info("cleanup: deleted %s finished job(s) older than %s day(s)", deleted, days)
    return deleted


def visible_jobs(user):
    """The jobs a user may see: their own; staff see all."""
    jobs = Job.objects.all()
    if user.is_staff:
        return jobs
    return jobs.filter(owner=user)


def stats(jobs=None):
    """Counts by status and kind, ready vs. scheduled later, failures in the last 24 h, average duration."""
    jobs = Job.objects.all() if jobs is None else jobs
    now = timezone.now()
    by_status = {status: 0 for status in JobStatus.values}
    by_kind = {}
    for row in jobs.values("kind", "status").annotate(n=Count("id")).order_by():
        by_status[row["status"]] += row["n"]
        by_kind.setdefault(row["kind"], {}).setdefault(row["status"], 0)
        by_kind[row["kind"]][row["status"]] += row["n"]
    due = Q(run_after__isnull=True) | Q(run_after__lte=now)
    ready = jobs.filter(Q(status=JobStatus.QUEUED) | (Q(status=JobStatus.WAITING) & due)).count()
    later = jobs.filter(status=JobStatus.WAITING, run_after__gt=now).count()
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    done = jobs.filter(status=JobStatus.SUCCEEDED, started_at__isnull=False, finished_at__isnull=False)
    average = done.aggregate(avg=Avg(duration))["avg"]
    per_kind = {
        row["kind"]: _seconds(row["avg"])
        for row in done.values("kind").annotate(avg=Avg(duration)).order_by()
    }
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_kind": {kind: {"total": sum(counts.values()), **counts} for kind, counts in sorted(by_kind.items())},
        "active": sum(by_status[s] for s in ACTIVE_STATUSES),
        "ready": ready,
        "scheduled_later": later,
        "failed_last_24h": jobs.filter(status=JobStatus.FAILED, finished_at__gte=now - timedelta(hours=24)).count(),
        "average_duration_seconds": _seconds(average),
        "average_duration_seconds_by_kind": per_kind,
    }


def _seconds(value):
    return None if value is None else round(value.total_seconds(), 3)


def worker_clusters():
    """The django-q2 clusters that reported in the last minute (from the shared cache)."""
    from django_q.status import Stat

    try:
        found = Stat.get_all()
    except Exception:  # the cache is unreachable: say so rather than fail the page or endpoint
        log.exception("could not read cluster status from the cache")
        return None
    return [
        {
            "cluster_id": str(stat.cluster_id),
            "host": stat.host,
            "status": stat.status,
            "workers": len(stat.workers),
            "uptime_seconds": round(stat.uptime(), 1),
        }
        for stat in found
    ]
