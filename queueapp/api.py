"""The generic jobs API: list and schedule, detail, status, result, cancel, retry, stats."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.reverse import reverse

from . import services
from .models import ACTIVE_STATUSES, Job, JobEvent, JobStatus
from .registry import get_kind, registered_kinds


def job_urls(job, request=None):
    """The job's URLs in their canonical form: /api/jobs/{id}/ and /api/jobs/{id}/status."""
    return {
        "status_url": reverse("job-status", args=[job.id], request=request),
        "detail_url": reverse("job-detail", args=[job.id], request=request),
        "result_url": reverse("job-result", args=[job.id], request=request),
    }


def timing(job, now=None):
    """Elapsed seconds, rate (units per second) and ETA seconds from the job's progress."""
    now = now or timezone.now()
    if not job.started_at:
        return {"elapsed_seconds": None, "rate_per_second": None, "eta_seconds": None}
    elapsed = ((job.finished_at or now) - job.started_at).total_seconds()
    rate = job.progress_done / elapsed if elapsed > 0 and job.progress_done else None
    eta = None
    if rate and job.progress_total and job.is_active:
        eta = round(max(0, job.progress_total - job.progress_done) / rate, 1)
    return {
        "elapsed_seconds": round(elapsed, 1),
        "rate_per_second": round(rate, 3) if rate else None,
        "eta_seconds": eta,
    }


class JobEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobEvent
        fields = ["created_at", "type", "message", "data"]


def _iso(value):
    # DRF's own format: ISO 8601, UTC as "Z".
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def step_payload(job):
    """{"number", "of", "name", "names"} for kinds with named steps, else None."""
    kind = get_kind(job.kind)
    if kind is None or not kind.steps:
        return None
    number = job.step
    return {
        "number": number,
        "of": len(kind.steps),
        "name": kind.steps[number - 1] if number and 0 < number <= len(kind.steps) else None,
        "names": list(kind.steps),
    }


def status_payload(job, now=None):
    """The compact status of a job. Built by hand: it is the endpoint pages poll every 2 s."""
    return {
        "id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "progress_done": job.progress_done,
        "progress_total": job.progress_total,
        "percentage": job.percentage,
        "message": job.message,
        "error": job.error,
        "succeeded_count": job.succeeded_count,
        "failed_count": job.failed_count,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "next_attempt_at": _iso(job.run_after) if job.status == JobStatus.WAITING else None,
        "cancel_requested": job.cancel_requested,
        "step": step_payload(job),
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "updated_at": _iso(job.updated_at),
        "finished_at": _iso(job.finished_at),
        **timing(job, now),
    }


class JobStatusSerializer(serializers.Serializer):
    """Compact, for polling. The fields are declared for the schema; status_payload() renders them."""

    id = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    progress_done = serializers.IntegerField()
    progress_total = serializers.IntegerField(allow_null=True)
    percentage = serializers.IntegerField()
    message = serializers.CharField()
    error = serializers.CharField()
    succeeded_count = serializers.IntegerField()
    failed_count = serializers.IntegerField()
    attempts = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True, help_text="When a waiting job runs next.")
    cancel_requested = serializers.BooleanField()
    step = serializers.DictField(allow_null=True, help_text="For kinds with named steps: number, of, name, names.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    elapsed_seconds = serializers.FloatField(allow_null=True)
    rate_per_second = serializers.FloatField(allow_null=True, help_text="Progress units per second.")
    eta_seconds = serializers.FloatField(allow_null=True)

    def to_representation(self, job):
        return status_payload(job)


class JobSerializer(JobStatusSerializer):
    title = serializers.CharField()
    owner = serializers.CharField(allow_null=True, help_text="Username")
    priority = serializers.IntegerField()
    run_after = serializers.DateTimeField(allow_null=True)
    parent = serializers.UUIDField(allow_null=True)
    status_url = serializers.URLField()

    def to_representation(self, job):
        kind = get_kind(job.kind)
        return {
            **status_payload(job),
            "title": kind.title if kind else job.kind,
            "owner": job.owner.username if job.owner_id else None,
            "priority": job.priority,
            "run_after": _iso(job.run_after),
            "parent": str(job.parent_id) if job.parent_id else None,
            "status_url": job_urls(job, self.context.get("request"))["status_url"],
        }


class JobDetailSerializer(JobSerializer):
    params = serializers.JSONField()
    checkpoint = serializers.JSONField(allow_null=True)
    result = serializers.JSONField(allow_null=True)
    events = JobEventSerializer(many=True)

    def to_representation(self, job):
        # The newest 500 lines; a job with more keeps them all in the admin.
        events = list(job.events.order_by("-created_at", "-id")[:500])
        return {
            **super().to_representation(job),
            "params": job.params,
            "checkpoint": job.checkpoint,
            "result": job.result,
            "events": JobEventSerializer(reversed(events), many=True).data,
        }


class JobCreateSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="A schedulable job kind, e.g. demo.count.")
    params = serializers.JSONField(required=False, default=dict)
    run_after = serializers.DateTimeField(required=False, allow_null=True,
                                          help_text="Do not start before this time (UTC).")
    priority = serializers.IntegerField(required=False, default=0, min_value=-100, max_value=100)

    def validate_kind(self, value):
        kind = get_kind(value)
        schedulable = sorted(name for name, k in registered_kinds().items() if k.schedulable)
        if kind is None:
            raise ValidationError(f"Unknown job kind {value!r}. Schedulable kinds: {', '.join(schedulable)}.")
        if not kind.schedulable:
            raise ValidationError(
                f"Job kind {value!r} cannot be scheduled here; start it from its own endpoint. "
                f"Schedulable kinds: {', '.join(schedulable)}."
            )
        return value

    def validate_params(self, value):
        if not isinstance(value, dict):
            raise ValidationError("params must be a JSON object.")
        return value

    def validate(self, attrs):
        try:
            _, attrs["params"] = services.validate_params(attrs["kind"], attrs.get("params"))
        except services.InvalidParams as exc:
            raise ValidationError({"params": exc.errors})
        return attrs


