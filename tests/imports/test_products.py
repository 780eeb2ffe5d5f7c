"""Product imports through the API: the checks before the job, the job, status, errors, re-import,
history, retry, resumption, search, permissions."""

import csv
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase

from imports import services
from imports.models import ImportLog, ImportRowError, PriceRecord, Product, StockRecord
from imports.writer import ProductWriter
from queueapp import runner
from queueapp.engine import Job, JobStatus, PermanentError
from tests.imports import files

pytestmark = pytest.mark.django_db


def start(api, data, name="products.xlsx"):
    return api.post("/api/imports/products", {"file": files.upload(data, name)}, format="multipart")


def run(import_id, search=True):
    """Run the import's job here, then (unless search=False) the search refresh it queued."""
    log = ImportLog.objects.get(pk=import_id)
    Job.objects.filter(pk=log.job_id, status=JobStatus.WAITING).update(status=JobStatus.QUEUED, run_after=None)
    with TestCase.captureOnCommitCallbacks(execute=True):  # job_finished is sent on commit
        runner.run_job(log.job_id)
    if search:
        refresh_search()
    return log


def refresh_search():
    for job in Job.objects.filter(kind=services.SEARCH_REFRESH_KIND, status=JobStatus.QUEUED):
        runner.run_job(job.pk)


def import_file(api, data, name="products.xlsx", search=True):
    response = start(api, data, name)
    assert response.status_code == 202, response.data
    run(response.data["import_id"], search=search)
    return api.get(f"/api/imports/{response.data['import_id']}").data


def test_upload_answers_202_and_the_job_imports_every_row(api, settings):
    settings.IMPORTS_CHUNK_ROWS = 40
    response = start(api, files.xlsx_bytes(files.product_rows(100)))
    assert response.status_code == 202
    body = response.data
    assert body["message"] == "Product import started in background"
    assert body["status_url"].endswith(f"/api/imports/{body['import_id']}")
    assert body["job_status_url"].endswith(f"/api/jobs/{body['job_id']}/status")
    pending = api.get(f"/api/imports/{body['import_id']}").data
    assert pending["status"] == "pending" and pending["import_status"] == "PENDING"
    assert pending["progress"] == {"current": 0, "total": 100, "percentage": 0}

    run(body["import_id"])
    status = api.get(f"/api/imports/{body['import_id']}").data
    assert status["status"] == "completed"
    assert status["progress"] == {"current": 100, "total": 100, "percentage": 100}
    assert status["results"] == {"total_rows": 100, "success_count": 100, "created_count": 100,
                                 "updated_count": 0, "unchanged_count": 0, "error_count": 0}
    assert status["started_at"] and status["completed_at"] and status["error"] == ""
    job = api.get(body["job_status_url"]).data
    assert job["status"] == "succeeded" and job["percentage"] == 100 and job["succeeded_count"] == 100
    assert api.get(f"/api/jobs/{body['job_id']}/result").data["result"]["created_count"] == 100

    product = Product.objects.get(code="SKU-00007")
    assert (product.name, product.brand, str(product.price), product.stock, product.barcode) == (
        "Product 7 drill", "Brand 1", "11.75", 7, "4000000000007")
    assert PriceRecord.objects.count() == 100 and StockRecord.objects.count() == 100
    # A new product's first records: its price and stock, from this import, open.
    price, stock = PriceRecord.objects.get(product=product), StockRecord.objects.get(product=product)
    assert (str(price.price), price.valid_to, price.import_log_id) == ("11.75", None, body["import_id"])
    assert (stock.quantity, stock.valid_to, stock.import_log_id) == (7, None, body["import_id"])
    assert price.valid_from == stock.valid_from == product.created_at


def test_csv_upload_with_semicolons_and_messy_headers(api):
    data = files.csv_bytes(files.product_rows(5), headers=[" CODE ", "name", "Brand", "category", "Description",
                                                           "PRICE", "Qty", "EAN"], delimiter=";")
    status = import_file(api, data, "products.csv")
    assert status["results"]["created_count"] == 5
    assert Product.objects.get(code="SKU-00003").stock == 3


