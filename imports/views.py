"""The imports app's pages: the upload form and its section of the job page (queueapp.views renders both)."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse

from queueapp.engine import Job
from queueapp.views import ERRORS_PER_PAGE, job_page_section, paged

from . import services
from .columns import PRODUCT_COLUMNS


@login_required
def start_import(request):
    # The form checks size and required columns on the client, so the user learns before uploading.
    columns = [
        {"name": column.name, "required": column.required, "aliases": ", ".join(column.aliases)}
        for column in PRODUCT_COLUMNS
    ]
    return render(request, "pages/start_import.html", {
        "nav": "import", "max_bytes": settings.IMPORTS_MAX_UPLOAD_BYTES, "columns": columns,
    })


@job_page_section("imports.products")
def import_section(request, job):
    log = services.visible_imports(request.user).filter(job=job).first()
    if log is None:
        return None
    log = services.sync_with_job(log, job)
    search_job = (Job.objects.filter(kind=services.SEARCH_REFRESH_KIND, params__import_id=log.pk)
                  .order_by("-created_at").only("id").first())
    return {
        "import_log": log,
        "search_job_url": reverse("pages:job", args=[search_job.pk]) if search_job else None,
        "row_errors": paged(request, log.row_errors.order_by("row_number", "id"), ERRORS_PER_PAGE, "rows"),
        "errors_csv_url": reverse("import-errors", args=[log.pk]),
        # The import's own retry also reopens its ImportLog; it always resumes (no "from the start").
        "retry_url": reverse("import-retry", args=[log.pk]),
        "retry_from_start": False,
    }
