"""Sales analyses: checking uploads, starting the job, running its five steps, serving its report,
and deleting its files with the job. The API view and the analyze_sales command call these.
"""

import json
import logging
import re
import shutil
import time
import uuid
from collections import Counter
from pathlib import Path

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from queueapp.engine import Job, JobStatus, PermanentError, submit, visible_jobs

from . import csvparse, report
from .analytics import Aggregator, Analysis
from .csvparse import DESIGNS, REVENUE, DateReader, Reader, RowErrors, UnreadableFile, ValueProblem, parse_number
from .marketplaces import ASIN_RE, MARKETPLACES, InvalidInput, marketplace, parse_asin_or_url
from .models import SalesAnalysis

log = logging.getLogger("analysis")

KIND = "analysis.sales"
STEPS = (
    "Parsing and validating files",
    "Totals and trends",
    "Rankings",
    "Keyword and design performance",
    "Recommendations and report",
)
# Progress (0-100) at which each step starts: reading the files is nearly all of the time.
STEP_STARTS = (0, 85, 90, 94, 97)
STORAGE_RE = re.compile(r"^analysis/[0-9a-f]{32}$")
REVENUE_FILE, DESIGN_FILE, REPORT_FILE = "revenue.csv", "design.csv", "report.xlsx"
CANCELLED = {"cancelled", "canceled", "storniert", "annulé", "annule", "annullato", "cancelado"}
DOLLAR_CURRENCIES = {"USD", "CAD", "AUD", "MXN", "SGD"}
# Seed 002's vocabulary (processing, complete, failed) plus queued and cancelled, which it did not have.
SEED_STATUS = {
    JobStatus.QUEUED: "queued", JobStatus.WAITING: "processing", JobStatus.RUNNING: "processing",
    JobStatus.SUCCEEDED: "complete", JobStatus.FAILED: "failed", JobStatus.CANCELLED: "cancelled",
}


class InputErrors(Exception):
    """Bad request fields: {field: [message, ...]}. Raised before any file is stored or job created."""

    def __init__(self, errors):
        super().__init__("; ".join(m for messages in errors.values() for m in messages))
        self.errors = errors


# -- starting ---------------------------------------------------------------------------------------
def _max_bytes():
    return settings.ANALYSIS_MAX_UPLOAD_MB * 1024 * 1024


def sniff_upload(upload, spec, market):
    """Check an uploaded file from its first bytes only; returns its Layout or raises InvalidInput."""
    name = spec.field_name
    size = upload.size
    if not size:
        raise InvalidInput(f"{name} is empty (0 bytes).")
    if size > _max_bytes():
        raise InvalidInput(
            f"{name} is {size / 1024 / 1024:.1f} MB; the limit is {settings.ANALYSIS_MAX_UPLOAD_MB} MB "
            "(ANALYSIS_MAX_UPLOAD_MB). Export a shorter date range or fewer columns."
        )
    upload.seek(0)
    head = upload.read(csvparse.SAMPLE_BYTES)
    upload.seek(0)
    return csvparse.sniff(head, size <= len(head), spec, market)


def check_inputs(asin_or_url, marketplace_code, revenue, design):
    """Validate every field, collecting all problems; returns (asin, Marketplace)."""
    errors = {}
    asin = url_market = market = None
    try:
        asin, url_market = parse_asin_or_url(asin_or_url)
    except InvalidInput as exc:
        errors["asin_or_url"] = [str(exc)]
    code = (marketplace_code or "").strip()
    try:
        market = marketplace(code or url_market or "US")
    except InvalidInput as exc:
        errors["marketplace"] = [str(exc)]
    if market and url_market and code and market.code != url_market:
        errors["marketplace"] = [
            f"The product URL is on {MARKETPLACES[url_market].domain} ({url_market}) but marketplace is "
            f"{market.code}. Give the marketplace the sales export comes from, or a URL from that store."
        ]
    hints = market or MARKETPLACES["US"]
    for field, upload, spec in (("revenue_csv", revenue, REVENUE), ("design_csv", design, DESIGNS)):
        if upload is None:
            if field == "revenue_csv":
                errors[field] = ["Upload the sales export (Business Report or order report) as revenue_csv."]
            continue
        try:
            sniff_upload(upload, spec, hints)
        except InvalidInput as exc:
            errors[field] = [str(exc)]
    if errors:
        raise InputErrors(errors)
    return asin, market


def media_path(relative):
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise ValueError(f"{relative!r} is outside MEDIA_ROOT")
    return path


