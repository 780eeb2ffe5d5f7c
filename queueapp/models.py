import uuid

from django.conf import settings
from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    WAITING = "waiting", "Waiting"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.WAITING, JobStatus.RUNNING)
FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    """One unit of background work, whatever its kind. The single source of truth for its state."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    priority = models.IntegerField(default=0, help_text="Higher runs first among due jobs.")
    params = models.JSONField(default=dict, blank=True)
    checkpoint = models.JSONField(null=True, blank=True)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(null=True, blank=True)
    # 1-based index into the kind's named steps (JobKind.steps), for step indicators.
    step = models.PositiveSmallIntegerField(null=True, blank=True)
    succeeded_count = models.BigIntegerField(default=0)
    failed_count = models.BigIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    run_after = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Changes at every claim: a worker whose lease was taken away can no longer write to the job.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "run_after"], name="job_status_due"),
            models.Index(fields=["kind", "status"], name="job_kind_status"),
            models.Index(fields=["owner", "-created_at"], name="job_owner_created"),
            models.Index(fields=["status", "lease_expires_at"], name="job_status_lease"),
            models.Index(fields=["finished_at"], name="job_finished"),
        ]

    def __str__(self):
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def is_active(self):
        return self.status in ACTIVE_STATUSES

    @property
    def percentage(self):
        if self.status == JobStatus.SUCCEEDED:
            return 100
        if not self.progress_total:
            return 0
        return min(100, int(self.progress_done * 100 / self.progress_total))


class JobEvent(models.Model):
    """The history of a job: what happened to it and what its handler reported."""

    class Type(models.TextChoices):
        CREATED = "created"
        STARTED = "started"
        PROGRESS = "progress"
        LOG = "log"
        RETRY_SCHEDULED = "retry_scheduled"
        YIELDED = "yielded"
        LEASE_EXPIRED = "lease_expired"
        CANCEL_REQUESTED = "cancel_requested"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"
        RETRIED = "retried"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True)
    type = models.CharField(max_length=20, choices=Type.choices)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["job", "created_at"], name="jobevent_job_created")]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.type}: {self.message}"


class KindGate(models.Model):
    """Per-kind row that claims lock while checking a kind's concurrency and rate, so limits hold
    across processes and machines (select_for_update on PostgreSQL; SQLite serialises writers anyway)."""

    kind = models.CharField(max_length=100, primary_key=True)
    # Epoch seconds of the starts within the last minute, for rate_per_minute.
    recent_starts = models.JSONField(default=list, blank=True)

    def __str__(self):
        return self.kind


class EngineLock(models.Model):
    """A named lease, so that two overlapping runs of a periodic task do not both do the work."""

    name = models.CharField(max_length=50, primary_key=True)
    held_until = models.DateTimeField()

    def __str__(self):
        return self.name
