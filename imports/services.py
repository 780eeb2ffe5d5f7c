"""Product and dealer imports: checking an upload, running a product import job, dealers at once,
status, retry and the error report. Callable without HTTP; the API, admin and commands call these."""

import csv
import gc
import hashlib
import io
import logging
import os
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils import timezone

from queueapp.engine import Job, JobStatus, NotAllowed, PermanentError, job_finished, retry, submit
from queueapp.models import ACTIVE_STATUSES

from .columns import DEALER_COLUMNS, PRODUCT_COLUMNS, Chunk, coerce_row, match_header, product_coercer, text
from .models import Dealer, ImportLog, ImportRowError
from .readers import format_of, open_table
from .search import batch_ends, count_to_refresh, refresh_range
from .writer import ProductWriter
from .xlsx import XlsxError, ZipLimits

log = logging.getLogger("imports")

PRODUCT_JOB_KIND = "imports.products"
SEARCH_REFRESH_KIND = "imports.search_refresh"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
MAX_STORED_VALUE = 500


class UploadRejected(Exception):
    """The upload cannot be imported. `problems` lists every reason, in words for the uploader."""

    def __init__(self, problems, warnings=()):
        super().__init__("; ".join(problems))
        self.problems = list(problems)
        self.warnings = list(warnings)


class ImportNotRetryable(Exception):
    pass


def zip_limits():
    return ZipLimits(
        max_entry_bytes=settings.IMPORTS_ZIP_MAX_ENTRY_BYTES,
        max_total_bytes=settings.IMPORTS_ZIP_MAX_TOTAL_BYTES,
        max_ratio=settings.IMPORTS_ZIP_MAX_RATIO,
    )


# -- the upload ------------------------------------------------------------------------------------------
@dataclass
class StoredUpload:
    name: str  # in default_storage
    path: str
    original_name: str
    file_format: str
    size: int
    sha256: str
    positions: dict = field(default_factory=dict)
    header_row: int = 1
    warnings: list = field(default_factory=list)
    estimated_rows: int | None = None


def _basic_problems(uploaded):
    problems = []
    name = getattr(uploaded, "name", "") or ""
    file_format = format_of(name)
    if file_format is None:
        problems.append(f"'{name}' is not an .xlsx or .csv file. Upload an Excel workbook (.xlsx) or a CSV file.")
    size = getattr(uploaded, "size", None) or 0
    if size == 0:
        problems.append("The file is empty.")
    limit = settings.IMPORTS_MAX_UPLOAD_BYTES
    if size > limit:
        problems.append(f"The file is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB. "
                        "Split it into smaller files.")
    return file_format, problems


def store_upload(uploaded, columns):
    """Check an uploaded file before any job starts, and keep it. Raises UploadRejected listing every
    problem (type, size, container safety, header). Reads the header only, never the whole sheet."""
    file_format, problems = _basic_problems(uploaded)
    if problems:
        raise UploadRejected(problems)
    extension = "." + file_format
    name = default_storage.save(f"imports/{timezone.now():%Y/%m}/{uuid.uuid4().hex}{extension}", uploaded)
    path = default_storage.path(name)
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        stored = StoredUpload(name=name, path=path, original_name=os.path.basename(uploaded.name)[:255],
                              file_format=file_format, size=os.path.getsize(path), sha256=digest.hexdigest())
        inspect(stored, columns)
        return stored
    except BaseException:
        default_storage.delete(name)
        raise


def inspect(stored, columns):
    problems, warnings = [], []
    try:
        table = open_table(stored.path, stored.file_format, zip_limits())
    except XlsxError as exc:
        raise UploadRejected([str(exc)]) from None
    try:
        warnings.extend(getattr(table, "warnings", []))
        found = table.header()
        if found is None:
            raise UploadRejected(["The file has no rows: it needs a header row and at least one data row."])
        header_row, header = found
        matched = match_header(header, columns)
        problems.extend(matched.problems)
        warnings.extend(matched.warnings)
        stored.positions = matched.positions
        stored.header_row = header_row
        if not problems:
            stored.estimated_rows = table.estimated_rows()
    except XlsxError as exc:
        problems.append(str(exc))
    finally:
        table.close()
    if problems:
        raise UploadRejected(problems, warnings)
    stored.warnings = warnings
    return stored


