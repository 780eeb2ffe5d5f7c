"""POST /api/analysis/ (start), GET /api/analysis/{id} (status, seed 002's shape),
GET /api/analysis/{id}/report.xlsx (the report). Results as JSON: GET /api/jobs/{id}/result."""

from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from queueapp.api import job_urls, timing
from queueapp.engine import JobStatus

from . import services

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class StartAnalysisSerializer(serializers.Serializer):
    asin_or_url = serializers.CharField(
        max_length=2000, help_text="An ASIN (B0D9C28SVB) or an Amazon product URL containing one.")
    marketplace = serializers.CharField(
        required=False, allow_blank=True, max_length=40,
        help_text="US, CA, MX, BR, UK, IE, DE, FR, IT, ES, NL, BE, SE, PL, TR, AE, SA, EG, IN, JP, AU, SG. "
                  "Default: the product URL's store, else US.")
    # Emptiness and size are checked by the service, with messages that say what to do.
    revenue_csv = serializers.FileField(
        allow_empty_file=True, help_text="Business Report (sales and traffic by child item, by date) or order "
                                         "report, as CSV or tab-separated text.")
    design_csv = serializers.FileField(
        required=False, allow_null=True, allow_empty_file=True,
        help_text="Optional: one row per design/listing with ASIN, name, product type, keywords or tags.")


AnalysisStatus = inline_serializer("AnalysisStatus", {
    "job_id": serializers.UUIDField(),
    "status": serializers.ChoiceField(choices=["queued", "processing", "complete", "failed", "cancelled"]),
    "progress": serializers.IntegerField(help_text="Percent, 0-100."),
    "message": serializers.CharField(),
    "created_at": serializers.DateTimeField(),
    "updated_at": serializers.DateTimeField(),
    "completed_at": serializers.DateTimeField(allow_null=True),
    "error": serializers.CharField(allow_null=True),
    "job_status": serializers.CharField(help_text="The engine's status: queued, waiting, running, ..."),
    "step": serializers.DictField(allow_null=True),
    "status_url": serializers.URLField(),
    "result_url": serializers.URLField(),
    "report_url": serializers.URLField(),
})


def _urls(job, request):
    generic = job_urls(job, request)
    return {
        "status_url": reverse("analysis-status", args=[job.id], request=request),
        "result_url": generic["result_url"],
        "report_url": reverse("analysis-report", args=[job.id], request=request),
        "job_url": generic["detail_url"],
        "job_status_url": generic["status_url"],
    }


def _job(request, job_id):
    job = services.analysis_jobs(request.user).filter(id=job_id).first()
    if job is None:
        raise Http404(f"No sales analysis {job_id} for this user.")
    return job


def _status_body(job, request):
    return {**services.status(job), **timing(job), **_urls(job, request)}


class StartAnalysisView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": StartAnalysisSerializer},
        responses={202: AnalysisStatus, 400: OpenApiResponse(description="A message per bad field.")},
    )
    def post(self, request):
        """Start a sales analysis. Files are checked (format, columns) before the job is queued."""
        form = StartAnalysisSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            analysis = services.start_analysis(owner=request.user, **form.validated_data)
        except services.InputErrors as exc:
            raise ValidationError(exc.errors)
        job = analysis.job
        body = _status_body(job, request)
        body["message"] = (f"Analysis of {analysis.asin} on Amazon {analysis.marketplace} queued. "
                           f"Poll GET {body['status_url']} for progress; the results will be at "
                           f"{body['result_url']} and the report at {body['report_url']}.")
        return Response(body, status=status.HTTP_202_ACCEPTED)


class AnalysisStatusView(APIView):
    @extend_schema(responses={200: AnalysisStatus})
    def get(self, request, job_id):
        """Progress of an analysis: status, percentage, the current step's message."""
        return Response(_status_body(_job(request, job_id), request))


class XlsxRenderer(BaseRenderer):
    """Lets a client that asks for the xlsx type get it; error bodies stay JSON."""

    media_type = XLSX
    format = "xlsx"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)


class AnalysisReportView(APIView):
    renderer_classes = [JSONRenderer, XlsxRenderer]

    @extend_schema(responses={
        (200, XLSX): OpenApiResponse(description="The xlsx report."),
        202: AnalysisStatus, 409: AnalysisStatus,
    })
    def get(self, request, job_id):
        """The xlsx report: 200 when complete, 202 while it runs, 409 if it failed or was cancelled."""
        job = _job(request, job_id)
        if job.status == JobStatus.SUCCEEDED:
            path = services.report_file(job)
            return FileResponse(open(path, "rb"), as_attachment=True, filename=services.report_filename(job),
                                content_type=XLSX)
        code = status.HTTP_202_ACCEPTED if job.is_active else status.HTTP_409_CONFLICT
        return Response(_status_body(job, request), status=code)
