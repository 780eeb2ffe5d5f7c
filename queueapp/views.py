"""The engine's server-rendered pages: dashboard, job page, the demo form. Each app adds its own start form
and its section of the job page (job_page_section), so this module knows no app.

Each page renders the current state on the server, so a tab reopened hours later is right at once and
the page reads without JavaScript. Small scripts (queueapp/static/pages/) then follow the state through
the REST API with the session cookie: the job page polls /api/jobs/{id}/status every 2 s while the job is
active, the dashboard refreshes its figures and bars every 5 s. Starting work always goes through the
API endpoints too, so the pages and API clients share one validation path.
"""

import json

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F
from django.shortcuts import get_object_or_404, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils import timezone

from . import services
from .api import status_payload
from .models import FINISHED_STATUSES, JobEvent, JobStatus
from .registry import get_kind, registered_kinds

RECENT_PER_PAGE = 25
ACTIVE_LIMIT = 100
HISTORY_PER_PAGE = 50
ERRORS_PER_PAGE = 20
CHILDREN_LIMIT = 100
# A result larger than this is cut on the page; the result endpoint always has all of it.
RESULT_MAX_CHARS = 20_000
# Events that record something going wrong; the job page lists them as its error table.
ERROR_EVENTS = (JobEvent.Type.RETRY_SCHEDULED, JobEvent.Type.FAILED, JobEvent.Type.LEASE_EXPIRED)


def duration_text(seconds):
    """'4.2 s', '3 min 05 s', '2 h 07 min': short enough for a table cell on a phone."""
    if seconds is None:
        return ""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24} h"


def rate_text(per_second):
    """Progress units per second, or per minute for slow jobs (0.2 /s reads worse than 12 /min)."""
    if not per_second:
        return ""
    if per_second >= 1:
        return f"{per_second:,.1f} /s"
    return f"{per_second * 60:,.1f} /min"


def kind_title(name):
    kind = get_kind(name)
    return kind.title if kind else name


def job_row(job, now):
    """What a table row shows of a job, with its duration so far (running) or in total (finished)."""
    seconds = None
    if job.started_at:
        seconds = ((job.finished_at or now) - job.started_at).total_seconds()
    return {
        "job": job,
        "title": kind_title(job.kind),
        "duration_seconds": seconds,
        "duration": duration_text(seconds),
        "has_total": bool(job.progress_total),
    }


def kind_choices(jobs):
    """Every registered kind plus any kind that only old jobs still have (a removed kind)."""
    names = set(registered_kinds()) | set(jobs.order_by().values_list("kind", flat=True).distinct())
    return sorted(((name, kind_title(name)) for name in names), key=lambda pair: pair[1].lower())


def paged(request, queryset, per_page, name):
    """One page of `queryset`, chosen by the query parameter `name`, with links that keep the other
    parameters (filters, the page of another table on the same page)."""
    # get_page() clamps a bad or out-of-range number instead of raising: never a 500.
    page = Paginator(queryset, per_page).get_page(request.GET.get(name) or 1)

    def link(number):
        query = request.GET.copy()
        query[name] = number
        return "?" + query.urlencode()

    page.prev_url = link(page.previous_page_number()) if page.has_previous() else ""
    page.next_url = link(page.next_page_number()) if page.has_next() else ""
    page.param = name
    return page


@login_required
def dashboard(request):
    visible = services.visible_jobs(request.user)
    kinds = kind_choices(visible)
    notices = []
    kind = request.GET.get("kind", "")
    if kind and kind not in dict(kinds):
        notices.append(f"There is no job kind {kind!r}; showing every kind.")
        kind = ""
    status = request.GET.get("status", "")
    if status and status not in JobStatus.values:
        notices.append(f"There is no status {status!r}; showing every status.")
        status = ""

    jobs = visible.select_related("owner")
    if kind:
        jobs = jobs.filter(kind=kind)
    if status:
        jobs = jobs.filter(status=status)
    now = timezone.now()
    running = jobs.filter(status=JobStatus.RUNNING).order_by("started_at", "created_at")
    waiting = jobs.filter(status__in=[JobStatus.QUEUED, JobStatus.WAITING]).order_by(
        "-priority", F("run_after").asc(nulls_first=True), "created_at"
    )
    recent = paged(
        request,
        jobs.filter(status__in=FINISHED_STATUSES).order_by(F("finished_at").desc(nulls_last=True), "-created_at"),
        RECENT_PER_PAGE, "page",
    )

    context = {
        "nav": "dashboard",
        "notices": notices,
        "kinds": kinds,
        "statuses": JobStatus.choices,
        "kind": kind,
        "status": status,
        "running": [job_row(job, now) for job in running[:ACTIVE_LIMIT]],
        "running_count": running.count(),
        "waiting": [job_row(job, now) for job in waiting[:ACTIVE_LIMIT]],
        "waiting_count": waiting.count(),
        "recent": recent,
        "recent_rows": [job_row(job, now) for job in recent.object_list],
        "stats": services.stats(visible),
        "workers": services.worker_clusters(),
        "active_limit": ACTIVE_LIMIT,
        "filtered": bool(kind or status),
    }
    return render(request, "pages/dashboard.html", context)


