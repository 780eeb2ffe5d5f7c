"""Running one job: the atomic claim, the handler's context, the lease heartbeat and the outcome."""

import json
import logging
import threading
import time
import traceback
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import OperationalError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import dispatcher
from .exceptions import JobCancelled, LeaseLost, PermanentError, RetryLater, YieldSlice
from .models import Job, JobEvent, JobStatus, KindGate
from .registry import JobKind, get_kind

log = logging.getLogger("queueapp")

PROGRESS_MILESTONE_PERCENT = 10


def to_json(value):
    """Return value as plain JSON data (Decimals and dates become strings)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


class JobContext:
    """What a handler gets: its params and checkpoint, and the ways to report back."""

    def __init__(self, job: Job, kind: JobKind, token):
        self.job_id = job.id
        self.kind = kind.name
        self.params = job.params or {}
        self.checkpoint = job.checkpoint
        self.attempt = job.attempts
        self.max_attempts = job.max_attempts
        self.owner_id = job.owner_id
        self.time_budget = kind.slice_seconds
        self._token = token
        self._started = time.monotonic()
        self._milestone = self._percent(job.progress_done, job.progress_total)

    # -- time slices --------------------------------------------------------------------------------
    def time_left(self):
        """Seconds left in this slice, or None when the kind has no time budget."""
        if not self.time_budget:
            return None
        return self.time_budget - (time.monotonic() - self._started)

    def out_of_time(self):
        left = self.time_left()
        return left is not None and left <= 0

    # -- writing to the job -------------------------------------------------------------------------
    def _mine(self):
        return Job.objects.filter(id=self.job_id, claim_token=self._token, status=JobStatus.RUNNING)

    def _why_not_mine(self):
        row = Job.objects.filter(id=self.job_id).values("claim_token", "status", "cancel_requested").first()
        if row and row["claim_token"] == self._token and row["status"] == JobStatus.RUNNING:
            if row["cancel_requested"]:
                raise JobCancelled("Cancelled on request.")
            return
        raise LeaseLost(f"job {self.job_id} is no longer held by this worker")

    @staticmethod
    def _percent(done, total):
        if not total:
            return None
        return min(100, int(done * 100 / total))

    def progress(self, done=None, total=None, message=None, succeeded=None, failed=None, step=None):
        """Record progress and renew the lease. Raises JobCancelled when a cancel was requested.

        `step` is the 1-based number of the kind's named step now running (see job_kind(steps=...))."""
        now = timezone.now()
        fields = {"updated_at": now, "lease_expires_at": now + timedelta(seconds=settings.JOBS_LEASE_SECONDS)}
        if done is not None:
            fields["progress_done"] = done
        if total is not None:
            fields["progress_total"] = total
        if message is not None:
            fields["message"] = str(message)[:500]
        if succeeded is not None:
            fields["succeeded_count"] = succeeded
        if failed is not None:
            fields["failed_count"] = failed
        if step is not None:
            fields["step"] = step
        if not self._mine().filter(cancel_requested=False).update(**fields):
            self._why_not_mine()
        if done is not None:
            self._record_milestone(done, total)

    def _record_milestone(self, done, total):
        if total is None:
            total = Job.objects.filter(id=self.job_id).values_list("progress_total", flat=True).first()
        percent = self._percent(done, total)
        if percent is None:
            return
        reached = percent // PROGRESS_MILESTONE_PERCENT * PROGRESS_MILESTONE_PERCENT
        if reached > 0 and (self._milestone is None or reached > self._milestone):
            self._milestone = reached
            JobEvent.objects.create(
                job_id=self.job_id, type=JobEvent.Type.PROGRESS,
                message=f"{reached}% ({done} of {total})", data={"done": done, "total": total},
            )

    def save_checkpoint(self, state):
        """Store where to resume. Call it inside the transaction that does the work it records."""
        if not self._mine().update(checkpoint=to_json(state), updated_at=timezone.now()):
            # Raising inside the caller's transaction also rolls back the work this checkpoint records.
            raise LeaseLost(f"job {self.job_id} is no longer held by this worker")
        self.checkpoint = state

    def event(self, message, **data):
        """Add a line to the job's history."""
        JobEvent.objects.create(job_id=self.job_id, type=JobEvent.Type.LOG, message=str(message),
                                data=to_json(data))

    def cancelled(self):
        return bool(
            Job.objects.filter(id=self.job_id).values_list("cancel_requested", flat=True).first()
        )

    def raise_if_cancelled(self):
        if self.cancelled():
            raise JobCancelled("Cancelled on request.")


