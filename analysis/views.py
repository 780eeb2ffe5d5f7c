"""The analysis app's pages: the start form and its section of the job page."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse

from queueapp.engine import JobStatus
from queueapp.views import ERRORS_PER_PAGE, job_page_section, paged

from .marketplaces import MARKETPLACES


@login_required
def start_analysis(request):
    return render(request, "pages/start_analysis.html", {
        "nav": "analysis",
        "max_bytes": settings.ANALYSIS_MAX_UPLOAD_MB * 1024 * 1024,
        "marketplaces": [(code, market.domain) for code, market in MARKETPLACES.items()],
    })


@job_page_section("analysis.sales")
def analysis_section(request, job):
    result = job.result if isinstance(job.result, dict) else {}
    row_errors = result.get("row_errors") or {}
    rows = row_errors.get("rows") or []
    return {
        "warnings": result.get("warnings") or [],
        "row_error_count": row_errors.get("count", len(rows)),
        "row_errors_by_reason": row_errors.get("by_reason") or {},
        "row_errors": paged(request, rows, ERRORS_PER_PAGE, "rows"),
        "report_url": reverse("analysis-report", args=[job.id]) if job.status == JobStatus.SUCCEEDED else "",
    }
