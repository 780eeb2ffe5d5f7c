"""The fast paths of product imports keep their promises: duplicate codes are found by product id (no
hash can turn a row into a false duplicate), across chunks and after a resume, in-process and with the
child-process reader; a re-import writes nothing; the seen-products table is exact."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from imports import columns, services
from imports.models import ImportLog, ImportRowError, PriceRecord, Product, StockRecord
from imports.writer import ProductWriter, SeenProducts
from queueapp.engine import Job, JobStatus
from tests.imports import files
from tests.imports.test_products import import_file, run, start

pytestmark = pytest.mark.django_db


def test_seen_products_is_exact_first_row_wins_and_pages_are_sparse():
    seen = SeenProducts()
    assert seen.get(5) == 0
    seen.add(5, 12)
    seen.add(5, 99)  # a later row never replaces the first
    seen.add(10_000_000, 3)  # far away: its own page, nothing in between is allocated
    assert (seen.get(5), seen.get(6), seen.get(10_000_000), len(seen)) == (12, 0, 3, 2)
    assert seen.nbytes() == 2 * 4 * SeenProducts.PAGE


@pytest.mark.parametrize("child", [False, True], ids=["in-process", "child-process"])
def test_duplicates_across_chunks_and_after_a_resume_are_reported_exactly(api, settings, monkeypatch, child):
    settings.IMPORTS_CHUNK_ROWS = 4
    settings.IMPORTS_READ_AHEAD = child
    real_write = ProductWriter.write
    state = {"chunks": 0}

    def crash_once(self, rows):
        state["chunks"] += 1
        result = real_write(self, rows)
        if state["chunks"] == 3:
            raise RuntimeError("worker lost")  # the third chunk rolls back; the job resumes after row 9
        return result

    monkeypatch.setattr(ProductWriter, "write", crash_once)
    rows = files.product_rows(12)
    rows[1][5] = "abc"  # row 3 rejected: its code SKU-00001 is free for a later row
    rows += [["SKU-00001", "second try", "", "", "", 1, 1, None],  # row 14: imported (row 3 was rejected)
             ["SKU-00003", "dup", "", "", "", 1, 1, None],  # row 15: duplicate of row 5 (before the resume)
             ["SKU-00010", "dup", "", "", "", 1, 1, None],  # row 16: duplicate of row 12 (after it)
             ["SKU-00001", "third", "", "", "", 1, 1, None]]  # row 17: duplicate of row 14
    response = start(api, files.with_shared_strings(files.xlsx_bytes(rows))[0])
    log = run(response.data["import_id"])
    assert Job.objects.get(pk=log.job_id).checkpoint["last_row"] == 9
    run(log.pk)
    log.refresh_from_db()
    assert log.import_status == ImportLog.Status.COMPLETED
    assert (log.processed_rows, log.created_count, log.updated_count, log.unchanged_count, log.error_count) == \
        (16, 12, 0, 0, 4)
    errors = {e.row_number: e.message for e in ImportRowError.objects.filter(import_log=log)}
    assert "price is not a number" in errors[3]
    assert "row 5 already has it" in errors[15]
    assert "row 12 already has it" in errors[16]
    assert "row 14 already has it" in errors[17]
    assert Product.objects.get(code="SKU-00001").name == "second try"
    assert Product.objects.count() == PriceRecord.objects.count() == StockRecord.objects.count() == 12


def test_a_digest_collision_never_makes_a_row_a_duplicate(api, settings, monkeypatch):
    """Duplicates are decided by product id, not by a hash: even if every row had the same 64-bit digest,
    every distinct code is imported and none is reported as a duplicate."""
    settings.IMPORTS_CHUNK_ROWS = 3
    settings.IMPORTS_READ_AHEAD = False  # the patch below reaches this process only
    real = services.product_coercer

    def colliding(positions):
        coerce = real(positions)

        def every_digest_the_same(values):
            clean, problems, digest = coerce(values)
            return clean, problems, (None if problems else 42)
        return every_digest_the_same

    monkeypatch.setattr(services, "product_coercer", colliding)
    monkeypatch.setattr(columns, "row_digest", lambda clean: 42)
    status = import_file(api, files.xlsx_bytes(files.product_rows(10)))
    assert status["results"]["created_count"] == 10 and status["results"]["error_count"] == 0
    assert not ImportRowError.objects.exists()
    assert set(Product.objects.values_list("row_hash", flat=True)) == {42}


@pytest.mark.parametrize("child", [False, True], ids=["in-process", "child-process"])
def test_a_reimport_writes_no_product_row_and_no_history(api, settings, child):
    settings.IMPORTS_CHUNK_ROWS = 7
    settings.IMPORTS_READ_AHEAD = child
    data = files.with_shared_strings(files.xlsx_bytes(files.product_rows(20)))[0]
    import_file(api, data)
    before = list(Product.objects.order_by("id").values_list("id", "updated_at", "row_hash"))
    history = (PriceRecord.objects.count(), StockRecord.objects.count())
    with CaptureQueriesContext(connection) as queries:
        status = import_file(api, data)
    assert status["results"]["unchanged_count"] == 20 and status["results"]["error_count"] == 0
    writes = [q["sql"] for q in queries.captured_queries
              if ("imports_product" in q["sql"] or "record" in q["sql"])
              and q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "COPY"))]
    assert writes == []
    assert list(Product.objects.order_by("id").values_list("id", "updated_at", "row_hash")) == before
    assert (PriceRecord.objects.count(), StockRecord.objects.count()) == history


def test_the_child_reader_reports_a_damaged_sheet_as_the_import_error(api, settings, monkeypatch):
    settings.IMPORTS_READ_AHEAD = True
    data = files.xlsx_bytes(files.product_rows(5))
    response = start(api, data)
    log = ImportLog.objects.get(pk=response.data["import_id"])
    # Damage the stored sheet after the upload check: the child finds it, the job fails with the reason.
    import zipfile
    path = log.file.path
    with zipfile.ZipFile(path) as source:
        parts = {info.filename: source.read(info.filename) for info in source.infolist()}
    sheet = next(name for name in parts if name.startswith("xl/worksheets/sheet"))
    parts[sheet] = parts[sheet].replace(b"</sheetData>", b"<![CDATA[x]]></sheetData>")
    with zipfile.ZipFile(path, "w") as target:
        for name, content in parts.items():
            target.writestr(name, content)
    run(log.pk)
    log.refresh_from_db()
    job = Job.objects.get(pk=log.job_id)
    assert job.status == JobStatus.FAILED and "CDATA" in job.error
    assert api.get(f"/api/imports/{log.pk}").data["status"] == "failed"


@pytest.mark.parametrize("readers", [1, 2, 3])
def test_reader_processes_deliver_the_chunks_of_the_in_process_reader(tmp_path, readers):
    from dataclasses import asdict

    from imports.readahead import ChildReader
    from imports.readers import open_table

    rows = files.product_rows(50)
    rows[20][5] = "abc"  # a bad row (row 22) travels with its problems
    path = tmp_path / "products.xlsx"
    path.write_bytes(files.with_shared_strings(files.xlsx_bytes(rows))[0])
    table = open_table(path, "xlsx", services.zip_limits())
    header_row, header = table.header()
    positions = columns.match_header(header, columns.PRODUCT_COLUMNS).positions
    expected = list(services._chunks(table, 12, header_row, columns.product_coercer(positions), 7))
    table.close()
    child = ChildReader(path, "xlsx", asdict(services.zip_limits()), 12, header_row, positions, 7,
                        readers=readers)
    try:
        got = list(child)
    finally:
        child.close()

    def merged(chunks):
        return ([row for chunk in chunks for row in chunk.valid], [p for chunk in chunks for p in chunk.problems],
                sum(chunk.rows for chunk in chunks), chunks[-1].last_row)

    assert merged(got) == merged(expected)
    problems = merged(got)[1]
    assert [problem[:3] for problem in problems] == [(22, "price", "abc")] and merged(got)[2] == 39
    # Chunks are runs of 7 row numbers from the first data row (row 2), here resumed after row 12.
    runs = [[13, 14, 15], *[list(range(start, min(start + 7, 52))) for start in range(16, 52, 7)]]
    assert [chunk.rows for chunk in got] == [len(run) for run in runs]
    assert [chunk.last_row for chunk in got] == [run[-1] for run in runs]
    assert [number for number, *_ in got[0].valid] == [13, 14, 15]
    assert child.peak_rss_mb > 0


def test_a_damaged_sheet_read_by_several_readers_fails_after_the_rows_before_it(api, settings):
    settings.IMPORTS_READ_AHEAD = True
    settings.IMPORTS_READER_PROCESSES = 2
    settings.IMPORTS_CHUNK_ROWS = 4
    response = start(api, files.xlsx_bytes(files.product_rows(30)))
    log = ImportLog.objects.get(pk=response.data["import_id"])
    import zipfile
    path = log.file.path
    with zipfile.ZipFile(path) as source:
        parts = {info.filename: source.read(info.filename) for info in source.infolist()}
    sheet = next(name for name in parts if name.startswith("xl/worksheets/sheet"))
    import re
    # Row 24's price, a number cell, becomes unreadable: only the reader that converts row 24 finds it.
    parts[sheet], replaced = re.subn(rb'(<c r="F24"[^>]*><v>)[^<]*', rb"\1not-a-number", parts[sheet])
    assert replaced == 1
    with zipfile.ZipFile(path, "w") as target:
        for name, content in parts.items():
            target.writestr(name, content)
    run(log.pk, search=False)
    log.refresh_from_db()
    assert log.import_status == ImportLog.Status.FAILED
    assert log.error.startswith("The sheet is damaged after row 23")
    # Runs of 4 rows from row 2 alternate between the readers; every row before the damage was imported
    # (rows 22-23 of the damaged run too), in order, and nothing after it.
    assert log.processed_rows == 22
    assert sorted(Product.objects.values_list("code", flat=True)) == [f"SKU-{i:05d}" for i in range(22)]


def test_the_fast_row_validation_agrees_with_the_general_one():
    """product_coercer's flat tuples give the same values, problems and digests as coerce_row, on
    awkward prices, texts, stocks and barcodes."""
    import random

    from imports.columns import PRODUCT_COLUMNS, coerce_row, product_coercer, row_digest

    positions = {"code": 0, "name": 1, "brand": 2, "category": 3, "description": 4, "price": 5, "stock": 6,
                 "barcode": 7}
    flat = product_coercer(positions)
    rnd = random.Random(7)
    prices = [0.0, -0.0, 0.1, 0.125, 0.135, 1.005, 2.675, 12.0, 12.5, 9999999999.99, 9999999999.994,
              9999999999.995, 1e10, 1e16, 1e-7, 5e-3, 123.456, 0, 5, 9999999999, 10000000000, -1, -0.01,
              float("nan"), float("inf"), True, "12.30", " 7 ", "1,5", None, ""]
    prices += [round(rnd.uniform(0, 3000), rnd.choice([0, 1, 2, 3])) for _ in range(300)]
    texts = ["a", "  padded  ", "tab\there", "new\nline", "ctl\x01", "sep\u2028", "é漢字", "", None, 12, 1.5, True]
    order = ("code", "name", "brand", "category", "description", "price", "stock", "barcode")
    for price in prices:
        for text in rnd.sample(texts, 3):
            for stock in (3, 3.0, -1, "4", None):
                for ean in (None, 4000000000001, 123, " 4000000000001 ", -4000000000001, 4000000000001.0):
                    row = ["SKU-1", "name" if text is None else text, "Brand", text, "desc", price, stock, ean]
                    clean, problems = coerce_row(row, positions, PRODUCT_COLUMNS)
                    values_flat, problems_flat, digest_flat = flat(row)
                    assert list(problems) == list(problems_flat), row
                    if not problems:
                        assert digest_flat == row_digest(clean), row
                        assert values_flat == tuple(str(clean[k]) if k == "price" else clean[k] for k in order)