class Heartbeat(threading.Thread):
    """Renews the lease while the handler runs, so a long step without progress calls is not reaped.

    It dies with the worker process: a killed worker's lease runs out and the reaper takes the job back."""

    def __init__(self, job_id, token):
        super().__init__(daemon=True, name=f"lease-{job_id}")
        self.job_id, self.token = job_id, token
        self.stop = threading.Event()
        self.interval = max(1.0, settings.JOBS_LEASE_SECONDS / 3)

    def run(self):
        try:
            while not self.stop.wait(self.interval):
                now = timezone.now()
                try:
                    Job.objects.filter(
                        id=self.job_id, claim_token=self.token, status=JobStatus.RUNNING
                    ).update(lease_expires_at=now + timedelta(seconds=settings.JOBS_LEASE_SECONDS))
                except OperationalError:  # SQLite busy past its timeout: try again next beat
                    log.warning("lease renewal for job %s postponed: database busy", self.job_id)
        finally:
            connection.close()


def claim(job_id):
    """Take a queued job for this worker. One conditional UPDATE: of many workers exactly one wins.

    Returns (job, kind, token) or None when the job is not ours to run now."""
    job = Job.objects.filter(id=job_id).only("id", "kind", "status").first()
    if job is None or job.status != JobStatus.QUEUED:
        return None
    kind = get_kind(job.kind)
    if kind is None:
        _fail_unknown_kind(job)
        return None
    token = uuid.uuid4()
    if kind.limited:
        won = _claim_within_limits(job_id, kind, token)
    else:
        won = _claim_update(job_id, token, timezone.now())
    if not won:
        return None
    job = Job.objects.get(id=job_id)
    JobEvent.objects.create(
        job_id=job_id, type=JobEvent.Type.STARTED,
        message=f"Attempt {job.attempts} of {job.max_attempts} started"
        + (" (resuming from checkpoint)" if job.checkpoint is not None else ""),
    )
    return job, kind, token


def _claim_update(job_id, token, now):
    return Job.objects.filter(
        Q(run_after__isnull=True) | Q(run_after__lte=now),
        id=job_id, status=JobStatus.QUEUED, cancel_requested=False,
    ).update(
        status=JobStatus.RUNNING,
        attempts=F("attempts") + 1,
        claim_token=token,
        lease_expires_at=now + timedelta(seconds=settings.JOBS_LEASE_SECONDS),
        started_at=Coalesce("started_at", now),
        dispatched_at=None,
        updated_at=now,
    )


def _claim_within_limits(job_id, kind, token):
    KindGate.objects.get_or_create(kind=kind.name)
    with transaction.atomic():
        # Serialises the claims of one kind across processes; SQLite's IMMEDIATE transaction already does.
        gate = KindGate.objects.select_for_update().get(kind=kind.name)
        now = timezone.now()
        if kind.concurrency:
            running = Job.objects.filter(kind=kind.name, status=JobStatus.RUNNING).count()
            if running >= kind.concurrency:
                # At capacity: the job stays queued; a finishing job of this kind hands it over.
                Job.objects.filter(id=job_id, status=JobStatus.QUEUED).update(dispatched_at=None)
                return False
        recent = [t for t in gate.recent_starts if t > now.timestamp() - 60]
        if kind.rate_per_minute and len(recent) >= kind.rate_per_minute:
            next_slot = datetime.fromtimestamp(min(recent) + 60, tz=dt_timezone.utc)
            Job.objects.filter(id=job_id, status=JobStatus.QUEUED).update(
                status=JobStatus.WAITING, run_after=next_slot, dispatched_at=None, updated_at=now
            )
            return False
        if not _claim_update(job_id, token, now):
            return False
        if kind.rate_per_minute:
            gate.recent_starts = recent + [now.timestamp()]
            gate.save(update_fields=["recent_starts"])
        return True


def _fail_unknown_kind(job):
    now = timezone.now()
    error = (f"No handler is registered for job kind {job.kind!r} in this worker. "
             "Deploy the code that defines it, then retry the job.")
    if Job.objects.filter(id=job.id, status=JobStatus.QUEUED).update(
        status=JobStatus.FAILED, error=error, finished_at=now, updated_at=now, dispatched_at=None
    ):
        JobEvent.objects.create(job_id=job.id, type=JobEvent.Type.FAILED, message=error)


def run_job(job_id):
    """Claim and run one job, then record its outcome. Safe to call many times for the same job."""
    claimed = claim(job_id)
    if claimed is None:
        return "not claimed"
    job, kind, token = claimed
    ctx = JobContext(job, kind, token)
    heartbeat = Heartbeat(job.id, token)
    heartbeat.start()
    try:
        outcome = _call(kind, ctx)
    finally:
        heartbeat.stop.set()
        heartbeat.join()
    _record(job, kind, token, outcome)
    if kind.limited:
        dispatcher.dispatch_queued(kind=kind.name)
    return outcome[0]