def test_reimport_of_the_same_file_changes_nothing(api):
    data = files.xlsx_bytes(files.product_rows(30))
    import_file(api, data)
    before = (PriceRecord.objects.count(), StockRecord.objects.count(),
              list(Product.objects.order_by("id").values_list("updated_at", flat=True)))
    status = import_file(api, data)
    assert status["results"]["unchanged_count"] == 30
    assert status["results"]["created_count"] == status["results"]["updated_count"] == 0
    after = (PriceRecord.objects.count(), StockRecord.objects.count(),
             list(Product.objects.order_by("id").values_list("updated_at", flat=True)))
    assert after == before


def test_a_changed_price_closes_the_old_record_and_opens_a_new_one(api):
    import_file(api, files.xlsx_bytes(files.product_rows(3)))
    rows = files.product_rows(3)
    rows[1][5] = 99.99  # price of SKU-00001 changes; its stock does not
    rows[2][1] = "Renamed"  # a name change: updated, but no history record
    status = import_file(api, files.xlsx_bytes(rows))
    assert status["results"]["updated_count"] == 2 and status["results"]["unchanged_count"] == 1
    changed = Product.objects.get(code="SKU-00001")
    history = list(changed.price_history.order_by("valid_from", "id").values_list("price", "valid_to"))
    assert [str(p) for p, _ in history] == ["10.25", "99.99"]
    assert history[0][1] is not None and history[1][1] is None
    assert changed.stock_history.count() == 1
    assert Product.objects.get(code="SKU-00002").price_history.count() == 1
    assert str(changed.price) == "99.99"
    later = ImportLog.objects.order_by("-id").first()
    assert PriceRecord.objects.filter(import_log=later).count() == 1


def test_history_keeps_its_integrity_without_database_foreign_keys(api, settings):
    settings.IMPORTS_CHUNK_ROWS = 4
    import_file(api, files.xlsx_bytes(files.product_rows(10)))
    changed = files.product_rows(12, price=50)  # every price changes, two products are new
    import_file(api, files.xlsx_bytes(changed))
    first, second = ImportLog.objects.order_by("id")
    products = Product.objects.values("id")
    for model in (PriceRecord, StockRecord):
        assert not model.objects.exclude(product_id__in=products).exists()
        open_records = model.objects.filter(valid_to__isnull=True)
        assert open_records.count() == 12 and open_records.values("product").distinct().count() == 12
    assert PriceRecord.objects.filter(import_log=first).count() == 10
    assert PriceRecord.objects.filter(import_log=second).count() == 12
    assert StockRecord.objects.filter(import_log=second).count() == 2  # stock changed only for the new ones

    product = Product.objects.get(code="SKU-00003")
    product.delete()  # Django cascades: no database constraint does it for us
    assert not PriceRecord.objects.filter(product_id=product.pk).exists()
    assert not StockRecord.objects.filter(product_id=product.pk).exists()
    first.delete()
    assert PriceRecord.objects.filter(import_log__isnull=True).count() == 9
    assert StockRecord.objects.filter(import_log__isnull=True).count() == 9