def start_product_import(uploaded, user):
    """Check and store the file, record the ImportLog (PENDING) and start the job; returns the log."""
    stored = store_upload(uploaded, PRODUCT_COLUMNS)
    with transaction.atomic():
        import_log = ImportLog.objects.create(
            type=ImportLog.Type.PRODUCTS, file=stored.name, file_name=stored.original_name,
            file_format=stored.file_format, file_size=stored.size, sha256=stored.sha256,
            uploaded_by=user if user is not None and user.is_authenticated else None,
            total_rows=stored.estimated_rows, warnings=stored.warnings,
        )
        job = submit(PRODUCT_JOB_KIND, {"import_id": import_log.pk}, owner=user)
        import_log.job = job
        import_log.save(update_fields=["job"])
    return import_log


# -- the product import job -------------------------------------------------------------------------------
def _readable_rows(table, start_after, header_row):
    """The table's data rows; a sheet that turns out unreadable halfway fails the job with the reason."""
    rows = table.rows(start_after=max(start_after, header_row))
    while True:
        try:
            item = next(rows)
        except StopIteration:
            return
        except XlsxError as exc:
            raise PermanentError(str(exc)) from None
        except (ValueError, IndexError, UnicodeDecodeError) as exc:
            raise PermanentError(
                f"The sheet is damaged after row {start_after}: {exc}. Save it again from Excel or "
                "LibreOffice and upload the new copy."
            ) from None
        start_after = item[0]
        yield item


def _reset_for_fresh_start(import_log):
    """A run without a checkpoint starts over: forget what an earlier run of this import counted."""
    if import_log.processed_rows or import_log.error_count:
        with transaction.atomic():
            ImportRowError.objects.filter(import_log=import_log).delete()
            ImportLog.objects.filter(pk=import_log.pk).update(
                processed_rows=0, created_count=0, updated_count=0, unchanged_count=0, error_count=0)
        import_log.refresh_from_db()


def _result(import_log):
    return {
        "import_id": import_log.pk,
        "total_rows": import_log.total_rows,
        "processed_rows": import_log.processed_rows,
        "success_count": import_log.success_count,
        "created_count": import_log.created_count,
        "updated_count": import_log.updated_count,
        "unchanged_count": import_log.unchanged_count,
        "error_count": import_log.error_count,
    }


def _store_problems(import_log, problems):
    ImportRowError.objects.bulk_create([
        ImportRowError(import_log=import_log, row_number=number, column=column,
                       value=_as_text(value)[:MAX_STORED_VALUE], message=message)
        for number, column, value, message in problems
    ], batch_size=2000)