def storage_path(storage):
    if not STORAGE_RE.match(storage or ""):
        raise ValueError(f"not an analysis storage folder: {storage!r}")
    return media_path(storage)


def _save(upload, path):
    upload.seek(0)
    with open(path, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)


def start_analysis(*, owner, asin_or_url, marketplace=None, revenue_csv=None, design_csv=None):
    """Check the inputs, keep the files, and queue the job. Returns the SalesAnalysis."""
    asin, market = check_inputs(asin_or_url, marketplace, revenue_csv, design_csv)
    storage = f"analysis/{uuid.uuid4().hex}"
    folder = storage_path(storage)
    folder.mkdir(parents=True, exist_ok=False)
    try:
        _save(revenue_csv, folder / REVENUE_FILE)
        if design_csv is not None:
            _save(design_csv, folder / DESIGN_FILE)
        params = {
            "asin": asin,
            "marketplace": market.code,
            "storage": storage,
            "revenue_filename": _display_name(revenue_csv),
            "design_filename": _display_name(design_csv) if design_csv is not None else "",
        }
        with transaction.atomic():
            job = submit(KIND, params, owner=owner)
            analysis = SalesAnalysis.objects.create(
                job=job, asin=asin, marketplace=market.code, storage=storage,
                revenue_filename=params["revenue_filename"], revenue_size=revenue_csv.size,
                design_filename=params["design_filename"],
                design_size=design_csv.size if design_csv is not None else None,
            )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return analysis


def _display_name(upload):
    return Path(upload.name or "upload.csv").name[:255]


# -- the job ----------------------------------------------------------------------------------------
class _Progress:
    """Turns bytes read into the job's percentage and message, at most twice a second."""

    def __init__(self, ctx, total_bytes):
        self.ctx, self.total = ctx, max(1, total_bytes)
        self.last = 0.0

    def step(self, number, detail=None):
        message = f"Step {number} of {len(STEPS)}: {STEPS[number - 1]}" + (f" - {detail}" if detail else "")
        self.ctx.progress(STEP_STARTS[number - 1], total=100, message=message, step=number)

    def reading(self, done_bytes, label, rows, force=False):
        now = time.monotonic()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        share = min(done_bytes, self.total) / self.total
        self.ctx.progress(int(STEP_STARTS[1] * share), total=100, step=1,
                          message=f"Step 1 of {len(STEPS)}: {STEPS[0]} - {label}: {rows:,} rows read")


def _sniff_file(path, spec, market):
    if not path.exists():
        raise PermanentError(f"The uploaded {spec.field_name} is no longer on disk ({path.name}); start a new analysis.")
    with open(path, "rb") as handle:
        head = handle.read(csvparse.SAMPLE_BYTES)
    try:
        return csvparse.sniff(head, len(head) < csvparse.SAMPLE_BYTES, spec, market)
    except InvalidInput as exc:
        raise PermanentError(str(exc))


def _read_revenue(path, layout, market, agg, errors, progress, offset_bytes):
    """Stream revenue rows into the aggregator. Returns per-file counts and the currencies seen."""
    label = "revenue_csv"
    headers = layout.headers
    cols = layout.columns
    i_asin, i_units, i_revenue = cols["asin"], cols["units"], cols["revenue"]
    i_title, i_date = cols.get("title"), cols.get("date")
    i_sessions, i_views = cols.get("sessions"), cols.get("page_views")
    i_currency, i_status = cols.get("currency"), cols.get("status")
    comma = layout.decimal_comma
    read_date = DateReader(layout.date_order)
    dollar = market.currency if market.currency in DOLLAR_CURRENCIES else "USD"
    currencies = Counter()
    cancelled = 0
    before = errors.count
    reader = Reader(path, layout, errors, label)
    add = agg.add
    n = 0
    for line, cells in reader:
        n += 1
        if n & 4095 == 0:
            progress.reading(offset_bytes + reader.bytes_read(), label, reader.rows_read)
        column = i_asin
        try:
            asin = cells[i_asin].strip().upper()
            if not ASIN_RE.match(asin):
                raise ValueProblem("not an ASIN (10 characters: B0 and 8 letters or digits, or an ISBN-10)"
                                   if asin else "empty")
            if i_status is not None and cells[i_status].strip().lower() in CANCELLED:
                cancelled += 1
                continue
            column = i_units
            units = int(parse_number(cells[i_units], comma, True)[0])
            column = i_revenue
            revenue, currency = parse_number(cells[i_revenue], comma)
            sessions = views = 0
            if i_sessions is not None:
                column = i_sessions
                sessions = int(parse_number(cells[i_sessions], comma, True)[0])
            if i_views is not None:
                column = i_views
                views = int(parse_number(cells[i_views], comma, True)[0])
            day = None
            if i_date is not None:
                column = i_date
                day = read_date(cells[i_date])
            if i_currency is not None and cells[i_currency].strip():
                currency = cells[i_currency].strip().upper()
        except ValueProblem as exc:
            errors.add(label, line, headers[column], cells[column], str(exc))
            continue
        if currency is not None:
            currencies[dollar if currency == "$" else currency] += 1
        add(asin, cells[i_title].strip() if i_title is not None else "", day, revenue, units, sessions, views)
    progress.reading(offset_bytes + reader.bytes_read(), label, reader.rows_read, force=True)
    rejected = errors.count - before
    return {
        "rows_read": reader.rows_read,
        "rows_used": reader.rows_read - rejected - cancelled,
        "rows_rejected": rejected,
        "empty_rows": reader.empty_rows,
        "cancelled_rows_skipped": cancelled,
    }, currencies


