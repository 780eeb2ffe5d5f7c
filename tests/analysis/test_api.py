"""POST /api/analysis/, GET /api/analysis/{id}, GET /api/analysis/{id}/report.xlsx and the generic result."""

import io
from datetime import date
from decimal import Decimal

import pytest
from openpyxl import Workbook, load_workbook

from analysis.models import SalesAnalysis
from queueapp import runner
from queueapp.engine import cancel
from queueapp.models import Job
from tests.analysis.factories import business_report_us, catalogue, csv_bytes
from tests.analysis.helpers import start, upload

pytestmark = pytest.mark.django_db

ITEMS = [("B0AAAAAAA1", "Cat mug", 40, 10, "12.99"), ("B0BBBBBBB2", "Dog mug", 30, 5, "9.50")]


@pytest.fixture
def revenue():
    return business_report_us(catalogue(date(2024, 3, 1), 10, ITEMS))


def xlsx_bytes():
    buffer = io.BytesIO()
    Workbook().save(buffer)
    return buffer.getvalue()


def test_start_answers_202_queued_with_the_status_url(api, user, revenue, media_root):
    response = start(api, revenue, asin="https://www.amazon.com/dp/B0AAAAAAA1?th=1", marketplace="")
    assert response.status_code == 202, response.data
    body = response.data
    job_id = body["job_id"]
    assert body["status"] == "queued" and body["progress"] == 0
    assert body["status_url"].endswith(f"/api/analysis/{job_id}")
    assert body["result_url"].endswith(f"/api/jobs/{job_id}/result")
    assert body["report_url"].endswith(f"/api/analysis/{job_id}/report.xlsx")
    assert f"/api/analysis/{job_id}" in body["message"] and "queued" in body["message"]
    job = Job.objects.get(id=job_id)
    assert job.owner == user and job.kind == "analysis.sales"
    assert job.params["asin"] == "B0AAAAAAA1" and job.params["marketplace"] == "US"  # from the URL's store
    analysis = SalesAnalysis.objects.get(job=job)
    stored = media_root / analysis.storage / "revenue.csv"
    assert stored.read_bytes() == revenue
    assert analysis.revenue_filename == "BusinessReport-3-31-24.csv" and analysis.revenue_size == len(revenue)


def test_status_in_the_seed_shape_through_the_life_of_the_job(api, revenue):
    job_id = start(api, revenue).data["job_id"]
    queued = api.get(f"/api/analysis/{job_id}")
    assert queued.status_code == 200
    assert {"job_id", "status", "progress", "message", "created_at", "updated_at", "completed_at",
            "error"} <= set(queued.data)
    assert queued.data["status"] == "queued" and queued.data["completed_at"] is None
    assert queued.data["error"] is None and queued.data["step"] is None
    assert api.get(f"/api/jobs/{job_id}/result").status_code == 202
    assert api.get(f"/api/analysis/{job_id}/report.xlsx").status_code == 202

    runner.run_job(job_id)
    done = api.get(f"/api/analysis/{job_id}").data
    assert done["status"] == "complete" and done["job_status"] == "succeeded" and done["progress"] == 100
    assert done["completed_at"] is not None and done["error"] is None
    assert done["step"] == {"number": 5, "of": 5, "name": "Recommendations and report"}
    assert done["message"].startswith("Analysis complete: 20 rows, 2 items")


def test_each_step_is_reported_as_progress_with_a_message(api, revenue, monkeypatch):
    seen = []
    original = runner.JobContext.progress

    def spy(self, done=None, total=None, message=None, **kwargs):
        seen.append((done, total, message))
        return original(self, done, total=total, message=message, **kwargs)

    monkeypatch.setattr(runner.JobContext, "progress", spy)
    job_id = start(api, revenue).data["job_id"]
    runner.run_job(job_id)
    steps = [m for _, _, m in seen if m and m.startswith("Step ") and " - " not in m]
    assert steps == [
        "Step 1 of 5: Parsing and validating files",
        "Step 2 of 5: Totals and trends",
        "Step 3 of 5: Rankings",
        "Step 4 of 5: Keyword and design performance",
        "Step 5 of 5: Recommendations and report",
    ]
    dones = [d for d, _, _ in seen]
    assert dones == sorted(dones) and dones[-1] == 100 and all(t == 100 for _, t, _ in seen)
    assert any("revenue_csv: 20 rows read" in (m or "") for _, _, m in seen)