def _flag(value, name):
    if value is None:
        return None
    lowered = value.lower()
    if lowered in {"1", "true", "yes"}:
        return True
    if lowered in {"0", "false", "no"}:
        return False
    raise ValidationError({name: [f"Use true or false, not {value!r}."]})


FILTER_PARAMETERS = [
    OpenApiParameter("status", str, description="One of " + ", ".join(JobStatus.values)),
    OpenApiParameter("kind", str, description="A job kind, e.g. demo.count"),
    OpenApiParameter("active", bool, description="Only queued, waiting and running jobs"),
    OpenApiParameter("owner", str, description="Username (staff only)"),
]


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every kind of job. Users see their own; staff see all. Another user's job answers 404."""

    serializer_class = JobSerializer
    queryset = Job.objects.none()

    def get_queryset(self):
        jobs = services.visible_jobs(self.request.user)
        if self.action in ("status", "result", "cancel", "retry"):
            return jobs  # the hot polling path: no join
        jobs = jobs.select_related("owner")
        if self.action != "list":
            return jobs
        params = self.request.query_params
        status_filter = params.get("status")
        if status_filter:
            wanted = [s.strip() for s in status_filter.split(",") if s.strip()]
            unknown = [s for s in wanted if s not in JobStatus.values]
            if unknown:
                raise ValidationError(
                    {"status": [f"Unknown status {', '.join(unknown)}. Use one of {', '.join(JobStatus.values)}."]}
                )
            jobs = jobs.filter(status__in=wanted)
        if params.get("kind"):
            jobs = jobs.filter(kind=params["kind"])
        if _flag(params.get("active"), "active"):
            jobs = jobs.filter(status__in=ACTIVE_STATUSES)
        if params.get("owner") and self.request.user.is_staff:
            jobs = jobs.filter(owner__username=params["owner"])
        return jobs.order_by("-created_at")

    def get_serializer_class(self):
        if self.action == "retrieve":
            return JobDetailSerializer
        if self.action == "create":
            return JobCreateSerializer
        return JobSerializer

    @extend_schema(parameters=FILTER_PARAMETERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=JobCreateSerializer, responses={202: JobSerializer})
    def create(self, request):
        """Schedule a job of a schedulable kind with validated params."""
        form = JobCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        job = services.submit(
            data["kind"], data["params"], owner=request.user, run_after=data.get("run_after"),
            priority=data.get("priority", 0), validate=False,
        )
        body = JobSerializer(job, context={"request": request}).data
        return Response({"job_id": str(job.id), **job_urls(job, request), "job": body},
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=JobStatusSerializer)
    @action(detail=True, methods=["get"])
    def status(self, request, pk=None):
        return Response(JobStatusSerializer(self.get_object()).data)

    @extend_schema(responses={200: dict, 202: JobStatusSerializer, 409: JobStatusSerializer})
    @action(detail=True, methods=["get"])
    def result(self, request, pk=None):
        """200 with the result when succeeded, 202 while still to run, 409 when failed or cancelled."""
        job = self.get_object()
        if job.status == JobStatus.SUCCEEDED:
            return Response({"job_id": str(job.id), "status": job.status, "result": job.result})
        body = JobStatusSerializer(job).data
        if job.is_active:
            return Response(body, status=status.HTTP_202_ACCEPTED)
        return Response(body, status=status.HTTP_409_CONFLICT)

    @extend_schema(request=None, responses={200: JobStatusSerializer, 202: JobStatusSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Queued or waiting: cancelled at once (200). Running: cancel requested (202)."""
        job = self.get_object()
        try:
            job = services.cancel(job)
        except services.NotAllowed as exc:
            return Response({"detail": str(exc), "status": job.status}, status=status.HTTP_409_CONFLICT)
        code = status.HTTP_202_ACCEPTED if job.status == JobStatus.RUNNING else status.HTTP_200_OK
        return Response(JobStatusSerializer(job).data, status=code)

    @extend_schema(
        request=inline_serializer("RetryRequest", {"from_start": serializers.BooleanField(required=False)}),
        responses={202: JobStatusSerializer},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Run a failed or cancelled job again; it resumes from its checkpoint unless from_start is true."""
        job = self.get_object()
        from_start = request.data.get("from_start", False) if hasattr(request.data, "get") else False
        if not isinstance(from_start, bool):
            from_start = _flag(str(from_start), "from_start")
        try:
            job = services.retry(job, from_start=bool(from_start))
        except services.NotAllowed as exc:
            return Response({"detail": str(exc), "status": job.status}, status=status.HTTP_409_CONFLICT)
        return Response({**JobStatusSerializer(job).data, **job_urls(job, request)},
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=dict)
    @action(detail=False, methods=["get"])
    def stats(self, request):
        """Counts by status and kind, ready vs. scheduled later, average duration, and the workers."""
        body = services.stats(services.visible_jobs(request.user))
        body["workers"] = services.worker_clusters()
        return Response(body)