@pytest.mark.parametrize("after", ["existing products", "SELECT id, price, stock"])
def test_a_product_deleted_while_its_chunk_is_written_gets_no_orphan_history(api, settings, monkeypatch, after):
    settings.IMPORTS_CHUNK_ROWS = 10
    settings.IMPORTS_READ_AHEAD = False  # the patch below reaches this process only
    import_file(api, files.xlsx_bytes(files.product_rows(5)))
    real_existing, real_select = ProductWriter._existing, ProductWriter._select_in
    deleted = []

    def delete_once(cursor):
        # Between the chunk's SELECTs and its UPDATE the product goes (here in the same transaction, so
        # the chunk's savepoint brings it back before the row-by-row pass).
        if not deleted:
            pk = Product.objects.get(code="SKU-00002").pk
            cursor.execute("DELETE FROM imports_product WHERE id = %s", [pk])
            deleted.append(pk)

    def existing_then_delete(self, cursor, codes):
        found = real_existing(self, cursor, codes)
        if after == "existing products":
            delete_once(cursor)
        return found

    def select_then_delete(self, cursor, sql, column, values):
        rows = list(real_select(self, cursor, sql, column, values))
        if sql.startswith(after):
            delete_once(cursor)
        return iter(rows)

    monkeypatch.setattr(ProductWriter, "_existing", existing_then_delete)
    monkeypatch.setattr(ProductWriter, "_select_in", select_then_delete)
    status = import_file(api, files.xlsx_bytes(files.product_rows(5, price=70)))
    assert deleted
    assert status["status"] == "completed" and status["results"]["updated_count"] == 5
    assert any("row by row" in e.message for e in ImportLog.objects.get(pk=status["import_id"]).job.events.all())
    assert not PriceRecord.objects.exclude(product_id__in=Product.objects.values("id")).exists()
    assert PriceRecord.objects.filter(valid_to__isnull=True, price=70).count() == 5


def test_postgresql_statistics_follow_a_growing_catalogue(api, settings, monkeypatch):
    from django.db import connection

    from imports import writer

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's planner statistics")
    settings.IMPORTS_CHUNK_ROWS = 10
    monkeypatch.setattr(writer, "ANALYZE_AFTER_ROWS", 10)
    import_file(api, files.xlsx_bytes(files.product_rows(25)))
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'imports_product'::regclass")
        # Analyzed when the table reached 10 and 20 products (each time it had doubled), not at 25.
        assert cursor.fetchone()[0] == 20
    import_file(api, files.xlsx_bytes(files.product_rows(25)))  # a re-import creates nothing: no ANALYZE
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'imports_product'::regclass")
        assert cursor.fetchone()[0] == 20


def test_existing_products_are_found_by_their_stretch_of_codes_or_one_by_one(api):
    """A chunk's products are read as the stretch of codes between its first and last code while that
    stretch holds at most twice the chunk's codes; an unsorted chunk switches to looking codes up one by
    one, for the rest of the import. Either way exactly the existing codes are found."""
    from django.db import connection, transaction
    from django.utils import timezone

    import_file(api, files.xlsx_bytes(files.product_rows(40)))
    products = {p.code: (p.pk, p.row_hash) for p in Product.objects.all()}
    writer = ProductWriter(None, timezone.now())
    with transaction.atomic(), connection.cursor() as cursor:
        # Sorted, with codes that are not products yet inside the stretch: 10 products in the stretch.
        codes = {f"SKU-{i:05d}": 0 for i in range(10, 20)} | {"SKU-00012x": 0, "SKU-0001": 0}
        assert writer._existing(cursor, codes) == {code: products[code] for code in codes if code in products}
        assert writer._by_range
        # Five codes spread over all 40 products: the stretch is too long.
        codes = {f"SKU-{i:05d}": 0 for i in (3, 39, 17, 25, 8)} | {"SKU-99999": 0}
        assert writer._existing(cursor, codes) == {code: products[code] for code in codes if code in products}
        assert not writer._by_range
        codes = {f"SKU-{i:05d}": 0 for i in range(20, 24)}
        assert writer._existing(cursor, codes) == {code: products[code] for code in codes}