def _call(kind, ctx):
    try:
        result = kind.handler(ctx)
        return ("succeeded", to_json(result))
    except LeaseLost as exc:
        return ("lease_lost", str(exc))
    except JobCancelled as exc:
        return ("cancelled", str(exc) or "Cancelled on request.")
    except YieldSlice as exc:
        return ("yielded", exc)
    except RetryLater as exc:
        return ("retry", exc)
    except PermanentError as exc:
        return ("failed", str(exc) or exc.__class__.__name__)
    except Exception as exc:  # any other error is transient until attempts run out
        log.exception("job %s (%s) raised", ctx.job_id, kind.name)
        return ("error", exc, traceback.format_exc(limit=20))


def _describe(exc):
    text = str(exc)
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def _record(job, kind, token, outcome):
    now = timezone.now()
    state = outcome[0]
    mine = Job.objects.filter(id=job.id, claim_token=token, status=JobStatus.RUNNING)
    done = {"claim_token": None, "lease_expires_at": None, "updated_at": now}
    finished = False
    with transaction.atomic():
        current = mine.values("attempts", "max_attempts", "progress_done", "progress_total").first()
        if state == "lease_lost" or current is None:
            log.warning("job %s: result of this run discarded, the job changed hands", job.id)
            return
        attempts, max_attempts = current["attempts"], current["max_attempts"]
        if state == "succeeded":
            total = current["progress_total"]
            mine.update(**done, status=JobStatus.SUCCEEDED, result=outcome[1], error="",
                        finished_at=now, progress_done=total if total else current["progress_done"],
                        **({"step": len(kind.steps)} if kind.steps else {}))
            duration = (now - job.started_at).total_seconds() if job.started_at else None
            JobEvent.objects.create(job_id=job.id, type=JobEvent.Type.SUCCEEDED, message="Succeeded",
                                    data={"duration_seconds": duration})
            finished = True
        elif state == "cancelled":
            mine.update(**done, status=JobStatus.CANCELLED, finished_at=now, message="Cancelled")
            JobEvent.objects.create(job_id=job.id, type=JobEvent.Type.CANCELLED, message=outcome[1])
            finished = True
        elif state == "failed":
            mine.update(**done, status=JobStatus.FAILED, error=outcome[1], finished_at=now)
            JobEvent.objects.create(job_id=job.id, type=JobEvent.Type.FAILED,
                                    message=f"Failed permanently: {outcome[1]}")
            finished = True
        elif state == "yielded":
            exc = outcome[1]
            after = max(0.0, float(exc.after or 0))
            # A slice that ended on time is not a failed attempt.
            fields = dict(done, attempts=F("attempts") - 1)
            if after > 0:
                mine.update(**fields, status=JobStatus.WAITING, run_after=now + timedelta(seconds=after))
            else:
                mine.update(**fields, status=JobStatus.QUEUED, run_after=None, dispatched_at=now)
                # Back of the executor's queue: other jobs get their turn first.
                transaction.on_commit(lambda: dispatcher.enqueue(job.id, kind.name))
            JobEvent.objects.create(job_id=job.id, type=JobEvent.Type.YIELDED,
                                    message=f"{exc.reason}; continues"
                                    + (f" after {after:.0f}s" if after else " at once"),
                                    data={"after_seconds": after})
        else:  # "retry" or "error"
            if state == "retry":
                exc = outcome[1]
                reason, after, trace = exc.reason or "Retry requested", exc.after, None
            else:
                reason, after, trace = _describe(outcome[1]), None, outcome[2]
            if attempts >= max_attempts:
                error = f"{reason} (gave up after {attempts} of {max_attempts} attempts)"
                mine.update(**done, status=JobStatus.FAILED, error=error, finished_at=now)
                JobEvent.objects.create(job_id=job.id, type=JobEvent.Type.FAILED, message=error,
                                        data={"traceback": trace} if trace else {})
                finished = True
            else:
                delay = float(after) if after is not None else kind.backoff.delay(attempts)
                run_after = now + timedelta(seconds=max(0.0, delay))
                mine.update(**done, status=JobStatus.WAITING, run_after=run_after, error=reason)
                JobEvent.objects.create(
                    job_id=job.id, type=JobEvent.Type.RETRY_SCHEDULED,
                    message=f"Attempt {attempts} of {max_attempts} failed: {reason}. "
                            f"Next attempt at {run_after:%H:%M:%S} UTC (in {delay:.0f}s).",
                    data={"delay_seconds": round(delay, 3), "run_after": run_after.isoformat(),
                          **({"traceback": trace} if trace else {})},
                )
        if finished:
            transaction.on_commit(lambda: dispatcher._send_finished(job.id))
    log.info("job %s (%s) attempt %s: %s", job.id, kind.name, attempts, state)