def split_tags(text):
    """'Cats, Funny|#retro;cats' -> ['cats', 'funny', 'retro']: lower case, no duplicates, in order."""
    seen = []
    for part in re.split(r"[,;|\n\r]+", text or ""):
        tag = " ".join(part.strip().lstrip("#").split()).lower()
        if tag and tag not in seen:
            seen.append(tag)
    return seen


def _read_designs(path, layout, errors, progress, offset_bytes):
    label = "design_csv"
    cols = layout.columns
    i_asin, i_name = cols["asin"], cols.get("name")
    i_type, i_keywords = cols.get("product_type"), cols.get("keywords")
    designs = {}
    duplicates = 0
    before = errors.count
    reader = Reader(path, layout, errors, label)
    for line, cells in reader:
        asin = cells[i_asin].strip().upper()
        if not ASIN_RE.match(asin):
            errors.add(label, line, layout.headers[i_asin], cells[i_asin],
                       "not an ASIN (10 characters: B0 and 8 letters or digits, or an ISBN-10)" if asin else "empty")
            continue
        tags = split_tags(cells[i_keywords]) if i_keywords is not None else []
        ptype = " ".join(cells[i_type].split()) if i_type is not None else ""
        name = cells[i_name].strip() if i_name is not None else ""
        if asin in designs:
            # The same listing twice (e.g. one row per colour): one design with all its tags.
            duplicates += 1
            known = designs[asin]
            known["keywords"] += [t for t in tags if t not in known["keywords"]]
            known["product_type"] = known["product_type"] or ptype
            known["name"] = known["name"] or name
            continue
        designs[asin] = {"name": name, "product_type": ptype, "keywords": tags}
    progress.reading(offset_bytes + reader.bytes_read(), label, reader.rows_read, force=True)
    rejected = errors.count - before
    return designs, {
        "rows_read": reader.rows_read,
        "rows_used": reader.rows_read - rejected,
        "rows_rejected": rejected,
        "empty_rows": reader.empty_rows,
        "duplicate_asins_merged": duplicates,
    }