def test_the_rows_an_import_wrote_are_found_by_its_index(api):
    """The history's import index (BRIN on PostgreSQL) finds what an import wrote, and deleting the
    import keeps the history without it."""
    from django.db import connection

    first = import_file(api, files.xlsx_bytes(files.product_rows(30)))["import_id"]
    second = import_file(api, files.xlsx_bytes(files.product_rows(30, price=99)))["import_id"]
    assert PriceRecord.objects.filter(import_log_id=first).count() == 30
    assert PriceRecord.objects.filter(import_log_id=second).count() == 30
    assert StockRecord.objects.filter(import_log_id=second).count() == 0  # the stock did not change
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname IN "
                           "('pricerecord_import_log', 'stockrecord_import_log')")
            assert [row[0].split(" USING ")[1].split(" ")[0] for row in cursor.fetchall()] == ["brin", "brin"]
    ImportLog.objects.filter(pk=first).delete()
    assert PriceRecord.objects.count() == 60 and PriceRecord.objects.filter(import_log__isnull=True).count() == 30
    assert StockRecord.objects.filter(import_log__isnull=True).count() == 30


def test_bad_rows_and_duplicate_codes_are_rejected_and_reported(api, settings):
    settings.IMPORTS_CHUNK_ROWS = 3  # the duplicates fall in different chunks too
    rows = files.product_rows(6)
    rows[1][5] = "abc"  # price not a number
    rows[2][6] = -4  # negative stock
    rows[3][0] = None  # code missing
    rows.append(["SKU-00000", "Again", "", "", "", 5, 1, None])  # duplicate of row 2, another chunk
    rows.append(["SKU-00005", "Twice", "", "", "", 5, 1, None])  # duplicate within the chunk
    rows.append(["=HYPERLINK(\"x\")", "Formula", "", "", "", "1,5", 2.5, "12"])  # injection + 3 problems
    status = import_file(api, files.xlsx_bytes(rows))
    assert status["results"]["error_count"] == 6
    assert status["results"]["created_count"] == 3
    assert status["results"]["total_rows"] == 9
    errors = {(e.row_number, e.column): e.message for e in ImportRowError.objects.all()}
    assert "price is not a number" in errors[(3, "price")]
    assert "negative" in errors[(4, "stock")]
    assert errors[(5, "code")] == "code is required"
    assert "row 2 already has it" in errors[(8, "code")]
    assert "row 7 already has it" in errors[(9, "code")]
    assert "decimal separator" in errors[(10, "price")] and "whole number" in errors[(10, "stock")]
    assert "8 to 14 digits" in errors[(10, "barcode")]
    assert Product.objects.get(code="SKU-00000").name == "Product 0 drill"

    response = api.get(f"/api/imports/{status['import_id']}/errors.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["row", "column", "value", "message"]
    assert len(table) == 1 + len(errors)
    injected = [r for r in table if r[0] == "10" and r[1] == "price"]
    assert injected and injected[0][2] == "1,5"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in table for cell in row)


def test_formula_injection_is_neutralised_in_the_error_report(api):
    rows = [["=cmd|' /C calc'!A0", "x", "", "", "", "-1", 1, None], ["@SUM(A1)", "", "", "", "", 1, 1, None]]
    status = import_file(api, files.xlsx_bytes(rows))
    text = b"".join(api.get(f"/api/imports/{status['import_id']}/errors.csv").streaming_content).decode("utf-8-sig")
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert "-1" not in cells and "'-1" in cells
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)


@pytest.mark.parametrize("name,data,expected", [
    ("products.txt", b"Code,Name\n", "is not an .xlsx or .csv file"),
    ("products.xlsx", b"this is not a zip file at all", "not a zip archive"),
    ("products.xlsx", b"", "The file is empty"),
    ("products.csv", b"", "The file is empty"),
    ("products.csv", b"PK\x03\x04binary", "zip archive"),
    ("products.csv", b"Code,Name\x00\x01", "binary data"),
])
def test_bad_files_answer_400_before_any_job(api, name, data, expected):
    response = start(api, data, name)
    assert response.status_code == 400
    assert any(expected in problem for problem in response.data["file"]), response.data
    assert not Job.objects.exists() and not ImportLog.objects.exists()