def _safe_link(url):
    # A path on this site or an http(s) URL; never "javascript:" or a protocol-relative "//host".
    return (url.startswith("/") and not url.startswith("//")) or url.startswith(("https://", "http://"))


def result_links(result):
    """Links a handler put in its result (keys ending in _url, e.g. a report download), one level deep."""
    links = []

    def collect(mapping, prefix=""):
        for key, value in mapping.items():
            if isinstance(value, dict) and not prefix:
                collect(value, f"{key}.")
            elif key.endswith("_url") and isinstance(value, str) and _safe_link(value):
                links.append({"label": (prefix + key[:-4]).replace("_", " ").replace(".", " › "), "url": value})

    if isinstance(result, dict):
        collect(result)
    return links


def kind_template(kind_name):
    """templates/pages/kinds/<kind>.html, when a kind has more to show (its own errors, its counts)."""
    name = f"pages/kinds/{kind_name}.html"
    try:
        get_template(name)
    except TemplateDoesNotExist:
        return None
    return name


# --- What a kind's own app adds to the job page ----------------------------------------------------------
# An app registers a function (request, job) -> context for templates/pages/kinds/<kind>.html, or None when
# it has no record for this job. queueapp knows no app: a page of a kind without a section still renders.
_JOB_SECTIONS = {}


def job_page_section(kind_name):
    """Decorator: register the job-page section of a kind (call it from the kind's app's views.py)."""

    def register(function):
        _JOB_SECTIONS[kind_name] = function
        return function

    return register


@login_required
def job_page(request, job_id):
    # Another user's job is indistinguishable from a missing one: 404, as in the API.
    job = get_object_or_404(services.visible_jobs(request.user).select_related("owner", "parent"), id=job_id)
    kind = get_kind(job.kind)
    now = timezone.now()
    history = paged(request, job.events.order_by("-created_at", "-id"), HISTORY_PER_PAGE, "history")
    errors = paged(request, job.events.filter(type__in=ERROR_EVENTS).order_by("-created_at", "-id"),
                   ERRORS_PER_PAGE, "errors")
    children = services.visible_jobs(request.user).filter(parent=job).order_by("created_at")

    result_text, result_truncated = "", False
    if job.result is not None:
        result_text = json.dumps(job.result, indent=2, ensure_ascii=False, sort_keys=True)
        if len(result_text) > RESULT_MAX_CHARS:
            result_text, result_truncated = result_text[:RESULT_MAX_CHARS], True

    payload = status_payload(job, now)
    extras_for = _JOB_SECTIONS.get(job.kind)
    extras = (extras_for(request, job) if extras_for else None) or {}
    context = {
        "nav": "dashboard",
        "job": job,
        "title": kind.title if kind else job.kind,
        "steps": list(kind.steps) if kind else [],
        "status": payload,
        "row": job_row(job, now),
        "elapsed": duration_text(payload["elapsed_seconds"]),
        "eta": duration_text(payload["eta_seconds"]),
        "rate": rate_text(payload["rate_per_second"]),
        "history": history,
        "errors": errors,
        "children": [job_row(child, now) for child in children[:CHILDREN_LIMIT]],
        "children_count": children.count(),
        "params_text": json.dumps(job.params, indent=2, ensure_ascii=False, sort_keys=True),
        "result_text": result_text,
        "result_truncated": result_truncated,
        "result_links": result_links(job.result),
        "kind_template": kind_template(job.kind) if extras or job.kind not in _JOB_SECTIONS else None,
        "extras": extras,
        "retry_from_start": extras.get("retry_from_start", True),
        "page_data": {
            "id": str(job.id),
            "status": payload,
            "steps": list(kind.steps) if kind else [],
            "status_url": f"/api/jobs/{job.id}/status",
            "cancel_url": f"/api/jobs/{job.id}/cancel",
            "retry_url": extras.get("retry_url") or f"/api/jobs/{job.id}/retry",
            "retry_from_start": extras.get("retry_from_start", True),
        },
    }
    return render(request, "pages/job.html", context)


@login_required
def start_demo(request):
    kind = get_kind("demo.count")
    return render(request, "pages/start_demo.html", {"nav": "demo", "title": kind.title if kind else "demo.count"})