def _as_text(value):
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _write_rows_one_by_one(writer, rows):
    """After a chunk failed as a whole: each row in its own savepoint, so only the bad ones are lost."""
    from .writer import ChunkResult

    total = ChunkResult()
    for row in rows:
        number, values = row[0], row[1]
        try:
            with transaction.atomic():
                part = writer.write([row])
        except (IntegrityError, DataError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            total.problems.append((number, "", values[0], f"The database rejected this row: {reason}"))
            continue
        writer.remember(part.seen)  # the next rows of this chunk see it as read
        total.created += part.created
        total.updated += part.updated
        total.unchanged += part.unchanged
        total.problems.extend(part.problems)
    return total


def run_product_import(ctx):
    """The job: stream the rows, validate, and commit chunk by chunk with the checkpoint."""
    try:
        import_log = ImportLog.objects.get(pk=ctx.params["import_id"])
    except ImportLog.DoesNotExist:
        raise PermanentError(f"Import {ctx.params.get('import_id')} no longer exists.") from None
    checkpoint = ctx.checkpoint or {}
    if checkpoint.get("finished"):
        return _result(import_log)
    if not checkpoint:
        _reset_for_fresh_start(import_log)
    now = timezone.now()
    ImportLog.objects.filter(pk=import_log.pk).update(
        import_status=ImportLog.Status.PROCESSING, started_at=import_log.started_at or now, error="",
        completed_at=None, search_indexed_at=None)
    if not import_log.file or not default_storage.exists(import_log.file.name):
        raise PermanentError("The uploaded file is no longer stored on the server; upload it again.")
    try:
        table = open_table(import_log.file.path, import_log.file_format, zip_limits())
    except XlsxError as exc:
        raise PermanentError(str(exc)) from None
    try:
        try:
            found = table.header()
        except XlsxError as exc:
            raise PermanentError(str(exc)) from None
        if found is None:
            raise PermanentError("The file has no rows.")
        header_row, header = found
        matched = match_header(header, PRODUCT_COLUMNS)
        if matched.problems:
            raise PermanentError(" ".join(matched.problems))
        total = checkpoint.get("total") or import_log.total_rows or table.estimated_rows()
        if total != import_log.total_rows:
            ImportLog.objects.filter(pk=import_log.pk).update(total_rows=total)
        counts = {
            "processed": import_log.processed_rows, "created": import_log.created_count,
            "updated": import_log.updated_count, "unchanged": import_log.unchanged_count,
            "errors": import_log.error_count,
        }
        last_row = checkpoint.get("last_row", 0)
        if last_row:
            ctx.event(f"Resuming after row {last_row} ({counts['processed']} rows already imported)")
        ctx.progress(counts["processed"], total=total, message="Reading " + import_log.file_name)
        writer = ProductWriter(import_log.pk, now)
        chunk_rows = settings.IMPORTS_CHUNK_ROWS
        child = None
        if table.format == "xlsx" and _read_in_child((total or 0) - last_row):
            from dataclasses import asdict

            from .readahead import ChildReader

            try:
                child = ChildReader(import_log.file.path, table.format, asdict(zip_limits()), last_row,
                                    header_row, matched.positions, chunk_rows,
                                    readers=settings.IMPORTS_READER_PROCESSES)
            except OSError as exc:  # no interpreter to start here: read in this process instead
                log.warning("import %s: reading in this process, the reader process did not start: %s",
                            import_log.pk, exc)
        if child is not None:
            chunks = _child_chunks(child)
        else:
            chunks = _chunks(table, last_row, header_row, product_coercer(matched.positions), chunk_rows)
        gc_was_enabled = gc.isenabled()
        gc.disable()  # (measured: cyclic GC passes over the chunks' objects cost ~10% of an import)
        try:
            if last_row:  # (meanwhile the child, if any, reads the first chunk)
                _recall_committed_rows(table, header_row, matched.positions, last_row, import_log, writer)
            for chunk in chunks:
                _commit_chunk(ctx, import_log, writer, chunk, counts, total)
        finally:
            if gc_was_enabled:
                gc.enable()
            if child is not None:
                child.close()
        if child is not None and child.peak_rss_mb:
            ctx.event(f"The reader process peaked at {child.peak_rss_mb:.0f} MB")
    finally:
        table.close()
    with transaction.atomic():
        ImportLog.objects.filter(pk=import_log.pk).update(
            total_rows=counts["processed"], import_status=ImportLog.Status.COMPLETED,
            completed_at=timezone.now(), error="")
        ctx.save_checkpoint({"finished": True, "last_row": checkpoint.get("last_row", 0),
                             "total": counts["processed"]})
        import_log.refresh_from_db()
        request_search_refresh(import_log)  # with the COMPLETED status, so a crash cannot lose it
    ctx.event(f"Imported {import_log.file_name}: {import_log.created_count} created, "
              f"{import_log.updated_count} updated, {import_log.unchanged_count} unchanged, "
              f"{import_log.error_count} rejected")
    return _result(import_log)


def _chunks(table, last_row, header_row, coerce, chunk_rows):
    """The rows after `last_row`, validated, as a Chunk every `chunk_rows` rows."""
    valid, problems, rows = [], [], 0
    number = last_row
    for number, values in _readable_rows(table, last_row, header_row):
        clean, row_problems, digest = coerce(values)
        if row_problems:
            problems.extend((number, column, value, message) for column, value, message in row_problems)
        else:
            valid.append((number, clean, digest))
        rows += 1
        if rows >= chunk_rows:
            yield Chunk(valid, problems, rows, number)
            valid, problems, rows = [], [], 0
    if rows:
        yield Chunk(valid, problems, rows, number)


def _read_in_child(rows_left):
    """Read and validate in a child process (imports/readahead.py)? By default for files with at least
    IMPORTS_READ_AHEAD_MIN_ROWS rows left to read (starting the child costs ~0.1 s); the setting
    IMPORTS_READ_AHEAD (True/False) overrides."""
    wanted = settings.IMPORTS_READ_AHEAD
    if wanted is None:
        return (rows_left or 0) >= settings.IMPORTS_READ_AHEAD_MIN_ROWS
    return bool(wanted)


def _child_chunks(child):
    from .readahead import ChildFailed

    try:
        yield from child
    except ChildFailed as exc:
        if exc.kind == "died":
            raise RuntimeError(str(exc)) from None  # transient: the job is retried and resumes
        raise PermanentError(str(exc)) from None


def _recall_committed_rows(table, header_row, positions, last_row, import_log, writer):
    """Resuming after `last_row`: tell the writer which products the committed chunks already read, so a
    duplicate code after the resume is still reported. Reads only the code column of those rows; rows
    that were rejected (they have row errors) read nothing."""
    rejected = set(ImportRowError.objects.filter(import_log=import_log, row_number__lte=last_row)
                   .values_list("row_number", flat=True))
    index = positions["code"]
    code_column = PRODUCT_COLUMNS[0]
    batch = {}
    for number, values in table.rows(start_after=header_row, stop_after=last_row, only=(index,)):
        if number in rejected or index >= len(values) or values[index] is None:
            continue
        try:
            code = text(values[index], code_column)
        except ValueError:
            continue
        if code and code not in batch:
            batch[code] = number
            if len(batch) >= 10_000:
                writer.recall(batch)
                batch = {}
    writer.recall(batch)


def _commit_chunk(ctx, import_log, writer, chunk, counts, total):
    valid, problems = chunk.valid, list(chunk.problems)
    with transaction.atomic():
        try:
            with transaction.atomic():
                written = writer.write(valid)
            writer.remember(written.seen)
        except (IntegrityError, DataError) as exc:
            ctx.event(f"A chunk of {len(valid)} rows was rejected by the database ({exc.__class__.__name__}); "
                      "writing it row by row")
            written = _write_rows_one_by_one(writer, valid)
        problems.extend(written.problems)
        rejected = len({p[0] for p in problems})
        _store_problems(import_log, problems)
        ImportLog.objects.filter(pk=import_log.pk).update(
            processed_rows=F("processed_rows") + chunk.rows,
            created_count=F("created_count") + written.created,
            updated_count=F("updated_count") + written.updated,
            unchanged_count=F("unchanged_count") + written.unchanged,
            error_count=F("error_count") + rejected,
        )
        ctx.save_checkpoint({"last_row": chunk.last_row, "total": total})
    writer.committed(written.created)
    counts["processed"] += chunk.rows
    counts["created"] += written.created
    counts["updated"] += written.updated
    counts["unchanged"] += written.unchanged
    counts["errors"] += rejected
    # After the commit: a cancel request raises here, and the work so far stays.
    ctx.progress(counts["processed"], total=max(total or 0, counts["processed"]),
                 message=f"{counts['processed']} of {total} rows",
                 succeeded=counts["created"] + counts["updated"] + counts["unchanged"], failed=counts["errors"])


# -- status --------------------------------------------------------------------------------------------------
def status_from_job(import_log, job):
    """The ImportLog status the job's state implies (the job is the source of truth)."""
    current = import_log.import_status
    if job.status == JobStatus.SUCCEEDED:
        return ImportLog.Status.COMPLETED
    if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        return ImportLog.Status.FAILED
    if current == ImportLog.Status.COMPLETED:
        return current  # the handler finished; the job records its success in a moment
    if job.status == JobStatus.RUNNING:
        return ImportLog.Status.PROCESSING
    # queued or waiting: between attempts it is still in progress; before the first, pending
    return ImportLog.Status.PROCESSING if job.attempts else ImportLog.Status.PENDING


def sync_with_job(import_log, job=None):
    """Bring the ImportLog in line with its job: also when the job ended by lease expiry or a cancel,
    where the handler never got to write. Returns the (refreshed) log."""
    job = job or import_log.job
    if job is None:
        return import_log
    wanted = status_from_job(import_log, job)
    changes = {}
    if wanted != import_log.import_status:
        changes["import_status"] = wanted
    if wanted == ImportLog.Status.FAILED:
        error = job.error or ("Cancelled on request." if job.status == JobStatus.CANCELLED else "The job failed.")
        if job.status == JobStatus.CANCELLED and not error.lower().startswith("cancel"):
            error = f"Cancelled on request. {error}"
        if import_log.error != error:
            changes["error"] = error
        if import_log.completed_at is None:
            changes["completed_at"] = job.finished_at or timezone.now()
    if wanted == ImportLog.Status.COMPLETED and import_log.completed_at is None:
        changes["completed_at"] = job.finished_at or timezone.now()
    if changes:
        ImportLog.objects.filter(pk=import_log.pk).update(**changes)
        for name, value in changes.items():
            setattr(import_log, name, value)
    return import_log


@receiver(job_finished, dispatch_uid="imports_job_finished")
def _on_job_finished(sender, job, **kwargs):
    if job.kind != PRODUCT_JOB_KIND:
        return
    import_log = ImportLog.objects.filter(job_id=job.pk).first()
    if import_log is not None:
        import_log = sync_with_job(import_log, job)
        # A failed or cancelled import keeps the chunks it committed: their products need indexing too.
        request_search_refresh(import_log)


# -- the search refresh after an import ---------------------------------------------------------------------
def request_search_refresh(import_log):
    """Bring the product search up to date with an import that has ended: queue the refresh job unless
    one is already queued or running for it. Returns the job, or None when none is needed."""
    if (import_log.type != ImportLog.Type.PRODUCTS or import_log.search_indexed_at is not None
            or import_log.import_status not in (ImportLog.Status.COMPLETED, ImportLog.Status.FAILED)):
        return None
    if not import_log.processed_rows:  # it ended (or was cancelled) before committing a chunk: nothing to index
        ImportLog.objects.filter(pk=import_log.pk, search_indexed_at__isnull=True).update(
            search_indexed_at=timezone.now())
        return None
    if Job.objects.filter(kind=SEARCH_REFRESH_KIND, params__import_id=import_log.pk,
                          status__in=ACTIVE_STATUSES).exists():
        return None
    return submit(SEARCH_REFRESH_KIND, {"import_id": import_log.pk}, owner=import_log.uploaded_by)


def run_search_refresh(ctx):
    """The job: index the products changed since the import started, in batches with a checkpoint."""
    import_log = ImportLog.objects.filter(pk=ctx.params["import_id"]).first()
    if import_log is None:
        raise PermanentError(f"Import {ctx.params.get('import_id')} no longer exists.")
    if import_log.started_at is None:
        return {"import_id": import_log.pk, "indexed": 0}
    since = import_log.started_at  # every product this import wrote has updated_at >= its start
    checkpoint = ctx.checkpoint or {}
    after_id, indexed = checkpoint.get("after_id", 0), checkpoint.get("indexed", 0)
    total = checkpoint.get("total")
    if total is None:
        total = count_to_refresh(since)
    message = f"Updating the product search after {import_log.file_name}"
    ctx.progress(indexed, total=total, message=message)
    threads = _search_refresh_threads()
    while True:
        ends = batch_ends(since, after_id, settings.IMPORTS_SEARCH_REFRESH_BATCH, threads)
        if not ends:
            break
        ranges = list(zip([after_id, *ends[:-1]], ends))
        if len(ranges) == 1:
            with transaction.atomic():
                indexed += refresh_range(since, *ranges[0])
                ctx.save_checkpoint({"after_id": ends[-1], "indexed": indexed, "total": total})
        else:
            indexed += sum(_refresh_in_threads(since, ranges))
            # After every batch of the step has committed; a crash before this redoes them (the upsert
            # makes that harmless).
            ctx.save_checkpoint({"after_id": ends[-1], "indexed": indexed, "total": total})
        after_id = ends[-1]
        ctx.progress(indexed, total=max(total, indexed), message=message)
    # Not while the import runs again (a retry): its next end queues another refresh.
    ImportLog.objects.filter(pk=import_log.pk, import_status__in=(
        ImportLog.Status.COMPLETED, ImportLog.Status.FAILED)).update(search_indexed_at=timezone.now())
    return {"import_id": import_log.pk, "indexed": indexed}


def _search_refresh_threads():
    """Batches the search refresh indexes at once, each on a connection of its own. PostgreSQL only (GIN
    maintenance is CPU-bound in its backend: two batches at once took 15.8 s for 700k documents, against
    23.7 s one after the other, measured); SQLite has one writer at a time. Never inside a transaction
    (tests): the other connections could not see its products."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, settings.IMPORTS_SEARCH_REFRESH_THREADS)


def _refresh_in_threads(since, ranges):
    """Index the id ranges at once, one thread and one connection (and transaction) each."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def refresh(bounds):
        try:
            with transaction.atomic():
                return refresh_range(since, *bounds)
        finally:
            connections.close_all()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=len(ranges), thread_name_prefix="search-refresh") as pool:
        return list(pool.map(refresh, ranges))