def test_zip_bomb_and_entities_answer_400(api):
    for data, expected in ((files.zip_bomb(), "zip bomb"), (files.with_entities(), "DTD or XML entities"),
                           (files.with_entities("xl/workbook.xml"), "DTD or XML entities")):
        response = start(api, data)
        assert response.status_code == 400
        assert expected in " ".join(response.data["file"])
    assert not Job.objects.exists()


def test_missing_headers_are_listed_and_unknown_columns_warned(api):
    data = files.xlsx_bytes([["A", "x"]], headers=["Code", "Colour"])
    response = start(api, data)
    assert response.status_code == 400
    problem = " ".join(response.data["file"])
    assert "missing: name, price, stock" in problem and "'Colour'" in problem
    assert response.data["warnings"] == ["Unknown column 'Colour' is ignored."]

    ok = start(api, files.xlsx_bytes(files.product_rows(1), headers=files.HEADERS + ["Colour"]))
    assert ok.status_code == 202 and ok.data["warnings"] == ["Unknown column 'Colour' is ignored."]


def test_oversize_file_and_missing_field(api, settings):
    settings.IMPORTS_MAX_UPLOAD_BYTES = 1000
    response = start(api, files.xlsx_bytes(files.product_rows(50)))
    assert response.status_code == 400 and "the limit is" in response.data["file"][0]
    missing = api.post("/api/imports/products", {}, format="multipart")
    assert missing.status_code == 400 and "file" in missing.data


def test_a_chunk_the_database_rejects_is_redone_row_by_row(api, settings, monkeypatch):
    settings.IMPORTS_CHUNK_ROWS = 10
    settings.IMPORTS_READ_AHEAD = False  # the patch below reaches this process only
    real = services.product_coercer

    def let_a_negative_price_through(positions):
        coerce = real(positions)

        def coerce_and_spoil(values):
            clean, problems, digest = coerce(values)
            if clean[0] == "SKU-00004":
                # as if validation had missed it: the CHECK constraint catches it
                clean = (*clean[:5], "-1.00", *clean[6:])
            return clean, problems, digest
        return coerce_and_spoil

    monkeypatch.setattr(services, "product_coercer", let_a_negative_price_through)
    status = import_file(api, files.xlsx_bytes(files.product_rows(20)))
    assert status["status"] == "completed"
    assert status["results"]["created_count"] == 19 and status["results"]["error_count"] == 1
    error = ImportRowError.objects.get()
    assert error.row_number == 6 and "database rejected" in error.message
    assert Product.objects.count() == 19 and PriceRecord.objects.count() == 19
    job = Job.objects.get(kind=services.PRODUCT_JOB_KIND)
    assert any("row by row" in e.message for e in job.events.all())


