"""The job engine's public API. Domain apps import from here only."""

from .exceptions import JobCancelled, PermanentError, RetryLater, YieldSlice
from .models import Job, JobStatus
from .registry import Backoff, JobKind, exponential, get_kind, job_kind, registered_kinds
from .runner import JobContext
from .schedules import register_schedule
from .services import (
    InvalidParams,
    JobError,
    NotAllowed,
    UnknownKind,
    cancel,
    retry,
    stats,
    submit,
    visible_jobs,
)
from .signals import job_finished

__all__ = [
    "Backoff", "InvalidParams", "Job", "JobCancelled", "JobContext", "JobError", "JobKind", "JobStatus",
    "NotAllowed", "PermanentError", "RetryLater", "UnknownKind", "YieldSlice", "cancel", "exponential",
    "get_kind", "job_finished", "job_kind", "register_schedule", "registered_kinds", "retry", "stats",
    "submit", "visible_jobs",
]