def queue_missing_search_refreshes():
    """Imports that ended without a refresh queued (their worker was lost between the two): queue it."""
    waiting = ImportLog.objects.filter(
        type=ImportLog.Type.PRODUCTS, search_indexed_at__isnull=True,
        import_status__in=(ImportLog.Status.COMPLETED, ImportLog.Status.FAILED))
    return sum(1 for import_log in waiting if request_search_refresh(import_log) is not None)


def retry_import(import_log):
    """Run a failed product import again; it resumes after its last committed chunk."""
    import_log = sync_with_job(import_log)
    if import_log.type != ImportLog.Type.PRODUCTS:
        raise ImportNotRetryable("Dealer imports run at once; upload the file again instead.")
    if import_log.import_status != ImportLog.Status.FAILED:
        raise ImportNotRetryable(
            f"Only failed imports can be retried; this one is {import_log.import_status.lower()}.")
    if import_log.job is None:
        raise ImportNotRetryable("The job of this import has been cleaned up; upload the file again.")
    if not import_log.file or not default_storage.exists(import_log.file.name):
        raise ImportNotRetryable("The uploaded file is no longer stored on the server; upload it again.")
    with transaction.atomic():
        try:
            retry(import_log.job)
        except NotAllowed as exc:
            raise ImportNotRetryable(str(exc)) from None
        ImportLog.objects.filter(pk=import_log.pk).update(
            import_status=ImportLog.Status.PENDING, error="", completed_at=None)
    import_log.refresh_from_db()
    return import_log