def test_a_failed_import_is_retried_from_the_api_and_resumes(api, settings, monkeypatch):
    settings.IMPORTS_CHUNK_ROWS = 10
    real_write = ProductWriter.write
    calls = {"n": 0}

    def fail_on_third_chunk(self, rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise PermanentError("Database connection failed")
        return real_write(self, rows)

    monkeypatch.setattr(ProductWriter, "write", fail_on_third_chunk)
    response = start(api, files.xlsx_bytes(files.product_rows(45)))
    import_id = response.data["import_id"]
    run(import_id, search=False)
    failed = api.get(f"/api/imports/{import_id}").data
    assert failed["status"] == "failed" and failed["error"] == "Database connection failed"
    assert failed["progress"]["current"] == 20 and failed["completed_at"]
    assert Product.objects.count() == 20
    # The chunks it committed are searchable once the refresh its failure queued has run.
    assert failed["search_index"]["status"] == "updating"
    refresh_search()
    assert api.get(f"/api/imports/{import_id}").data["search_index"]["status"] == "current"
    found = api.get("/api/products/", {"search": "product 19"}).data["results"]
    assert [p["code"] for p in found] == ["SKU-00019"]

    monkeypatch.setattr(ProductWriter, "write", real_write)
    retried = api.post(f"/api/imports/{import_id}/retry")
    assert retried.status_code == 202 and retried.data["status"] == "pending"
    run(import_id)
    done = api.get(f"/api/imports/{import_id}").data
    assert done["status"] == "completed"
    assert done["results"]["created_count"] == 45 and done["results"]["total_rows"] == 45
    assert Product.objects.count() == 45 and PriceRecord.objects.count() == 45
    assert any("Resuming after row 21" in e.message for e in Job.objects.get(kind=services.PRODUCT_JOB_KIND).events.all())
    assert done["search_index"]["status"] == "current"
    assert [p["code"] for p in api.get("/api/products/", {"search": "product 44"}).data["results"]] == ["SKU-00044"]
    again = api.post(f"/api/imports/{import_id}/retry")
    assert again.status_code == 409 and "Only failed imports" in again.data["detail"]


def test_a_transient_failure_resumes_from_the_last_committed_chunk_with_exact_counts(api, settings, monkeypatch):
    settings.IMPORTS_CHUNK_ROWS = 7
    real_write = ProductWriter.write
    state = {"chunks": 0}

    def crash_once(self, rows):
        state["chunks"] += 1
        result = real_write(self, rows)
        if state["chunks"] == 3:
            raise RuntimeError("worker lost")  # after writing: the chunk's transaction rolls back
        return result

    monkeypatch.setattr(ProductWriter, "write", crash_once)
    rows = files.product_rows(30) + [["SKU-00001", "dup", "", "", "", 1, 1, None]]
    response = start(api, files.xlsx_bytes(rows))
    log = run(response.data["import_id"])
    job = Job.objects.get(pk=log.job_id)
    assert job.status == JobStatus.WAITING and job.checkpoint == {"last_row": 15, "total": 31}
    run(log.pk)
    log.refresh_from_db()
    assert log.import_status == ImportLog.Status.COMPLETED
    assert (log.processed_rows, log.created_count, log.error_count) == (31, 30, 1)
    assert Product.objects.count() == 30 and PriceRecord.objects.count() == 30 and StockRecord.objects.count() == 30


def test_cancelled_or_lost_jobs_show_as_failed(api, django_capture_on_commit_callbacks):
    response = start(api, files.xlsx_bytes(files.product_rows(3)))
    log = ImportLog.objects.get(pk=response.data["import_id"])
    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"/api/jobs/{log.job_id}/cancel")
    log.refresh_from_db()  # the job_finished signal updated it
    assert log.import_status == ImportLog.Status.FAILED and log.error.startswith("Cancelled")
    status = api.get(f"/api/imports/{log.pk}").data
    # It never ran, so it wrote nothing: the search has nothing to catch up with (and --wait must end).
    assert status["status"] == "failed" and status["search_index"]["status"] == "current"
    assert not Job.objects.filter(kind=services.SEARCH_REFRESH_KIND).exists()


def test_search_finds_imported_products_by_code_name_and_brand(api):
    rows = files.product_rows(5)
    rows[2][1], rows[2][2] = "Cordless Hammer Drill", "Makita"
    by = lambda q: [p["code"] for p in api.get("/api/products/", {"search": q}).data["results"]]  # noqa: E731
    status = import_file(api, files.xlsx_bytes(rows), search=False)
    # Like the seed's sync to TypeSense: the search is updated by a job of its own once the import ends.
    assert status["status"] == "completed" and status["search_index"] == {"status": "updating", "indexed_at": None}
    assert by("makita") == [] and by("SKU-00004") == ["SKU-00004"]  # (an exact code needs no index)
    refresh = Job.objects.get(kind=services.SEARCH_REFRESH_KIND)
    assert refresh.params == {"import_id": status["import_id"]} and refresh.owner.username == "seller"
    refresh_search()
    status = api.get(status["status_url"]).data
    assert status["search_index"]["status"] == "current" and status["search_index"]["indexed_at"]
    assert Job.objects.get(pk=refresh.pk).result == {"import_id": status["import_id"], "indexed": 5}
    assert by("makita") == ["SKU-00002"]
    assert by("hammer dri") == ["SKU-00002"]
    assert by("SKU-00004") == ["SKU-00004"]
    assert by("brand 1") == ["SKU-00001", "SKU-00004"]
    assert by('"*) OR (') == []
    rows[2][1] = "Impact Wrench"
    import_file(api, files.xlsx_bytes(rows))
    assert by("hammer") == [] and by("wrench") == ["SKU-00002"]
    detail = api.get("/api/products/SKU-00002/").data
    assert detail["name"] == "Impact Wrench" and len(detail["price_history"]) == 1