def test_report_download(api, revenue):
    job_id = start(api, revenue).data["job_id"]
    runner.run_job(job_id)
    response = api.get(f"/api/analysis/{job_id}/report.xlsx")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "sales-analysis-B0AAAAAAA1-US-" in response["Content-Disposition"]
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    assert book.sheetnames == ["Summary", "Trends", "Rankings", "Items", "Keywords", "Recommendations",
                               "Row errors"]
    charts = book["Trends"]._charts
    assert charts and charts[0].title is not None
    # The same figures as the JSON result: total revenue on the summary sheet.
    result = api.get(f"/api/jobs/{job_id}/result").data["result"]
    rows = list(book["Summary"].iter_rows(values_only=True))
    totals_at = rows.index(("Totals",) + (None,) * (len(rows[0]) - 1))
    assert rows[totals_at + 1][0] == "Revenue"
    assert Decimal(str(rows[totals_at + 1][1])) == Decimal(result["totals"]["revenue"])


def test_a_client_asking_for_xlsx_only_gets_it(api, revenue):
    job_id = start(api, revenue).data["job_id"]
    runner.run_job(job_id)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert api.get(f"/api/analysis/{job_id}/report.xlsx", HTTP_ACCEPT=xlsx).status_code == 200


def test_a_lost_report_file_is_rebuilt_from_the_result(api, revenue, media_root):
    job_id = start(api, revenue).data["job_id"]
    runner.run_job(job_id)
    report = media_root / SalesAnalysis.objects.get(job_id=job_id).report_file
    report.unlink()
    response = api.get(f"/api/analysis/{job_id}/report.xlsx")
    assert response.status_code == 200 and report.exists()
    load_workbook(io.BytesIO(b"".join(response.streaming_content)))


def test_another_user_gets_404_and_staff_see_it(api, other_api, staff_api, revenue):
    job_id = start(api, revenue).data["job_id"]
    for path in (f"/api/analysis/{job_id}", f"/api/analysis/{job_id}/report.xlsx", f"/api/jobs/{job_id}/result"):
        assert other_api.get(path).status_code == 404
    assert staff_api.get(f"/api/analysis/{job_id}").status_code == 200
    assert api.get("/api/analysis/00000000-0000-0000-0000-000000000000").status_code == 404


def test_authentication_is_required(client, revenue):
    assert client.post("/api/analysis/", {"asin_or_url": "B0AAAAAAA1"}).status_code in (401, 403)


def test_a_failed_analysis_answers_409_with_the_reason(api):
    rows = [["Date", "ASIN", "Units Ordered", "Ordered Product Sales"]]
    rows += [["2024-03-01", "B0AAAAAAA1", "lots", "$10.00"]] * 3
    job_id = start(api, csv_bytes(rows)).data["job_id"]
    runner.run_job(job_id)
    status = api.get(f"/api/analysis/{job_id}").data
    assert status["status"] == "failed" and status["job_status"] == "failed"
    assert "revenue_csv has no usable rows: 3 read, 3 rejected" in status["error"]
    assert "line 2 Units Ordered 'lots': not a number" in status["error"]
    assert api.get(f"/api/jobs/{job_id}/result").status_code == 409
    assert api.get(f"/api/analysis/{job_id}/report.xlsx").status_code == 409
    assert Job.objects.get(id=job_id).attempts == 1  # bad content is not retried


def test_a_cancelled_analysis(api, revenue):
    job_id = start(api, revenue).data["job_id"]
    cancel(Job.objects.get(id=job_id))
    status = api.get(f"/api/analysis/{job_id}").data
    assert status["status"] == "cancelled" and status["completed_at"] is not None
    assert api.get(f"/api/analysis/{job_id}/report.xlsx").status_code == 409


# -- 400 before any job starts ----------------------------------------------------------------------
GOOD = business_report_us(catalogue(date(2024, 3, 1), 2, ITEMS))