def visible_imports(user):
    logs = ImportLog.objects.select_related("job", "uploaded_by")
    return logs if user.is_staff else logs.filter(uploaded_by=user)


# -- the error report ---------------------------------------------------------------------------------------
def safe_cell(value):
    """Neutralise spreadsheet formulas in user data (OWASP CSV injection): prefix with a quote."""
    text = _as_text(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def error_report_lines(import_log):
    """The row errors as CSV text lines (row, column, value, message), streamed from the database."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values):
        writer.writerow(values)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield "\ufeff" + line(["row", "column", "value", "message"])  # the BOM makes Excel read UTF-8
    errors = ImportRowError.objects.filter(import_log=import_log).order_by("row_number", "id")
    for row in errors.values_list("row_number", "column", "value", "message").iterator(chunk_size=2000):
        yield line([row[0], safe_cell(row[1]), safe_cell(row[2]), safe_cell(row[3])])


# -- dealers (synchronous) -------------------------------------------------------------------------------------
DEALER_FIELDS = tuple(c.name for c in DEALER_COLUMNS if c.name != "code")


def _dealer_digest(clean):
    data = "\x1f".join(str(clean.get(name, "")) for name in DEALER_FIELDS).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def import_dealers(uploaded, user):
    """Import a small dealer file at once; returns the ImportLog (COMPLETED) with its row errors."""
    stored = store_upload(uploaded, DEALER_COLUMNS)
    cap = settings.IMPORTS_DEALERS_MAX_ROWS
    if stored.estimated_rows and stored.estimated_rows > cap:
        default_storage.delete(stored.name)
        raise UploadRejected([f"The file has about {stored.estimated_rows} dealer rows; at most {cap} are "
                              "imported at once. Split it into smaller files."], stored.warnings)
    import_log = ImportLog.objects.create(
        type=ImportLog.Type.DEALERS, file=stored.name, file_name=stored.original_name,
        file_format=stored.file_format, file_size=stored.size, sha256=stored.sha256,
        uploaded_by=user if user is not None and user.is_authenticated else None,
        import_status=ImportLog.Status.PROCESSING, started_at=timezone.now(), warnings=stored.warnings,
    )
    try:
        _import_dealer_rows(import_log, stored, cap)
    except UploadRejected as exc:
        ImportLog.objects.filter(pk=import_log.pk).update(
            import_status=ImportLog.Status.FAILED, error=" ".join(exc.problems), completed_at=timezone.now())
        raise
    except Exception as exc:
        log.exception("dealer import %s failed", import_log.pk)
        ImportLog.objects.filter(pk=import_log.pk).update(
            import_status=ImportLog.Status.FAILED, error=f"{exc.__class__.__name__}: {exc}",
            completed_at=timezone.now())
        raise
    finally:
        default_storage.delete(stored.name)  # nothing runs later from a synchronous import's file
        ImportLog.objects.filter(pk=import_log.pk).update(file="")
    import_log.refresh_from_db()
    return import_log


def _import_dealer_rows(import_log, stored, cap):
    table = open_table(stored.path, stored.file_format, zip_limits())
    seen = {}
    problems = []
    counts = {"processed": 0, "created": 0, "updated": 0, "unchanged": 0}
    rejected = set()
    try:
        rows = []
        try:
            for number, values in table.rows(start_after=stored.header_row):
                rows.append((number, values))
                if len(rows) > cap:
                    raise UploadRejected([f"The file has more than {cap} dealer rows; at most {cap} are "
                                          "imported at once. Split it into smaller files."])
        except XlsxError as exc:
            raise UploadRejected([str(exc)]) from None
    finally:
        table.close()
    with transaction.atomic():
        existing = Dealer.objects.in_bulk(
            [str(values[stored.positions["code"]]).strip() for _, values in rows
             if stored.positions["code"] < len(values) and values[stored.positions["code"]] is not None],
            field_name="code",
        )
        for number, values in rows:
            counts["processed"] += 1
            clean, row_problems = coerce_row(values, stored.positions, DEALER_COLUMNS)
            if not row_problems and clean["code"] in seen:
                row_problems = [("code", clean["code"], f"Duplicate code '{clean['code']}': row "
                                 f"{seen[clean['code']]} already has it; only the first row with a code is imported")]
            if row_problems:
                rejected.add(number)
                problems.extend((number, c, v, m) for c, v, m in row_problems)
                continue
            seen[clean["code"]] = number
            digest = _dealer_digest(clean)
            dealer = existing.get(clean["code"])
            if dealer is not None and dealer.row_hash == digest:
                counts["unchanged"] += 1
                continue
            try:
                with transaction.atomic():
                    if dealer is None:
                        Dealer.objects.create(row_hash=digest, last_import=import_log, **clean)
                        counts["created"] += 1
                    else:
                        for name in DEALER_FIELDS:
                            setattr(dealer, name, clean[name])
                        dealer.row_hash, dealer.last_import = digest, import_log
                        dealer.save()
                        counts["updated"] += 1
            except (IntegrityError, DataError) as exc:
                rejected.add(number)
                problems.append((number, "", clean["code"], f"The database rejected this row: {exc}"))
        _store_problems(import_log, problems)
        ImportLog.objects.filter(pk=import_log.pk).update(
            total_rows=counts["processed"], processed_rows=counts["processed"],
            created_count=counts["created"], updated_count=counts["updated"],
            unchanged_count=counts["unchanged"], error_count=len(rejected),
            import_status=ImportLog.Status.COMPLETED, completed_at=timezone.now(),
        )


# -- files ----------------------------------------------------------------------------------------------------
@receiver(pre_delete, sender=Job, dispatch_uid="imports_job_deleted")
def _delete_file_with_job(sender, instance, **kwargs):
    """queueapp's cleanup deletes old finished jobs: the stored upload goes with its job (the ImportLog,
    its counts and row errors stay)."""
    for import_log in ImportLog.objects.filter(job_id=instance.pk).exclude(file=""):
        default_storage.delete(import_log.file.name)
        ImportLog.objects.filter(pk=import_log.pk).update(file="")