@pytest.mark.django_db(transaction=True)
def test_the_search_refresh_indexes_several_batches_at_once_on_postgresql(api, settings, monkeypatch):
    """Outside a transaction, on PostgreSQL, the refresh indexes IMPORTS_SEARCH_REFRESH_THREADS batches at
    once, each on a connection of its own, and checkpoints after each step; on SQLite (one writer) it
    indexes one batch after the other. Either way every product is found."""
    import threading

    from django.db import connection
    from django.db.models import Max

    settings.IMPORTS_SEARCH_REFRESH_BATCH = 7
    settings.IMPORTS_SEARCH_REFRESH_THREADS = 3
    real_refresh_range = services.refresh_range
    calls = []

    def spy(since, after_id, last_id):
        calls.append((after_id, last_id, threading.current_thread().name))
        return real_refresh_range(since, after_id, last_id)

    monkeypatch.setattr(services, "refresh_range", spy)
    status = import_file(api, files.xlsx_bytes(files.product_rows(40)))
    refresh = Job.objects.get(kind=services.SEARCH_REFRESH_KIND)
    assert refresh.result == {"import_id": status["import_id"], "indexed": 40}
    last_id = Product.objects.aggregate(Max("id"))["id__max"]
    assert refresh.checkpoint["after_id"] == last_id
    # 40 products in batches of 7: six ranges, back to back, from before the first id to the last.
    ranges = sorted((after_id, upto) for after_id, upto, _ in calls)
    assert len(ranges) == 6 and ranges[0][0] == 0 and ranges[-1][1] == last_id
    assert all(previous[1] == following[0] for previous, following in zip(ranges, ranges[1:]))
    in_threads = [name for _, _, name in calls if name.startswith("search-refresh")]
    assert len(in_threads) == (6 if connection.vendor == "postgresql" else 0)
    found = api.get("/api/products/", {"search": "drill"}).data
    assert found["count"] == 40
    assert api.get(status["status_url"]).data["search_index"]["status"] == "current"


def test_single_edits_are_searchable_at_once_and_deleted_products_leave_the_index(api):
    import_file(api, files.xlsx_bytes(files.product_rows(3)))
    by = lambda q: [p["code"] for p in api.get("/api/products/", {"search": q}).data["results"]]  # noqa: E731
    product = Product.objects.get(code="SKU-00001")
    product.name, product.brand = "Angle Grinder", "Hilti"
    product.save()
    assert by("grind hilt") == ["SKU-00001"] and by("product 1") == []
    product.delete()
    assert by("grinder") == []
    Product.objects.create(code="NEW-1", name="Laser level", brand="Bosch", price=5, stock=1)
    assert by("laser") == ["NEW-1"]


def test_a_refresh_lost_with_its_worker_is_queued_again_by_the_sweep(api):
    status = import_file(api, files.xlsx_bytes(files.product_rows(4)), search=False)
    Job.objects.filter(kind=services.SEARCH_REFRESH_KIND).delete()  # as if never queued
    assert services.queue_missing_search_refreshes() == 1
    assert services.queue_missing_search_refreshes() == 0  # one is queued already
    refresh_search()
    assert api.get(status["status_url"]).data["search_index"]["status"] == "current"
    assert services.queue_missing_search_refreshes() == 0