@pytest.mark.parametrize("fields, field, fragment", [
    ({"asin_or_url": ""}, "asin_or_url", "may not be blank"),
    ({"asin_or_url": "B0123"}, "asin_or_url", "is not an ASIN"),
    ({"asin_or_url": "https://example.com/dp/B0AAAAAAA1"}, "asin_or_url", "not an Amazon store domain"),
    ({"asin_or_url": "https://amzn.to/3abcdef"}, "asin_or_url", "short links cannot be resolved"),
    ({"asin_or_url": "https://www.amazon.com/s?k=mug"}, "asin_or_url", "No ASIN found in this URL"),
    ({"marketplace": "XX"}, "marketplace", "Unknown marketplace 'XX'. Use one of: US,"),
    ({"asin_or_url": "https://www.amazon.de/dp/B0AAAAAAA1", "marketplace": "US"}, "marketplace",
     "on amazon.de (DE) but marketplace is US"),
    ({"revenue": None}, "revenue_csv", "No file was submitted"),
    ({"revenue": b""}, "revenue_csv", "revenue_csv is empty (0 bytes)"),
    ({"revenue": b"  \r\n\r\n"}, "revenue_csv", "revenue_csv is empty"),
    ({"revenue": xlsx_bytes()}, "revenue_csv", "is an Excel workbook (.xlsx) or a zip archive, not a CSV"),
    ({"revenue": b"%PDF-1.7\n..."}, "revenue_csv", "is a PDF document"),
    ({"revenue": b"<!DOCTYPE html><html><body>Sign in</body></html>"}, "revenue_csv", "HTML or XML document"),
    ({"revenue": b"\x00\x01\x02binary\x00"}, "revenue_csv", "binary file"),
    ({"revenue": b"just some words\nand more words\n"}, "revenue_csv", "not a CSV table"),
    ({"revenue": csv_bytes([["Date", "(Child) ASIN", "Title", "Sessions - Total"],
                            ["3/1/2024", "B0AAAAAAA1", "Mug", "5"]])},
     "revenue_csv", 'missing required column(s): "Units Ordered" (or "Units", "Units Sold", "Quantity"'),
    ({"revenue": csv_bytes([["(Child) ASIN", "Units Ordered", "Ordered Product Sales"]])},
     "revenue_csv", "has a header row but no data rows"),
    ({"design": csv_bytes([["ASIN", "Design Name"], ["B0AAAAAAA1", "Cat"]])}, "design_csv",
     'at least one of "Product Type" or "Keywords"'),
    ({"design": csv_bytes([["Name", "Tags"], ["Cat", "cats"]])}, "design_csv", 'missing required column(s): "ASIN"'),
])
def test_bad_input_is_400_naming_the_field_and_nothing_starts(api, media_root, fields, field, fragment):
    kwargs = {"revenue": GOOD, "asin": "B0AAAAAAA1", "marketplace": "US"}
    if "asin_or_url" in fields:
        kwargs["asin"] = fields["asin_or_url"]
    for key in ("revenue", "design", "marketplace"):
        if key in fields:
            kwargs[key] = fields[key]
    response = start(api, **kwargs)
    assert response.status_code == 400, response.data
    assert field in response.data, response.data
    assert fragment in " ".join(str(m) for m in response.data[field])
    assert Job.objects.count() == 0 and SalesAnalysis.objects.count() == 0
    assert not any(media_root.rglob("*.csv"))


def test_several_bad_fields_are_reported_together(api):
    response = start(api, b"", asin="nope", marketplace="ZZ")
    assert response.status_code == 400
    assert set(response.data) == {"asin_or_url", "marketplace", "revenue_csv"}


def test_oversize_upload_is_400(api, settings):
    settings.ANALYSIS_MAX_UPLOAD_MB = 1
    big = GOOD + b"\r\n".join([b"3/2/2024,B0PARENT00,B0AAAAAAA1,Mug,1,1%,1,1%,100%,1,1%,$1.00,1"] * 20000)
    assert len(big) > 1024 * 1024
    response = start(api, big)
    assert response.status_code == 400
    assert "the limit is 1 MB (ANALYSIS_MAX_UPLOAD_MB)" in response.data["revenue_csv"][0]


def test_a_text_field_instead_of_a_file_is_400(api):
    response = api.post("/api/analysis/", {"asin_or_url": "B0AAAAAAA1", "revenue_csv": "not a file"},
                        format="multipart")
    assert response.status_code == 400 and "revenue_csv" in response.data


def test_upload_name_is_kept_without_its_path(api):
    response = api.post("/api/analysis/", {"asin_or_url": "B0AAAAAAA1",
                                           "revenue_csv": upload(GOOD, "../../etc/passwd.csv")}, format="multipart")
    assert response.status_code == 202
    assert SalesAnalysis.objects.get().revenue_filename == "passwd.csv"


def test_schema_documents_the_endpoints(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/analysis/" in schema and "/api/analysis/{job_id}/report.xlsx" in schema


def test_a_transient_failure_is_retried_and_the_status_says_so(api, revenue, monkeypatch):
    from analysis import report

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "build", disk_full)
    job_id = start(api, revenue).data["job_id"]
    runner.run_job(job_id)
    status = api.get(f"/api/analysis/{job_id}").data
    assert status["status"] == "processing" and status["job_status"] == "waiting"
    assert status["error"] is None and "No space left on device" in status["last_error"]
    assert status["next_attempt_at"] is not None and status["attempts"] == 1 and status["max_attempts"] == 2
    assert api.get(f"/api/jobs/{job_id}/result").status_code == 202