def run_analysis(ctx):
    """The job handler's body: five named steps, each reported as progress with a message.

    The analysis is a pure function of the stored files, so a run after a crash simply starts over
    (the report is replaced atomically); there is nothing to checkpoint."""
    params = ctx.params
    market = marketplace(params["marketplace"])
    folder = storage_path(params["storage"])
    revenue_path, design_path = folder / REVENUE_FILE, folder / DESIGN_FILE
    has_design = bool(params.get("design_filename"))
    total_bytes = revenue_path.stat().st_size if revenue_path.exists() else 0
    if has_design and design_path.exists():
        total_bytes += design_path.stat().st_size
    progress = _Progress(ctx, total_bytes)

    # Step 1: parse and validate both files; row problems are collected, not fatal.
    progress.step(1)
    errors = RowErrors(keep=settings.ANALYSIS_MAX_ROW_ERRORS)
    rev_layout = _sniff_file(revenue_path, REVENUE, market)
    agg = Aggregator(params["asin"], "sessions" in rev_layout.columns, "page_views" in rev_layout.columns)
    try:
        rev_counts, currencies = _read_revenue(revenue_path, rev_layout, market, agg, errors, progress, 0)
        designs = design_counts = design_layout = None
        if has_design:
            design_layout = _sniff_file(design_path, DESIGNS, market)
            designs, design_counts = _read_designs(design_path, design_layout, errors, progress,
                                                   revenue_path.stat().st_size)
    except UnreadableFile as exc:
        raise PermanentError(str(exc))
    if rev_counts["rows_used"] == 0:
        first = "; ".join(
            f"line {e['line']}{' ' + e['column'] if e['column'] else ''} {e['value']!r}: {e['reason']}"
            for e in errors.details[:3]
        )
        raise PermanentError(
            f"revenue_csv has no usable rows: {rev_counts['rows_read']:,} read, {rev_counts['rows_rejected']:,} "
            f"rejected, {rev_counts['cancelled_rows_skipped']:,} cancelled. First problems: {first or 'none'}."
        )
    ctx.event(f"Read revenue_csv: {rev_counts['rows_used']:,} rows used, {rev_counts['rows_rejected']:,} rejected",
              **rev_counts)
    if design_counts:
        ctx.event(f"Read design_csv: {len(designs):,} designs", **design_counts)
    currency = currencies.most_common(1)[0][0] if currencies else market.currency
    analysis = Analysis(agg, designs, top_n=settings.ANALYSIS_TOP_N, min_sessions=settings.ANALYSIS_MIN_SESSIONS,
                        max_recommendations=settings.ANALYSIS_MAX_RECOMMENDATIONS, currency=currency)

    progress.step(2)
    totals, trends, focus = analysis.totals(), analysis.trends(), analysis.focus()
    progress.step(3)
    rankings = analysis.rankings()
    progress.step(4)
    keywords = analysis.keywords(max_keywords=settings.ANALYSIS_RESULT_MAX_KEYWORDS)
    progress.step(5)
    recommendations = analysis.recommendations(rankings, keywords, focus)

    limit = settings.ANALYSIS_RESULT_MAX_ITEMS
    warnings = _warnings(params, market, agg, focus, currencies, currency, rev_counts, design_counts, errors)
    inputs = {"revenue_csv": {"filename": params["revenue_filename"], "size_bytes": revenue_path.stat().st_size,
                              **rev_counts, **rev_layout.describe()},
              "design_csv": None}
    if design_counts is not None:
        inputs["design_csv"] = {"filename": params["design_filename"], "size_bytes": design_path.stat().st_size,
                                "designs": len(designs), **design_counts, **design_layout.describe()}
    result = {
        "asin": params["asin"],
        "marketplace": market.code,
        "currency": currency,
        "generated_at": timezone.now(),
        "report_url": reverse("analysis-report", args=[ctx.job_id]),
        "inputs": inputs,
        "period": analysis.period(),
        "totals": totals,
        "trends": trends,
        "focus": focus,
        "rankings": rankings,
        "keywords": keywords,
        "recommendations": recommendations,
        "items": [analysis.item_row(a) for a in analysis.by_revenue[:limit]],
        "items_truncated": len(analysis.by_revenue) > limit,
        "row_errors": errors.as_dict(),
        "warnings": warnings,
    }
    result = as_json(result)
    report_rel = f"{params['storage']}/{REPORT_FILE}"
    report.build(result, media_path(report_rel))
    SalesAnalysis.objects.filter(job_id=ctx.job_id).update(
        rows_used=rev_counts["rows_used"], rows_rejected=errors.count, report_file=report_rel)
    ctx.progress(100, total=100, message=(
        f"Analysis complete: {rev_counts['rows_used']:,} rows, {totals['items']:,} items, "
        f"{len(recommendations)} recommendations"
        + (f", {errors.count:,} rows rejected" if errors.count else "")
    ))
    return result


def _warnings(params, market, agg, focus, currencies, currency, rev_counts, design_counts, errors):
    out = []
    if not focus.get("found"):
        out.append(f"The focus ASIN {params['asin']} has no rows in revenue_csv.")
    if not agg.has_sessions:
        out.append("revenue_csv has no sessions column (e.g. an order report): conversion and traffic-based "
                   "rankings are not available. Upload a Business Report for them.")
    if not agg.days:
        out.append("revenue_csv has no date column: weekly and monthly trends are not available.")
    if len(currencies) > 1:
        seen = ", ".join(f"{c} ({n:,} rows)" for c, n in currencies.most_common())
        out.append(f"revenue_csv mixes currencies: {seen}. Amounts are added as they are, without conversion.")
    if currency != market.currency:
        out.append(f"Amounts are in {currency}, not {market.currency} as usual on Amazon {market.code}.")
    if rev_counts["cancelled_rows_skipped"]:
        out.append(f"{rev_counts['cancelled_rows_skipped']:,} cancelled order rows were left out.")
    if errors.count:
        out.append(f"{errors.count:,} rows were rejected; row_errors lists them (the first "
                   f"{min(errors.count, errors.keep)} in detail).")
    if design_counts and design_counts["duplicate_asins_merged"]:
        out.append(f"design_csv lists {design_counts['duplicate_asins_merged']:,} ASINs more than once; "
                   "their rows were merged.")
    return out