def test_an_import_that_failed_before_writing_needs_no_refresh(api):
    response = start(api, files.xlsx_bytes(files.product_rows(2)))
    log = ImportLog.objects.get(pk=response.data["import_id"])
    log.file.storage.delete(log.file.name)  # the job finds no file and fails at once
    run(log.pk, search=False)
    status = api.get(response.data["status_url"]).data
    assert status["status"] == "failed" and status["search_index"]["status"] == "current"
    assert not Job.objects.filter(kind=services.SEARCH_REFRESH_KIND).exists()


def test_search_refresh_of_a_deleted_import_fails_with_the_reason(api):
    status = import_file(api, files.xlsx_bytes(files.product_rows(2)), search=False)
    ImportLog.objects.filter(pk=status["import_id"]).delete()
    job = Job.objects.get(kind=services.SEARCH_REFRESH_KIND)
    runner.run_job(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error == f"Import {status['import_id']} no longer exists."


def test_other_users_cannot_see_an_import_staff_can(api, other_api, staff_api):
    response = start(api, files.xlsx_bytes(files.product_rows(2)))
    import_id = response.data["import_id"]
    for path in (f"/api/imports/{import_id}", f"/api/imports/{import_id}/errors.csv"):
        assert other_api.get(path).status_code == 404
        assert staff_api.get(path).status_code == 200
    assert other_api.post(f"/api/imports/{import_id}/retry").status_code == 404
    assert [i["import_id"] for i in other_api.get("/api/imports/").data["results"]] == []
    assert [i["import_id"] for i in api.get("/api/imports/").data["results"]] == [import_id]


def test_anonymous_requests_are_refused(client):
    assert client.post("/api/imports/products").status_code in (401, 403)
    assert client.get("/api/products/").status_code in (401, 403)


def test_import_products_command(tmp_path, user, monkeypatch, capsys):
    path = tmp_path / "products.xlsx"
    path.write_bytes(files.xlsx_bytes(files.product_rows(12)))
    from imports.management.commands import import_products

    # --wait follows the job; a worker would run it: here the first pause runs it in-process.
    def run_pending(seconds):
        for job in Job.objects.filter(status=JobStatus.QUEUED):
            runner.run_job(job.pk)

    monkeypatch.setattr(import_products.time, "sleep", run_pending)
    out = io.StringIO()
    call_command("import_products", str(path), "--wait", "--user", user.username, stdout=out)
    text = out.getvalue()
    assert "100%" in text and "COMPLETED: 12 rows, 12 created" in text
    assert text.rstrip().endswith("The product search is up to date.")
    assert ImportLog.objects.get().uploaded_by == user and ImportLog.objects.get().search_indexed_at

    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"nope")
    with pytest.raises(CommandError, match="not a zip archive"):
        call_command("import_products", str(bad))


def test_admin_lists_imports_with_errors_inline_and_retries(api, staff_user, client, settings, monkeypatch):
    rows = files.product_rows(3)
    rows[0][5] = "bad"
    status = import_file(api, files.xlsx_bytes(rows))
    client.force_login(staff_user)
    listing = client.get("/admin/imports/importlog/")
    assert listing.status_code == 200 and b"products.xlsx" in listing.content
    page = client.get(f"/admin/imports/importlog/{status['import_id']}/change/")
    assert page.status_code == 200
    assert b"price is not a number" in page.content and b"/admin/queueapp/job/" in page.content

    log = ImportLog.objects.get(pk=status["import_id"])
    Job.objects.filter(pk=log.job_id).update(status=JobStatus.FAILED, error="boom")
    response = client.post("/admin/imports/importlog/", {"action": "retry_imports", "_selected_action": [log.pk]},
                           follow=True)
    assert b"queued again" in response.content
    assert Job.objects.get(pk=log.job_id).status == JobStatus.QUEUED
    assert client.get("/admin/imports/product/").status_code == 200