def as_json(value):
    """Plain JSON data: Decimals become strings (exact), dates ISO strings."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


# -- reading back -----------------------------------------------------------------------------------
def analysis_jobs(user):
    return visible_jobs(user).filter(kind=KIND)


def current_step(job):
    if job.status == JobStatus.SUCCEEDED:
        return len(STEPS)
    if job.attempts == 0 and job.status in (JobStatus.QUEUED, JobStatus.WAITING):
        return None
    if job.step:
        return job.step
    done = job.progress_done or 0
    return max(i for i, start in enumerate(STEP_STARTS, start=1) if done >= start)


def status(job):
    """Seed 002's job-status fields, with the engine's own status and the current step besides."""
    step = current_step(job)
    finished = job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
    message = job.message
    if not message:
        message = "Waiting for a worker to start the analysis." if job.status == JobStatus.QUEUED else job.status
    params = job.params or {}
    return {
        "job_id": str(job.id),
        "status": SEED_STATUS[job.status],
        "progress": job.percentage,
        "message": message,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "completed_at": job.finished_at if finished else None,
        "error": (job.error or None) if job.status in (JobStatus.FAILED, JobStatus.CANCELLED) else None,
        "job_status": job.status,
        "step": None if step is None else {"number": step, "of": len(STEPS), "name": STEPS[step - 1]},
        "asin": params.get("asin"),
        "marketplace": params.get("marketplace"),
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        # After a worker crash the job waits for its next attempt; say when, and why.
        "next_attempt_at": job.run_after if job.status == JobStatus.WAITING else None,
        "last_error": (job.error or None) if job.status == JobStatus.WAITING else None,
    }


def report_file(job):
    """The report of a succeeded job, rebuilt from the stored result if its file has gone missing."""
    params = job.params or {}
    path = storage_path(params["storage"]) / REPORT_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        report.build(job.result, path)
    return path


def report_filename(job):
    params = job.params or {}
    day = (job.finished_at or timezone.now()).date().isoformat()
    return f"sales-analysis-{params.get('asin', 'asin')}-{params.get('marketplace', '')}-{day}.xlsx"


def delete_files(job):
    """Remove an analysis job's folder (uploads and report) once its deletion is committed."""
    if job.kind != KIND:
        return
    try:
        folder = storage_path((job.params or {}).get("storage"))
    except ValueError:
        return
    transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))


def remove_orphan_folders(older_than_hours=24):
    """Folders without a job (a process died between saving the upload and committing the job)."""
    root = media_path("analysis")
    if not root.is_dir():
        return 0
    known = set(Job.objects.filter(kind=KIND).values_list("params__storage", flat=True))
    cutoff = time.time() - older_than_hours * 3600
    removed = 0
    for folder in root.iterdir():
        if folder.is_dir() and f"analysis/{folder.name}" not in known and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def summary_lines(result):
    """A few lines for the command line: totals, the focus item, the top recommendations."""
    cur = result["currency"]
    totals = result["totals"]
    period = result.get("period")
    lines = [
        f"Period: {period['first_date']} to {period['last_date']} ({period['days']} days)" if period
        else "Period: not dated",
        f"Revenue {cur} {totals['revenue']}, units {totals['units']}, sessions {totals['sessions']}, "
        f"conversion {totals['conversion_percent']}%, average price {totals['average_price']}, "
        f"{totals['items']} items",
    ]
    focus = result["focus"]
    if focus.get("found"):
        lines.append(
            f"{focus['asin']}: revenue {cur} {focus['revenue']} ({focus['share_of_revenue_percent']}% of the "
            f"catalogue, rank {focus['rank_by_revenue']} of {focus['items_in_catalogue']}), conversion "
            f"{focus['conversion_percent']}% against {focus['catalogue_conversion_percent']}%"
        )
    else:
        lines.append(focus["note"])
    for rec in result["recommendations"][:5]:
        lines.append(f"{rec['rank']}. {rec['action']} {rec['why']}")
    for warning in result["warnings"]:
        lines.append(f"Warning: {warning}")
    return lines
